"""core.flagd's files for flags with schedules: the steps encoded with `$flagd.timestamp`,
so that the one file serves every moment. Tables of the encoding, a differential test
against the pinned flagd evaluator at instants around the steps, and flagd's own provider
watched across a step in real time."""

from __future__ import annotations

import copy
import importlib
import json
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openfeature.client import OpenFeatureClient
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from compiler.cli import main
from core import flagd
from core.evaluate import Evaluator
from core.schedule import moment, utc_text, view
from tests.compiler.helpers import VALIDATOR
from tests.conftest import Git
from tests.core.flagd_oracle import (
    APPLICATIONS,
    ENVIRONMENTS,
    SOURCES,
    ask_flagd,
    contexts,
    flag_sets,
    make_document,
    make_flag,
    our_context,
    rollout,
    rules,
    when,
)
from tests.server.helpers import flagd_client

T = 1_800_000_000  # 2027-01-15T08:00:00Z
NOW = {"var": "$flagd.timestamp"}
APP = {"var": "application"}


def from_(at: int) -> dict[str, Any]:
    return {">=": [NOW, at]}


def row(environment: str = "production", **fields: Any) -> dict[str, Any]:
    """A row of `environment` as `make_flag(**fields)` resolves it."""
    found: dict[str, Any] = make_flag(**fields)["resolved"][environment]
    return found


def scheduled(flag: dict[str, Any], *steps: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    """`flag` with `steps`: (moment, {environment: row}) each, as core.rows.steps writes them."""
    later = [{"at": utc_text(at), "resolved": rows} for at, rows in steps]
    return {**flag, "schedule": [], "steps": later}


def ramp_logic(share: int) -> dict[str, Any]:
    """The logic of `ramp_row(share)`: `rollout`'s bucketing, then the cell, `off`."""
    by = {"var": "targetingKey"}
    weights = [["on", share], ["off", 100 - share]]
    served = {"fractional": [{"cat": ["seed", ":", by]}, *weights]}
    return {"if": [{"!==": [by, None]}, served, "off"]}


def ramp_row(share: int) -> dict[str, Any]:
    return row(rules={"production": [rollout([("on", share), ("off", 100 - share)])]})


ON = row(cell=("on", "environment"))
ON_IN_APP = ("on", "application")
NEVER_OFF = {"production": [rollout([("on", 100), ("off", 0)])]}
NL = {"production": [when("country", "in", ["NL"])]}
NL_LOGIC = {"in": [{"var": "country"}, ["NL"]]}
IOS_LOGIC = {"if": [{"in": [APP, ["ios"]]}, "on", "off"]}

# flags -> the flag asked for -> its entry's defaultVariant and targeting in production
ENCODINGS = {
    "a step": (
        {"f": scheduled(make_flag(), (T, {"production": ON}))},
        "f",
        ("off", {"if": [from_(T), "on", "off"]}),
    ),
    "on, then off again": (
        {"f": scheduled(make_flag(), (T, {"production": ON}), (T + 60, {"production": row()}))},
        "f",
        ("off", {"if": [from_(T + 60), "off", from_(T), "on", "off"]}),
    ),
    "a ramp, latest share first": (
        {
            "f": scheduled(
                make_flag(), *((T + 3600 * n, {"production": ramp_row(n * 50)}) for n in range(3))
            )
        },
        "f",
        (
            "off",
            {
                "if": [
                    from_(T + 7200),
                    ramp_logic(100),
                    from_(T + 3600),
                    ramp_logic(50),
                    from_(T),
                    ramp_logic(0),
                    "off",
                ]
            },
        ),
    ),
    "application-only: each phase names its variant, none ends with null": (
        {
            "f": scheduled(
                make_flag(applications={"production": {"web": ("on", "application")}}),
                (T, {"production": row(applications={"production": {"ios": ON_IN_APP}})}),
            )
        },
        "f",
        (
            "off",
            {
                "if": [
                    from_(T),
                    {"if": [{"in": [APP, ["ios"]]}, "on", "off"]},
                    {"if": [{"in": [APP, ["web"]]}, "on", "off"]},
                ]
            },
        ),
    ),
    "a dependent gated by a scheduled dependency is no longer gated from its step": (
        {
            "dep": scheduled(make_flag(), (T, {"production": ON})),
            "f": make_flag(cell=("on", "environment"), depends_on=["dep"]),
        },
        "f",
        ("on", {"if": [from_(T), "on", "off"]}),
    ),
    "a dependency's ramp inlined, per phase, in a dependent with rules": (
        {
            "dep": scheduled(
                make_flag(cell=("on", "environment")), (T, {"production": ramp_row(30)})
            ),
            "f": make_flag(depends_on=["dep"], rules=NL),
        },
        "f",
        (
            "off",
            {
                "if": [
                    from_(T),
                    {"if": [{"===": [ramp_logic(30), "off"]}, "off", NL_LOGIC, "on", "off"]},
                    {"if": [NL_LOGIC, "on", "off"]},
                ]
            },
        ),
    ),
    "a step two dependencies down": (
        {
            "c": scheduled(make_flag(), (T, {"production": ON})),
            "b": make_flag(cell=("on", "environment"), depends_on=["c"]),
            "a": make_flag(cell=("on", "environment"), depends_on=["b"]),
        },
        "a",
        ("on", {"if": [from_(T), "on", "off"]}),
    ),
    # The dependency's logic reads the same before and after, but from its step it has rules:
    # the dependent, decided per application before, inlines it from then on.
    "a dependency whose targeting stays but is no longer per application alone": (
        {
            "dep": scheduled(
                make_flag(applications={"production": {"ios": ON_IN_APP}}),
                (
                    T,
                    {"production": row(rules={"production": [when("application", "in", ["ios"])]})},
                ),
            ),
            "f": make_flag(cell=("on", "environment"), depends_on=["dep"]),
        },
        "f",
        (
            "on",
            {
                "if": [
                    from_(T),
                    {"if": [{"===": [IOS_LOGIC, "off"]}, "off", "on"]},
                    IOS_LOGIC,
                ]
            },
        ),
    ),
}


@pytest.mark.parametrize(("flags", "key", "expected"), ENCODINGS.values(), ids=ENCODINGS.keys())
def test_a_flag_whose_definition_changes_has_one_if_over_the_time(
    flags: dict[str, Any], key: str, expected: tuple[str, dict[str, Any]]
) -> None:
    definition = json.loads(flagd.definitions(make_document(flags))["production"])
    entry = definition["flags"][key]
    assert (entry["defaultVariant"], entry["targeting"]) == expected
    assert entry["state"] == "ENABLED"
    VALIDATOR.validate(definition)  # schemas/flagd.schema.json, the subset flagc writes


UNCHANGED = {  # flags whose entry `f`, in production, is what it would be without steps
    "a step in another environment": {
        "f": scheduled(make_flag(), (T, {"staging": row("staging", cell=("on", "environment"))}))
    },
    "a step that changes only the source": {
        "f": scheduled(make_flag(), (T, {"production": row(cell=("off", "environment"))}))
    },
    "a dependency whose step changes it but not whether it is ever off": {
        "dep": scheduled(
            make_flag(cell=("on", "environment")),
            (T, {"production": row(cell=("on", "environment"), rules=NEVER_OFF)}),
        ),
        "f": make_flag(cell=("on", "environment"), depends_on=["dep"], rules=NL),
    },
    "a step the same as the row before": {
        "f": scheduled(make_flag(rules=NL), (T, {"production": row(rules=NL)}))
    },
}


@pytest.mark.parametrize("flags", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_an_entry_whose_logic_never_changes_keeps_its_bytes(flags: dict[str, Any]) -> None:
    without = {
        key: {name: value for name, value in flag.items() if name not in ("steps", "schedule")}
        for key, flag in flags.items()
    }
    ours = flagd.files(make_document(flags))["production"]
    theirs = flagd.files(make_document(without))["production"]
    a, _, _, d = ours.spans["f"]
    e, _, _, h = theirs.spans["f"]
    assert ours.data[a:d] == theirs.data[e:h]
    assert b"$flagd.timestamp" not in ours.data[a:d]


def entry(file: flagd.File, key: str) -> bytes:
    a, _, _, d = file.spans[key]
    return file.data[a:d]


@pytest.mark.parametrize(
    ("before", "changed"),
    [(("on", "environment"), set()), (("off", "default"), {"mid", "top"})],
    ids=["on already", "off before"],
)
def test_a_step_that_leaves_a_dependency_as_it_was_costs_its_dependents_nothing(
    monkeypatch: pytest.MonkeyPatch, before: tuple[str, str], changed: set[str]
) -> None:
    """`root` is turned on at T in production, `mid` inlines it and `top` inlines `mid`.
    When it was on already, they have the bytes they have without the step, and no flag
    but `root` is made as it stands at T (`core.schedule.entry_at`): what does not change
    at a moment costs its dependents nothing then. When it was off, they change at T."""
    flags = {
        "root": scheduled(make_flag(rows={"production": before}), (T, {"production": ON})),
        "mid": make_flag(cell=("on", "environment"), depends_on=["root"], rules=NL),
        "top": make_flag(cell=("on", "environment"), depends_on=["mid"]),
    }
    names = {id(flag): key for key, flag in flags.items()}
    made: set[tuple[str, int]] = set()
    entry_at = flagd.entry_at

    def recorded(flag: Mapping[str, Any], at: int) -> Mapping[str, Any]:
        made.add((names[id(flag)], at))
        return entry_at(flag, at)

    monkeypatch.setattr(flagd, "entry_at", recorded)
    ours = flagd.files(make_document(flags))["production"]
    without = {**flags, "root": make_flag(rows={"production": before})}
    theirs = flagd.files(make_document(without))["production"]
    assert made == {(key, T) for key in {"root", *changed}}
    for key in ("mid", "top"):
        assert (entry(ours, key) == entry(theirs, key)) == (key not in changed), key
        assert (b"$flagd.timestamp" in entry(ours, key)) == (key in changed), key


def test_a_long_chain_changes_at_the_step_at_its_bottom() -> None:
    """A chain of 400 flags, each gated by the next, listed from the top (so that the
    first entry made asks for all the others): each changes at the step at the bottom.
    Making the phases adds nothing to the depth the chain's targeting itself takes."""
    length = 400
    flags = {
        f"c{n:03d}": make_flag(cell=("on", "environment"), depends_on=[f"c{n + 1:03d}"])
        for n in range(length - 1)
    }
    flags[f"c{length - 1:03d}"] = scheduled(make_flag(), (T, {"production": ON}))
    definition = json.loads(flagd.definitions(make_document(flags))["production"])
    expected = ("on", {"if": [from_(T), "on", "off"]})
    for key in list(flags)[:-1]:
        found = definition["flags"][key]
        assert (found["defaultVariant"], found["targeting"]) == expected, key


def documents() -> Iterator[dict[str, Any]]:
    for flags, _, _ in ENCODINGS.values():
        yield make_document(flags)


@pytest.mark.parametrize("document", list(documents()), ids=ENCODINGS.keys())
def test_a_refreshed_file_with_schedules_is_the_file_made_anew(document: dict[str, Any]) -> None:
    """Scheduled entries are ordinary entries to an incremental build: made again or taken
    from the previous file with the new revision, the bytes and spans of a file made anew."""
    before = {**document, "revision": "a" * 40}
    for environment in ENVIRONMENTS:
        previous = flagd.files(before)[environment]
        expected = flagd.files(document)[environment]
        for changed in (set(), set(document["flags"])):
            found = flagd.refreshed(previous, "a" * 40, document, environment, changed)
            assert found == expected


# The differential test: flagd's clock against core.evaluate on the view at that moment ------

# flagd-core reads its clock as `int(time.time())` in this module; the test sets that clock
# (the only thing it replaces) to look at many instants without waiting for them. The end
# to end test below waits for a real step on the real clock.
TARGETING = importlib.import_module("openfeature.contrib.tools.flagd.core.targeting.targeting")
MOMENTS = [T, T + 1, T + 60, T + 3600]  # few, so that flags' steps meet
INSTANTS = sorted({T - 86400.0, T + 86400.0} | {m + d for m in MOMENTS for d in (-0.5, 0, 0.999)})


def clock(instant: float) -> SimpleNamespace:
    """A stand-in for the `time` module that flagd-core's targeting reads."""
    return SimpleNamespace(time=lambda: instant)


@st.composite
def scheduled_sets(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """`flag_sets`, some of the flags with steps: rows of the same shapes at a few moments,
    each in some of the environments."""
    flags = draw(flag_sets())
    for key, flag in flags.items():
        if not draw(st.booleans()):
            continue
        names, off = list(flag["variants"]), flag["off"]
        cells = st.tuples(st.sampled_from(names), SOURCES)
        steps = []
        moments = st.lists(st.sampled_from(MOMENTS), min_size=1, max_size=3, unique=True)
        for at in sorted(draw(moments)):
            where = draw(st.lists(st.sampled_from(ENVIRONMENTS), min_size=1, unique=True))
            made = make_flag(
                variants=flag["variants"],
                off=off,
                kind=flag["type"],
                cell=(names[0], "default"),  # for the environments it leaves alone
                rows={e: draw(cells) for e in where},
                applications={
                    e: draw(st.dictionaries(st.sampled_from(APPLICATIONS), cells)) for e in where
                },
                rules={e: draw(rules(names, off)) for e in where},
            )
            steps.append((at, {e: made["resolved"][e] for e in where}))
        flags[key] = scheduled(flag, *steps)
    return flags


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flags=scheduled_sets(), generated=st.lists(contexts(), min_size=2, max_size=4))
def test_flagd_serves_at_each_instant_what_the_view_at_that_instant_serves(
    flags: dict[str, dict[str, Any]], generated: list[dict[str, Any]]
) -> None:
    document = make_document(flags)
    files = flagd.definitions(document)
    cores = {}
    for environment in ENVIRONMENTS:
        cores[environment] = FlagdCore()
        cores[environment].set_flags(files[environment].decode())
    for instant in INSTANTS:
        evaluator = Evaluator(view(document, math.floor(instant)))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TARGETING, "time", clock(instant))
            for environment, core in cores.items():
                for application in [None, *APPLICATIONS]:
                    for context in generated:
                        full = our_context(application, context)
                        for key, flag in flags.items():
                            ours = evaluator.evaluate(key, environment, application, full)
                            theirs = ask_flagd(core, flag["type"], key, application, full)
                            where = (key, environment, application, context, instant)
                            assert theirs == (ours.variant, ours.value), where


def test_the_clock_is_flagds_whole_seconds() -> None:
    """A step at T is served from T on, to the second: T - 0.001 still reads T - 1."""
    flags = {"f": scheduled(make_flag(), (T, {"production": ON}))}
    core = FlagdCore()
    core.set_flags(flagd.definitions(make_document(flags))["production"].decode())
    served = {}
    for instant in (T - 1, T - 0.001, T, T + 0.5):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TARGETING, "time", clock(instant))
            served[instant] = ask_flagd(core, "boolean", "f", None, {})[0]
    assert served == {T - 1: "off", T - 0.001: "off", T: "on", T + 0.5: "on"}


def test_the_flags_in_the_document_are_not_changed() -> None:
    flags = ENCODINGS["a dependency's ramp inlined, per phase, in a dependent with rules"][0]
    document = make_document(copy.deepcopy(flags))
    flagd.definitions(document)
    assert document == make_document(flags)


# End to end: flagd's own provider on `flagc build`'s file, across a real step ---------------

PROJECT = "environments: [staging, production]\napplications: [web, ios]\n"
BANNER = """description: The banner
owner: team-growth
enabled: false
environments:
  production:
    enabled: false
    applications:
      ios: true
    schedule:
      - at: {at}
        enabled: true
"""


# Seconds from choosing the step's moment to it: a build and provider start-up that land too
# late on a loaded machine are done again, once, with a moment further ahead.
STEP_AHEAD = (5, 10)
STEP_LOOK = 1  # seconds left once the provider has started: to ask before the step


def test_flagds_provider_switches_at_the_step_without_a_new_file(
    git_repo: tuple[Path, Git], tmp_path: Path
) -> None:
    repo, git = git_repo
    (repo / "flags").mkdir()
    (repo / "flags" / "_project.yaml").write_text(PROJECT, encoding="utf-8")
    for ahead in STEP_AHEAD:
        step = math.ceil(time.time()) + ahead
        text = BANNER.format(at=utc_text(step))
        (repo / "flags" / "banner.yaml").write_text(text, encoding="utf-8")
        git("add", "flags")
        git("commit", "--quiet", "--message", "Schedule the banner")
        out = tmp_path / f"out-{ahead}"
        assert main(["build", str(repo / "flags"), "-o", str(out)]) == 0
        path = out / "flagd" / "production.json"
        before = path.read_bytes(), path.stat().st_mtime_ns
        with flagd_client(path, poll_ms=100) as client:
            if time.time() < step - STEP_LOOK:
                seen, ios = watched(client, step)
                break
    else:
        raise AssertionError("the build and flagd's provider landed too late, twice")
    assert seen[0][0] < step and seen[0][1] is False  # asked before the step
    assert all(asked < step for asked, value, _ in seen if not value)
    switched = next((answered for _, value, answered in seen if value), None)
    assert switched is not None, "flagd's provider never served the step"
    assert step <= switched < step + 1
    assert ios is True
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def watched(client: OpenFeatureClient, step: int) -> tuple[list[tuple[float, bool, float]], bool]:
    """The banner asked of `client` on web until it is on (or 5 s past `step`): (asked, value,
    answered) each; then its value on ios."""
    seen: list[tuple[float, bool, float]] = []
    while not seen or (not seen[-1][1] and time.time() < step + 5):
        asked = time.time()
        details = client.get_boolean_details("banner", True, context("web"))
        assert details.error_code is None, details  # never the default asked for
        seen.append((asked, details.value, time.time()))
        time.sleep(0.02)
    return seen, client.get_boolean_value("banner", False, context("ios"))


def context(application: str) -> EvaluationContext:
    return EvaluationContext(targeting_key="user-1", attributes={"application": application})


def test_the_build_writes_the_encoding(git_repo: tuple[Path, Git], tmp_path: Path) -> None:
    """What `flagc build` writes for the tree above: the snapshot's steps in the file."""
    repo, git = git_repo
    (repo / "flags").mkdir()
    (repo / "flags" / "_project.yaml").write_text(PROJECT, encoding="utf-8")
    banner = BANNER.format(at="2099-01-11T09:00:00+01:00")
    (repo / "flags" / "banner.yaml").write_text(banner, encoding="utf-8")
    git("add", "flags")
    git("commit", "--quiet", "--message", "Schedule the banner")
    out = tmp_path / "out"
    assert main(["build", str(repo / "flags"), "-o", str(out)]) == 0
    entry = json.loads((out / "flagd" / "production.json").read_bytes())["flags"]["banner"]
    at = moment("2099-01-11T08:00:00Z")
    ios: Mapping[str, Any] = {"if": [{"in": [APP, ["ios"]]}, "on", "off"]}
    assert entry["targeting"] == {"if": [from_(at), "on", ios]}
    staging = json.loads((out / "flagd" / "staging.json").read_bytes())["flags"]["banner"]
    assert "targeting" not in staging
