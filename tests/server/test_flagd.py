"""flagd's flag definitions: served at /api/v1/environments/{env}/flagd.json as the bytes
`flagc build` writes to OUT/flagd/<env>.json, and evaluated by the unmodified flagd
provider for OpenFeature (in-process, from the file) to exactly what the compiler resolved.

One resolution, three ways out: the flagd file (through flagd's provider), the flat map and
OFREP agree with the snapshot for every flag, environment and application (and for none),
for the fixture, for the example flags/ tree and for generated trees."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from core.evaluate import Evaluator
from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing
from server.errors import PROBLEM_BASE, PROBLEM_JSON
from server.store import Store
from tests.conftest import PROJECT
from tests.server.conftest import FLAGS, ROOT, Built, Live, built_in_git

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


@contextlib.contextmanager
def flagd_client(path: Path, poll_ms: int = 100) -> Iterator[OpenFeatureClient]:
    """An OpenFeature client whose provider is flagd's, reading `path` in file mode (it
    looks at the file's modification time every `poll_ms`), in a domain of its own."""
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(path), deadline_ms=poll_ms
    )
    domain = f"flagd-{uuid.uuid4().hex}"
    api.set_provider_and_wait(provider, domain)
    try:
        yield api.get_client(domain)
    finally:
        api.clear_providers()  # shuts the provider down: its watcher stops after one more look
        watcher = getattr(getattr(provider.resolver, "connector", None), "thread", None)
        if isinstance(watcher, threading.Thread):  # wait for that look, before a test
            watcher.join(timeout=30)  # removes the file and the look would log its absence


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
    return document


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


def three_ways_agree(out: Path, contexts: int = 5) -> None:
    """For every environment and application (and none) and `contexts` generated contexts:
    flagd's provider over the file, the flat map with the context and OFREP over a real
    Store give exactly what `core.evaluate` gives (for a flag without rules: what
    snapshot.json resolved), and the server's flagd.json is the file byte for byte."""
    document = compiled(out)
    evaluator = Evaluator(document)
    store = Store(out)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
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


def generated_contexts(count: int) -> list[dict[str, Any]]:
    """`count` contexts, the same every run: a targeting key, and some of the attributes the
    example flags' rules read, each a value that a query string carries unchanged."""
    chance = random.Random(count)
    choices = {
        "country": ["NL", "BE", "DE", "US"],
        "plan": ["free", "pro", "enterprise"],
        "app_version": ["2.2.9", "2.3.0", "v2.4", "3.0.1"],
        "email": ["ada@example.com", "bob@example.org"],
        "seats": [1, 10, 50, 120],
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
