"""Dependencies at every moment: the time split of compiler.dependencies agrees with brute
force over sampled instants, for random small trees of a flag and its dependency, either or
both scheduled (steps and ramps). Pure: the files are parsed in memory, never written."""

from __future__ import annotations

import datetime
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.dependencies import check_dependencies
from compiler.validate import FlagFile
from core.resolve import Grid, Resolution, resolve
from core.schedule import phase_at, phases
from tests.compiler.helpers import flag_files

GRID = Grid(("staging", "production"), ("web",))
MINUTE = 60
BASE = 1_800_000_000  # 2027-01-15T08:00:00Z, on the minute
# Every moment generated is on the minute (steps, ramps' ends, and their share changes,
# `every` being whole minutes from a `from` on the minute), so one sample a minute sees
# every interval.
SPAN = 20 * 60 * MINUTE
SAMPLES = range(BASE - MINUTE, BASE + SPAN, MINUTE)


def text(at: int) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    share = draw(st.sampled_from([0, 20, 50, 100]))
    choices = [
        {"serve": "on"},
        {"serve": "off"},
        {"when": {"country": "NL"}, "serve": "on"},
        {"rollout": {"on": share, "off": 100 - share}, "seed": "shared"},
    ]
    return draw(st.lists(st.sampled_from(choices), max_size=2))


@st.composite
def schedules(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Steps in time order on the minute, no step within a ramp's window."""
    at = BASE + draw(st.integers(0, 6)) * 10 * MINUTE
    found: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            every = draw(st.sampled_from([10, 20, 30]))
            length = draw(st.integers(1, 8)) * every * MINUTE + draw(st.integers(0, 9)) * MINUTE
            ramp = {
                "from": text(at),
                "to": text(at + length),
                "variant": "on",
                "start": draw(st.sampled_from([0, 10, 50])),
                "end": draw(st.sampled_from([0, 60, 100])),
                "every": f"{every}m",
                "seed": draw(st.sampled_from(["shared", "other"])),
            }
            found.append({"ramp": ramp})
            at += length
        else:
            step: dict[str, Any] = {"at": text(at)}
            fields = draw(st.sets(st.sampled_from(["enabled", "web", "rules"]), min_size=1))
            if "enabled" in fields:
                step["enabled"] = draw(st.booleans())
            if "web" in fields:
                step["applications"] = {"web": draw(st.booleans())}
            if "rules" in fields:
                step["rules"] = draw(rules())
            found.append(step)
            at += MINUTE
        at += draw(st.integers(0, 6)) * 10 * MINUTE
    return found


@st.composite
def flags(draw: st.DrawFn, key: str) -> dict[str, Any]:
    flag: dict[str, Any] = {"description": key, "owner": "me", "enabled": draw(st.booleans())}
    if draw(st.booleans()):
        flag["rules"] = draw(rules())
    if draw(st.booleans()):
        flag["schedule"] = draw(schedules())
    environments: dict[str, Any] = {}
    for environment in GRID.environments:
        kind = draw(st.sampled_from(["absent", "bare", "override", "scheduled", "scheduled"]))
        if kind == "bare":
            environments[environment] = draw(st.booleans())
        elif kind != "absent":
            override: dict[str, Any] = {"enabled": draw(st.booleans())}
            if kind == "scheduled":
                override["schedule"] = draw(schedules())
            environments[environment] = override
    flag["environments"] = environments
    return flag


class BruteForce:
    """The flags at each sampled instant: each instant's flags resolved, and checked as
    flags without schedules. Instants whose flags are the same phases share the work."""

    def __init__(self, files: dict[str, FlagFile]) -> None:
        self.files = files
        self.timelines = {key: phases(f.flag, GRID.environments) for key, f in files.items()}
        self.done: dict[tuple[object, ...], tuple[dict[str, Resolution], set[str]]] = {}

    def at(self, at: int) -> tuple[dict[str, Resolution], set[str]]:
        """The flags' resolutions at `at`, and the dependency codes of those flags."""
        then = {key: phase_at(found, at) for key, found in self.timelines.items()}
        state = tuple(phase.start for phase in then.values())
        if state not in self.done:
            files = {
                key: FlagFile(key, self.files[key].document, phase.flag)
                for key, phase in then.items()
            }
            resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
            codes = {d.code for d in check_dependencies(GRID, files, resolved)}
            self.done[state] = resolved, codes
        return self.done[state]


INTERVAL = re.compile(r"from (\S+?) (?:to (\S+?)(?=,| and|$)|on)")


def named_instants(message: str) -> set[int]:
    """The sampled instants inside the intervals a message names."""
    found: set[int] = set()
    head = message.split(", top ", maxsplit=1)[0]
    for start, end in INTERVAL.findall(head):
        begin = _moment(start)
        stop = _moment(end) if end else BASE + SPAN
        found |= {at for at in SAMPLES if begin <= at < stop}
    return found


def _moment(shown: str) -> int:
    parsed = datetime.datetime.strptime(shown, "%Y-%m-%dT%H:%MZ").replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(flags("base"), flags("top")))
def test_the_time_split_agrees_with_brute_force_over_sampled_instants(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    base, top = pair
    files = flag_files({"base": base, "top": {**top, "depends_on": ["base"]}})
    resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
    found = check_dependencies(GRID, files, resolved)
    brute = BruteForce(files)
    broken = {}
    for at in SAMPLES:
        then = brute.at(at)[0]
        broken[at] = then["top"].on & ~then["base"].on
    # dependency-disabled iff the dependent is on in a cell where its dependency is off for
    # every context (core.resolve's bits) at some instant
    disabled = [d for d in found if d.code == "dependency-disabled"]
    assert bool(disabled) == any(broken.values())
    # the instants its messages name are those with cells broken beyond the base's
    before = resolved["top"].on & ~resolved["base"].on
    named: set[int] = set()
    for diagnostic in disabled:
        if diagnostic.message.startswith("from "):
            assert "more intervals" not in diagnostic.message
            named |= named_instants(diagnostic.message)
    assert named == {at for at, cells in broken.items() if cells & ~before}
    # and its codes are those some instant's flags, checked on their own, give
    assert {d.code for d in found} == set().union(*(brute.at(at)[1] for at in SAMPLES))


def test_a_tree_without_schedules_gets_no_times() -> None:
    files = flag_files(
        {
            "base": {"description": "b", "owner": "me", "enabled": False},
            "top": {"description": "t", "owner": "me", "enabled": True, "depends_on": ["base"]},
        }
    )
    resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
    [found] = check_dependencies(GRID, files, resolved)
    assert found.code == "dependency-disabled"
    assert found.message.startswith("top is on in every environment and application")


def _chain(edges: dict[str, list[str]]) -> dict[str, FlagFile]:
    return flag_files(
        {
            key: {"description": "d", "owner": "me", "enabled": False, "depends_on": needs}
            for key, needs in edges.items()
        }
    )


def test_a_cycle_behind_flags_that_are_in_none_is_found() -> None:
    # a and b lead into the cycle c -> d -> c; e needs a flag no file declares
    edges = {"a": ["b"], "b": ["c"], "c": ["d"], "d": ["c"], "e": ["missing"]}
    files = _chain(edges)
    found = [d for d in check_dependencies(None, files, {}) if d.code == "dependency-cycle"]
    assert [(d.file, d.message.split(";")[0]) for d in found] == [
        ("flags/c.yaml", "dependency cycle: c -> d -> c")
    ]


def test_flags_in_no_cycle_get_none() -> None:
    edges = {"a": ["b", "c"], "b": ["c"], "c": ["missing"], "d": []}
    assert check_dependencies(None, _chain(edges), {}) == []
