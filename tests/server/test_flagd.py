"""flagd's flag definitions: served at /api/v1/environments/{env}/flagd.json as the bytes
`flagc build` writes to OUT/flagd/<env>.json, and evaluated by the unmodified flagd
provider for OpenFeature (in-process, from the file) to exactly what the compiler resolved.

One resolution, three ways out: the flagd file (through flagd's provider), the flat map and
OFREP agree with the snapshot for every flag, environment and application (and for none),
for the fixture, for the example flags/ tree and for generated trees: boolean ones with
every combination of overrides, and trees of boolean, string and integer flags with rules,
rollouts and dependency chains, each for 200 generated contexts."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import pytest
import requests
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from core.evaluate import Evaluator
from core.rows import expanded
from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing
from server.errors import PROBLEM_BASE, PROBLEM_JSON
from server.store import Store
from tests.conftest import PROJECT
from tests.server.conftest import FLAGS, ROOT, Built, Live, built_if_accepted, built_in_git
from tests.server.helpers import flagd_client

URL = "/api/v1/environments/{}/flagd.json"
ENVIRONMENTS = ("development", "staging", "production")
APPLICATIONS = ("web", "ios", "android")


def built_file(built: Built, environment: str) -> bytes:
    return (built.out / "flagd" / f"{environment}.json").read_bytes()


# Serving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_server_sends_the_bytes_flagc_wrote(
    client: falcon.testing.TestClient, built: Built, environment: str
) -> None:
    result = client.simulate_get(URL.format(environment))
    assert result.status_code == 200
    assert result.content == built_file(built, environment)
    assert result.headers["Content-Type"] == "application/json"


def test_an_unknown_environment_is_a_404_problem(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get(URL.format("nowhere"))
    assert result.status_code == 404
    assert result.headers["Content-Type"] == PROBLEM_JSON
    assert result.json["type"] == PROBLEM_BASE + "unknown-environment"
    assert "nowhere" in result.json["detail"]


SECRET = "s3cret-for-production"


@pytest.mark.parametrize(
    ("environment", "headers", "status"),
    [
        ("production", {"Authorization": f"Bearer {SECRET}"}, 200),
        ("staging", {"Authorization": f"Bearer {SECRET}"}, 403),
        ("production", {}, 401),
        ("production", {"Authorization": "Bearer wrong"}, 401),
    ],
)
def test_the_access_control_of_the_api(
    store: Store, environment: str, headers: dict[str, str], status: int
) -> None:
    key = ApiKey("production", hashlib.sha256(SECRET.encode()).digest(), frozenset(["production"]))
    app = create_app(store, middleware=[AccessControl(KeyRing([key]))])
    result = falcon.testing.TestClient(app).simulate_get(URL.format(environment), headers=headers)
    assert result.status_code == status


def test_a_new_build_is_served_once_loaded(
    store: Store, client: falcon.testing.TestClient, built: Built
) -> None:
    before = client.simulate_get(URL.format("production"))
    built.commit("Show the banner in production too", {"growth/banner.yaml": BANNER_EVERYWHERE})
    assert store.reload()
    after = client.simulate_get(URL.format("production"))
    assert after.content == built_file(built, "production") != before.content
    assert after.headers["ETag"] != before.headers["ETag"]


def test_a_live_server_answers_as_flagd_http_sync_polls(live: Live, built: Built) -> None:
    """What flagd's HTTP sync does: fetch, then poll with If-None-Match until it changes."""
    first = live.get(URL.format("production"))
    assert first.content == built_file(built, "production")
    unchanged = live.get(URL.format("production"), headers={"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304
    built.commit("Show the banner in production too", {"growth/banner.yaml": BANNER_EVERYWHERE})
    deadline = time.monotonic() + 60
    answer: requests.Response = unchanged
    while answer.status_code == 304 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = live.get(
            URL.format("production"), headers={"If-None-Match": first.headers["ETag"]}
        )
    assert answer.status_code == 200
    assert answer.content == built_file(built, "production")


# flagd's own provider, in-process from the file ------------------------------------------

BANNER_EVERYWHERE = FLAGS["growth/banner.yaml"] + "  production: true\n  staging: true\n"


def context(application: str | None) -> EvaluationContext:
    attributes = {} if application is None else {"application": application}
    return EvaluationContext(targeting_key="user-42", attributes=attributes)


def evaluated(
    client: OpenFeatureClient,
    document: dict[str, Any],
    expected: dict[str, Any],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    """What flagd's provider says of every flag in `expected`, through the getter of the
    flag's type; the default asked for differs from the expected value, so that falling
    back to it cannot pass for agreement."""
    given = {name: value for name, value in attributes.items() if name != "targetingKey"}
    context = EvaluationContext(targeting_key=attributes.get("targetingKey"), attributes=given)
    found: dict[str, Any] = {}
    for key, value in expected.items():
        kind = document["flags"][key]["type"]
        getter = getattr(client, f"get_{kind}_details")
        details = getter(key, _other(value), context)
        assert details.error_code is None, details
        assert document["flags"][key]["variants"][details.variant] == details.value, details
        found[key] = details.value
    return found


def _other(value: Any) -> Any:
    """A value of the same type as `value` that is not it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "?"
    if isinstance(value, int | float):
        return value + 1
    return {"other": True} if value != {"other": True} else {}


def compiled(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "snapshot.json").read_bytes())
    return expanded(document)  # every application's cell, as flagserve reads it


def resolved(
    document: dict[str, Any], environment: str, application: str | None
) -> dict[str, bool]:
    """What the compiler resolved, read from snapshot.json."""
    values: dict[str, bool] = {}
    for key, flag in document["flags"].items():
        row = flag["resolved"][environment]
        values[key] = (row if application is None else row["applications"][application])["value"]
    return values


def test_flagd_metadata_names_the_owner_and_the_revision(built: Built) -> None:
    document = compiled(built.out)
    with flagd_client(built.out / "flagd" / "production.json") as client:
        details = client.get_boolean_details("new-checkout", False, context("web"))
    assert details.value is True
    assert details.flag_metadata == {
        "owner": "team-checkout",
        "revision": document["revision"],
        "environment": "production",
    }


def test_the_provider_picks_up_a_rebuild(built: Built) -> None:
    ios = context("ios")
    with flagd_client(built.out / "flagd" / "staging.json") as client:
        assert client.get_boolean_value("banner", True, ios) is False
        missing = client.get_boolean_details("dark-mode", False, ios)
        assert missing.error_code == ErrorCode.FLAG_NOT_FOUND
        built.commit(
            "Show the banner in staging and add dark mode",
            {
                "growth/banner.yaml": BANNER_EVERYWHERE,
                "ui/dark-mode.yaml": "description: Dark mode\nowner: team-ui\nenabled: true\n",
            },
        )
        revision = compiled(built.out)["revision"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            details = client.get_boolean_details("banner", False, ios)
            if details.flag_metadata.get("revision") == revision:
                break
            time.sleep(0.05)
        assert details.flag_metadata.get("revision") == revision, "the provider kept the old file"
        assert details.value is True
        assert client.get_boolean_value("dark-mode", False, ios) is True


# One resolution, three ways out ----------------------------------------------------------


def three_ways_agree(out: Path, contexts: int = 5) -> int:
    """For every environment and application (and none) and `contexts` generated contexts:
    flagd's provider over the file, the flat map with the context and OFREP over a real
    Store give exactly what `core.evaluate` gives (for a flag without rules: what
    snapshot.json resolved), and the server's flagd.json is the file byte for byte.
    Returns how many flags x cells served more than one value over the contexts."""
    document = compiled(out)
    evaluator = Evaluator(document)
    store = Store(out)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    served: dict[tuple[str, str, str | None], set[str]] = {}
    for environment in document["environments"]:
        path = out / "flagd" / f"{environment}.json"
        assert client.simulate_get(URL.format(environment)).content == path.read_bytes()
        with flagd_client(path) as openfeature:
            for application in [None, *document["applications"]]:
                static = resolved(document, environment, application)
                untargeted = set(static) - evaluator.targeted(environment, application)
                for attributes in generated_contexts(contexts):
                    given = {**attributes, "environment": environment}
                    if application is not None:
                        given["application"] = application
                    found = evaluator.evaluate_all(environment, application, given)
                    expected = {key: found[key].value for key in static}
                    assert {key: expected[key] for key in untargeted} == {
                        key: static[key] for key in untargeted
                    }
                    assert flat_map(client, environment, application, attributes) == expected
                    assert ofrep(client, environment, given) == expected
                    assert evaluated(openfeature, document, expected, given) == expected
                    for key, value in expected.items():
                        cell = (key, environment, application)
                        served.setdefault(cell, set()).add(json.dumps(value))
    return sum(len(values) > 1 for values in served.values())


def generated_contexts(count: int) -> list[dict[str, Any]]:
    """`count` contexts, the same every run: a targeting key, and some of the attributes the
    rules of the example flags and of generated trees read (and their rollouts' `by`), each
    a value that a query string carries unchanged."""
    chance = random.Random(count)
    choices: dict[str, list[Any]] = {
        "country": ["NL", "BE", "DE", "US"],
        "plan": ["free", "pro", "enterprise"],
        "app_version": ["2.2.9", "2.3.0", "v2.4", "3.0.1", "2.3.1-rc.1"],
        "email": ["ada@example.com", "bob@example.org", "ada.b@shop.example.com"],
        "seats": [1, 10, 50, 120, 2.5],
        "account_id": [f"account-{n}" for n in range(20)],
    }
    found = []
    for _ in range(count):
        attributes: dict[str, Any] = {"targetingKey": f"user-{chance.randrange(10**6)}"}
        for name, values in choices.items():
            if chance.random() < 0.7:
                attributes[name] = chance.choice(values)
        found.append(attributes)
    return found


def flat_map(
    client: falcon.testing.TestClient,
    environment: str,
    application: str | None,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    query = {**attributes, **({} if application is None else {"application": application})}
    result = client.simulate_get(
        f"/api/v1/environments/{environment}/flags", query_string=urlencode(query)
    )
    assert result.status_code == 200, result.text
    values: dict[str, Any] = result.json["flags"]
    return values


def ofrep(
    client: falcon.testing.TestClient, environment: str, attributes: dict[str, Any]
) -> dict[str, Any]:
    result = client.simulate_post("/ofrep/v1/evaluate/flags", json={"context": attributes})
    assert result.status_code == 200, result.text
    return {item["key"]: item["value"] for item in result.json["flags"]}


def test_three_ways_agree_for_the_fixture(built: Built) -> None:
    three_ways_agree(built.out)


def test_three_ways_agree_for_the_example_tree(tmp_path: Path) -> None:
    example = ROOT / "flags"
    files = {
        str(path.relative_to(example)): path.read_text(encoding="utf-8")
        for path in example.rglob("*.yaml")
    }
    three_ways_agree(built_in_git(tmp_path, files), contexts=200)


# Generated trees: every combination of overrides the flag format allows, without
# dependencies (whose checks would refuse some), in the fixture's project.
_values = st.dictionaries(st.sampled_from(APPLICATIONS), st.booleans(), max_size=3)
_override = st.one_of(
    st.booleans(),
    st.fixed_dictionaries(
        {}, optional={"enabled": st.booleans(), "applications": _values.filter(bool)}
    ).filter(bool),
)
_flag = st.fixed_dictionaries(
    {
        "description": st.just("Generated"),
        "owner": st.sampled_from(["team-a", "team-b"]),
        "enabled": st.booleans(),
    },
    optional={
        "applications": _values,
        "environments": st.dictionaries(st.sampled_from(ENVIRONMENTS), _override, max_size=3),
    },
)
trees = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), _flag, min_size=1, max_size=6
)


@given(trees)
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_three_ways_agree_for_generated_trees(flags: dict[str, dict[str, Any]]) -> None:
    files = {f"{key}.yaml": yaml.safe_dump(flag, sort_keys=True) for key, flag in flags.items()}
    with tempfile.TemporaryDirectory() as scratch:
        three_ways_agree(built_in_git(Path(scratch), {"_project.yaml": PROJECT, **files}))


# A rollout lays its buckets out in the order the file declares `variants`, which
# snapshot.json (sorted keys) does not keep: flagserve refused such a build, the rows it
# rebuilt from the sorted variants listing the buckets in another order than flagc's.
COLOURS = """description: Colour of the button
owner: team-a
type: string
variants: {red: "#cf222e", blue: "#1f6feb", green: "#2da44e"}
default: blue
off: blue
environments:
  production:
    rules:
      - rollout: {red: 30, green: 20, blue: 50}
        seed: colours
"""
BADGE = """description: A badge beside the button
owner: team-a
type: integer
variants: {some: 20, none: 0}
default: none
off: none
depends_on: [colours]
environments:
  production:
    rules:
      - when: {country: [NL]}
        rollout: {some: 40, none: 60}
        seed: colours
"""


def test_three_ways_agree_for_variants_declared_out_of_name_order(tmp_path: Path) -> None:
    out = built_in_git(
        tmp_path, {"_project.yaml": PROJECT, "colours.yaml": COLOURS, "badge.yaml": BADGE}
    )
    rules = compiled(out)["flags"]["colours"]["resolved"]["production"]["rules"]
    assert rules[0]["rollout"] == [["red", 30], ["green", 20], ["blue", 50]]
    assert three_ways_agree(out, contexts=200) > 0


# Generated trees with rules, rollouts, typed flags and dependency chains. Each dependent is
# drawn from its dependency, environment by environment, as the compiler can prove it
# (docs/flags.md, "Dependencies, for every user"): anything where the dependency is on for
# every context; else off, with rules that serve off and rules narrowed from one of the
# dependency's rules that all before it serve on (conditions within its conditions; for a
# rollout, its seed and by and at most its on-share). So most trees are accepted.
KINDS: dict[str, dict[str, Any]] = {
    "boolean": {"on": True, "off": False},
    "string": {"blue": "#1f6feb", "green": "#2da44e", "red": "#cf222e"},
    "integer": {"none": 0, "some": 20, "lots": 500},
}
# Per attribute: conditions, each with conditions within it (the proofs' narrower ones).
CONDITIONS: dict[str, list[tuple[Any, list[Any]]]] = {
    "country": [
        (["NL", "BE"], ["NL", ["BE"]]),
        ({"not": ["US"]}, [["NL", "DE"], {"not": ["US", "DE"]}]),
        ("DE", []),
    ],
    "plan": [({"not": ["free"]}, ["pro", ["pro", "enterprise"], {"not": ["free", "pro"]}])],
    "app_version": [
        ({"semver": ">=2.3.0"}, []),
        ({"semver": "~2.3"}, []),
        ({"semver": "<3.0.0"}, []),
    ],
    "email": [
        ({"ends_with": "example.com"}, [{"ends_with": "@example.com"}]),
        ({"starts_with": "ada"}, [{"starts_with": "ada@"}]),
    ],
    "seats": [({"gte": 10}, [{"gte": 50}, {"gt": 10}, [10, 50]]), ({"lt": 50}, [{"lt": 10}, [1]])],
}
BY = [None, "account_id", "seats"]  # None: targetingKey
SEEDS = [None, "shared", "other"]  # None: the flag's key
KEYS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def _kind(flag: dict[str, Any]) -> str:
    kind: str = flag.get("type", "boolean")
    return kind


def _off(flag: dict[str, Any]) -> str | None:
    off: str | None = "off" if _kind(flag) == "boolean" else flag.get("off")
    return off


def _setting(flag: dict[str, Any]) -> str:
    """The key of a flag's own value: `enabled`, or for typed flags `default`."""
    return "enabled" if _kind(flag) == "boolean" else "default"


def _written(flag: dict[str, Any], variant: str) -> Any:
    """A variant as a value is written: true or false for boolean flags, else its name."""
    return variant == "on" if _kind(flag) == "boolean" else variant


def _read(flag: dict[str, Any], value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _variant_values(flag: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(sorted(KINDS[_kind(flag)])).map(lambda name: _written(flag, name))


def _rules_in(flag: dict[str, Any], environment: str) -> list[dict[str, Any]]:
    """The rules in force in `environment` (as core.rules.rules_in reads the file)."""
    override = flag.get("environments", {}).get(environment)
    top: list[dict[str, Any]] = flag.get("rules", [])
    if isinstance(override, dict):
        own: list[dict[str, Any]] = override.get("rules", top)
        return own
    return top if override is None else []


def _cells(flag: dict[str, Any], environment: str) -> list[str]:
    """The variant of each cell of `environment` (none, then each application), as
    docs/flags.md resolves it."""
    setting, default = _setting(flag), flag[_setting(flag)]
    below = [flag.get("applications", {}).get(app, default) for app in APPLICATIONS]
    override = flag.get("environments", {}).get(environment)
    if override is None:
        values = [default, *below]
    elif not isinstance(override, dict):
        values = [override] * (len(APPLICATIONS) + 1)
    else:
        if setting in override:
            default, below = override[setting], [override[setting]] * len(APPLICATIONS)
        specific = override.get("applications", {})
        values = [
            default,
            *(specific.get(app, b) for app, b in zip(APPLICATIONS, below, strict=True)),
        ]
    return [_read(flag, value) for value in values]


def _share(flag: dict[str, Any], rule: dict[str, Any]) -> int:
    """The percentage of matching contexts a rule serves a variant other than `off` to."""
    off = _off(flag)
    if "serve" in rule:
        return 0 if rule["serve"] == off else 100
    return sum(weight for name, weight in rule["rollout"].items() if name != off)


@st.composite
def _split(draw: st.DrawFn, names: list[str], total: int) -> dict[str, int]:
    """`total` (a multiple of 5) split over `names` in multiples of 5."""
    cuts = draw(
        st.lists(st.integers(0, total // 5), min_size=len(names) - 1, max_size=len(names) - 1)
    )
    points = [0, *sorted(5 * cut for cut in cuts), total]
    return {name: points[n + 1] - points[n] for n, name in enumerate(names)}


@st.composite
def _when(draw: st.DrawFn, taken: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Conditions on up to two attributes not in `taken`."""
    free = sorted(set(CONDITIONS) - taken)
    found = {}
    for attribute in draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []:
        choices = [c for wide, narrower in CONDITIONS[attribute] for c in (wide, *narrower)]
        found[attribute] = draw(st.sampled_from(choices))
    return found


@st.composite
def _rule(draw: st.DrawFn, flag: dict[str, Any]) -> dict[str, Any]:
    names = sorted(KINDS[_kind(flag)])
    rule: dict[str, Any] = {}
    when = draw(_when())
    if when:
        rule["when"] = when
    if draw(st.booleans()):
        return {**rule, "serve": draw(st.sampled_from(names))}
    rule["rollout"] = draw(_split(names, 100))
    by, seed = draw(st.sampled_from(BY)), draw(st.sampled_from(SEEDS))
    return {
        **rule,
        **({} if by is None else {"by": by}),
        **({} if seed is None else {"seed": seed}),
    }


def _rules(flag: dict[str, Any], least: int = 0) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(_rule(flag), min_size=least, max_size=3)


@st.composite
def _any_override(draw: st.DrawFn, flag: dict[str, Any]) -> Any:
    """An environment's entry, anything the format allows (None: none)."""
    shape = draw(st.sampled_from(["none", "bare", "mapping", "mapping"]))
    if shape == "none":
        return None
    if shape == "bare":
        return draw(_variant_values(flag))
    override: dict[str, Any] = {}
    if draw(st.booleans()):
        override[_setting(flag)] = draw(_variant_values(flag))
    if draw(st.booleans()):
        apps = st.dictionaries(
            st.sampled_from(APPLICATIONS), _variant_values(flag), min_size=1, max_size=2
        )
        override["applications"] = draw(apps)
    if not override or draw(st.booleans()):
        override["rules"] = draw(_rules(flag))
    return override


def _narrower(attribute: str, condition: Any) -> list[Any]:
    """`condition` and the conditions on `attribute` known to lie within it."""
    return [
        condition,
        *(n for wide, found in CONDITIONS[attribute] if wide == condition for n in found),
    ]


@st.composite
def _within(
    draw: st.DrawFn,
    dependency: tuple[str, dict[str, Any]],
    rule: dict[str, Any],
    flag: dict[str, Any],
) -> dict[str, Any]:
    """A rule of `flag` that serves on only to contexts the dependency's `rule` serves on."""
    key, theirs = dependency
    when = {
        attribute: draw(st.sampled_from(_narrower(attribute, condition)))
        for attribute, condition in rule.get("when", {}).items()
    }
    when.update(draw(_when(frozenset(when))))
    off = _off(flag)
    names = [name for name in sorted(KINDS[_kind(flag)]) if name != off]
    mine: dict[str, Any] = {"when": when} if when else {}
    if "serve" in rule:
        return {**mine, "serve": draw(st.sampled_from(names))}
    share = 5 * draw(st.integers(1, _share(theirs, rule) // 5))
    assert off is not None
    weights = {**draw(_split(names, share)), off: 100 - share}
    by = {"by": rule["by"]} if "by" in rule else {}
    return {**mine, "rollout": weights, **by, "seed": rule.get("seed", key)}


@st.composite
def _dependent_rules(
    draw: st.DrawFn, dependency: tuple[str, dict[str, Any]], flag: dict[str, Any], environment: str
) -> list[dict[str, Any]] | None:
    """`flag`'s rules in `environment`, where it is off but for them; None where it may be
    anything (the dependency is on for every context there)."""
    _, theirs = dependency
    off = _off(theirs)
    rules = _rules_in(theirs, environment)
    always = off not in _cells(theirs, environment) and all(_share(theirs, r) == 100 for r in rules)
    if always and draw(st.booleans()):
        return None
    narrowable = [
        rule
        for n, rule in enumerate(rules)
        if _share(theirs, rule) > 0 and all(_share(theirs, before) == 100 for before in rules[:n])
    ]
    ons = draw(st.lists(st.sampled_from(narrowable), min_size=1, max_size=2)) if narrowable else []
    found = [draw(_within(dependency, rule, flag)) for rule in ons]
    offs = draw(st.lists(_when(), max_size=1))
    found += [{**({"when": when} if when else {}), "serve": _off(flag)} for when in offs]
    return draw(st.permutations(found))


@st.composite
def _ruled_flag(
    draw: st.DrawFn, gated: bool, dependency: tuple[str, dict[str, Any]] | None, least: int
) -> dict[str, Any]:
    """A flag that depends on `dependency` if given, with at least `least` top-level rules;
    `gated`: it has an `off` (typed flags need one where a dependency is involved). One
    dependent in ten is drawn as if it had no dependency: flagc refuses most of those, and
    proves the rest some other way."""
    flag = draw(_typed_or_not(gated))
    own: dict[str, list[dict[str, Any]] | None] = dict.fromkeys(ENVIRONMENTS)  # None: any
    if dependency is not None:
        flag["depends_on"] = [dependency[0]]
        if draw(st.integers(0, 9)) != 5:  # not a bound, which hypothesis draws more often
            own = {e: draw(_dependent_rules(dependency, flag, e)) for e in ENVIRONMENTS}
    kept = [rules for rules in own.values() if rules]
    top: list[dict[str, Any]] = draw(_rules(flag, least))
    if draw(st.booleans()) and kept:
        top = draw(st.sampled_from(kept))
    if top:
        flag["rules"] = top
    environments = {}
    for environment, rules in own.items():
        override = draw(_any_override(flag) if rules is None else _off_there(flag, rules, top))
        if override is not None:
            environments[environment] = override
    if environments:
        flag["environments"] = environments
    return flag


@st.composite
def _typed_or_not(draw: st.DrawFn, gated: bool) -> dict[str, Any]:
    """A flag's type, variants (declared in any order), `off` (always where `gated`), own
    value and applications' values."""
    kind = draw(st.sampled_from(sorted(KINDS)))
    flag: dict[str, Any] = {"description": "Generated", "owner": "team-a"}
    if kind != "boolean":
        names = draw(st.permutations(sorted(KINDS[kind])))
        flag.update(type=kind, variants={name: KINDS[kind][name] for name in names})
        if gated or draw(st.booleans()):
            flag["off"] = draw(st.sampled_from(names))
    flag[_setting(flag)] = draw(_variant_values(flag))
    apps = draw(st.dictionaries(st.sampled_from(APPLICATIONS), _variant_values(flag), max_size=2))
    if apps:
        flag["applications"] = apps
    return flag


@st.composite
def _off_there(
    draw: st.DrawFn, flag: dict[str, Any], rules: list[dict[str, Any]], top: list[dict[str, Any]]
) -> Any:
    """An environment's entry where `flag` is off in every cell, with `rules` (the top-level
    ones, `top`, where they are the same)."""
    off = _written(flag, str(_off(flag)))
    if not rules and draw(st.booleans()):
        return off  # a bare value: no rules
    override = {_setting(flag): off}
    return override if rules == top else {**override, "rules": rules}


@st.composite
def trees_with_rules(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Two to four flags, most depending on the one before (chains up to four deep)."""
    count = draw(st.integers(2, 4))
    keys = draw(st.permutations(KEYS))[:count]
    parents: list[int | None] = [None]
    parents += [draw(st.sampled_from([n - 1, n - 1, None, *range(n)])) for n in range(1, count)]
    involved = {n for n, parent in enumerate(parents) if parent is not None}
    involved |= {parent for parent in parents if parent is not None}
    flags: dict[str, dict[str, Any]] = {}
    for n, parent in enumerate(parents):
        dependency = None if parent is None else (keys[parent], flags[keys[parent]])
        least = 1 if n in parents else 0  # a dependency: with rules to narrow
        flags[keys[n]] = draw(_ruled_flag(n in involved, dependency, least))
    return flags


def _depth(flags: dict[str, dict[str, Any]], key: str) -> int:
    return 1 + max((_depth(flags, d) for d in flags[key].get("depends_on", [])), default=0)


def _ruled_dependency(document: dict[str, Any]) -> bool:
    """Whether a rule can turn a flag on in an environment where a dependency has rules
    too: there the compiler had to prove more than values."""
    flags = document["flags"]
    for flag in flags.values():
        for dependency in flag["depends_on"]:
            for environment, row in flag["resolved"].items():
                theirs = flags[dependency]["resolved"][environment]["rules"]
                if theirs and any(_turns_on(rule, flag["off"]) for rule in row["rules"]):
                    return True
    return False


def _turns_on(rule: dict[str, Any], off: str) -> bool:
    """Whether a rule as the snapshot has it can serve another variant than `off`."""
    if "serve" in rule:
        return bool(rule["serve"] != off)
    return any(name != off and weight for name, weight in rule["rollout"])


def _written_files(flags: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The flag files, each value written out in full (PyYAML would write a value used
    twice as an anchor and an alias, which flagc refuses)."""
    return {
        f"{key}.yaml": yaml.safe_dump(json.loads(json.dumps(flag)), sort_keys=False)
        for key, flag in flags.items()
    }


RULED_EXAMPLES = 15
RULED_CONTEXTS = 200


def test_three_ways_agree_for_generated_trees_with_rules() -> None:
    """Hypothesis discards the trees flagc refuses (a dependency it cannot prove); the
    counts say that most are accepted, and that those have rules and chains, and flags
    whose value changes with the context."""
    seen: Counter[str] = Counter()

    # The same trees every run: the counts below are of what was drawn, and with 15 trees
    # drawn at random, a run in which 7 were chained failed, with no fault of flagc's.
    @given(trees_with_rules())
    @settings(
        max_examples=RULED_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def agree(flags: dict[str, dict[str, Any]]) -> None:
        seen["drawn"] += 1
        with tempfile.TemporaryDirectory() as scratch:
            files = {"_project.yaml": PROJECT, **_written_files(flags)}
            out = built_if_accepted(Path(scratch), files)
            assume(out is not None)
            assert out is not None
            seen["accepted"] += 1
            rows = [
                row for flag in compiled(out)["flags"].values() for row in flag["resolved"].values()
            ]
            seen["with rules"] += any(row["rules"] for row in rows)
            seen["chained"] += max(_depth(flags, key) for key in flags) >= 2
            seen["proved by rules"] += _ruled_dependency(compiled(out))
            seen["varying"] += three_ways_agree(out, contexts=RULED_CONTEXTS) > 0

    agree()
    assert seen["accepted"] >= 0.5 * seen["drawn"], seen
    for kind in ("with rules", "chained", "varying"):
        assert seen[kind] >= seen["accepted"] / 2, (kind, seen)
    assert seen["proved by rules"] >= seen["accepted"] / 3, seen
