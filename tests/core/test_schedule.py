"""core.schedule: what a flag serves at any instant equals its steps replayed up to that
instant, and a ramp's share changes are every change of the issue's formula.

The references here are written from the rules in docs/flags.md ("Schedules"), not from
core.schedule: a replay of the steps in file order (the schedules generated are in order,
as `flagc check` requires), and the share formula with exact fractions.
"""

from __future__ import annotations

import datetime
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import EnvironmentOverride, Flag, Ramp
from core.schedule import (
    moment,
    phase_at,
    phases,
    ramp_shares,
    seconds,
    share_at,
    short_text,
    utc_text,
)

ENVIRONMENTS = ("development", "staging", "production")
APPLICATIONS = ("web", "ios")
BASE = 1_800_000_000  # 2027-01-15T08:00:00Z
UNITS = {"m": 60, "h": 3600, "d": 86400}


def text(at: int) -> str:
    """A moment as a file may write it: in UTC, or in a zone an hour east."""
    when = datetime.datetime.fromtimestamp(at, datetime.UTC)
    if at % 2:
        return when.isoformat().replace("+00:00", "Z")
    return when.astimezone(datetime.timezone(datetime.timedelta(hours=1))).isoformat()


def seconds_of(written: str) -> int:
    """The reference reading of a whole-second moment."""
    return int(datetime.datetime.fromisoformat(written).timestamp())


# -- random flags with schedules, in time order ----------------------------------------------


@st.composite
def values(draw: st.DrawFn, typed: bool) -> Any:
    return draw(st.sampled_from(["a", "b", "c"])) if typed else draw(st.booleans())


@st.composite
def rules(draw: st.DrawFn, typed: bool) -> list[dict[str, Any]]:
    off, other = ("a", "b") if typed else ("off", "on")
    share = draw(st.integers(0, 100))
    choices = [
        {"serve": other},
        {"when": {"country": ["NL"]}, "serve": off},
        {"rollout": {other: share, off: 100 - share}, "seed": "s"},
    ]
    return draw(st.lists(st.sampled_from(choices), max_size=2))


@st.composite
def ramp(draw: st.DrawFn, start: int, typed: bool) -> tuple[dict[str, Any], int]:
    """A ramp from `start`, and the first moment the next step may take."""
    unit = draw(st.sampled_from(["m", "h"]))
    every = draw(st.integers(1, 3))
    length = draw(st.integers(1, 40 * every * UNITS[unit]))
    fields = {
        "from": text(start),
        "to": text(start + length),
        "variant": draw(st.sampled_from(["b", "c"])) if typed else "on",
        "start": draw(st.integers(0, 100)),
        "end": draw(st.integers(0, 100)),
        "every": f"{every}{unit}",
    }
    if draw(st.booleans()):
        fields["by"] = "account"
    return {"ramp": fields}, start + length


@st.composite
def step(draw: st.DrawFn, at: int, typed: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"at": text(at)}
    chosen = draw(st.sets(st.sampled_from(["value", "applications", "rules"]), min_size=1))
    if "value" in chosen:
        fields["default" if typed else "enabled"] = draw(values(typed))
    if "applications" in chosen:
        names = draw(st.lists(st.sampled_from(APPLICATIONS), min_size=1, unique=True))
        fields["applications"] = {name: draw(values(typed)) for name in names}
    if "rules" in chosen:
        fields["rules"] = draw(rules(typed))
    return fields


@st.composite
def schedule(draw: st.DrawFn, typed: bool) -> list[dict[str, Any]]:
    """Steps strictly in time order, no step within a ramp's window."""
    at = BASE + draw(st.integers(0, 7200))
    found = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 2)) == 0:
            made, at = draw(ramp(at, typed))
        else:
            made, at = draw(step(at, typed)), at + 1
        found.append(made)
        at += draw(st.sampled_from([0, 1, 59, 3600, 86400]))
    return found


@st.composite
def flags(draw: st.DrawFn) -> Flag:
    typed = draw(st.booleans())
    document: dict[str, Any] = {"description": "d", "owner": "o"}
    if typed:
        document |= {"type": "string", "variants": {"a": 1, "b": 2, "c": 3}}
        document |= {"default": "a", "off": "a"}
    else:
        document["enabled"] = draw(st.booleans())
    if draw(st.booleans()):
        document["schedule"] = draw(schedule(typed))
    environments: dict[str, Any] = {}
    for environment in ENVIRONMENTS:
        kind = draw(st.sampled_from(["absent", "bare", "override", "scheduled"]))
        if kind == "bare":
            environments[environment] = draw(values(typed))
        elif kind != "absent":
            override: dict[str, Any] = {"applications": {"web": draw(values(typed))}}
            if draw(st.booleans()):
                override["rules"] = draw(rules(typed))
            if kind == "scheduled":
                override["schedule"] = draw(schedule(typed))
            environments[environment] = override
    document["environments"] = environments
    return Flag.model_validate(document)


# -- the reference ---------------------------------------------------------------------------


def reference_share(ramp: Ramp, at: int) -> int | None:
    """The issue's formula: start + (end - start) x k x every / (to - from), rounded down,
    k the whole periods since `from`; `end` from `to` on; None before `from`."""
    begin, end = seconds_of(ramp.from_), seconds_of(ramp.to)
    if at < begin:
        return None
    if at >= end:
        return ramp.end
    every = int(ramp.every[:-1]) * UNITS[ramp.every[-1]]
    periods = (at - begin) // every
    rise = Fraction((ramp.end - ramp.start) * periods * every, end - begin)
    return ramp.start + int(rise.__floor__())


def replayed(flag: Flag, environment: str, at: int) -> tuple[Any, ...]:
    """The environment's value-level fields after every step up to `at`, in file order."""
    override = flag.environments.get(environment)
    if override is not None and not isinstance(override, EnvironmentOverride):
        return ("bare", override)
    base = override or EnvironmentOverride.model_construct()
    value = base.enabled if flag.type == "boolean" else base.default
    applications, ruled = dict(base.applications), _dumped(base.rules)
    own = base.schedule
    for taken in own if own is not None else flag.schedule or []:
        if taken.ramp is not None:
            share = reference_share(taken.ramp, at)
            if share is not None:
                off = flag.off_variant
                weights = {taken.ramp.variant: share, off: 100 - share}
                rollout = {"rollout": weights, "by": taken.ramp.by, "seed": taken.ramp.seed}
                ruled = [{name: v for name, v in rollout.items() if v is not None}]
            continue
        assert taken.at is not None
        if seconds_of(taken.at) > at:
            break
        if "enabled" in taken.model_fields_set or "default" in taken.model_fields_set:
            value = taken.enabled if flag.type == "boolean" else taken.default
        applications |= taken.applications
        if "rules" in taken.model_fields_set:
            ruled = _dumped(taken.rules)
    return ("override", value, applications, ruled)


def served(flag: Flag, environment: str) -> tuple[Any, ...]:
    """The same fields of a phase's flag."""
    override = flag.environments.get(environment)
    if override is not None and not isinstance(override, EnvironmentOverride):
        return ("bare", override)
    base = override or EnvironmentOverride.model_construct()
    value = base.enabled if flag.type == "boolean" else base.default
    return ("override", value, dict(base.applications), _dumped(base.rules))


def _dumped(found: Any) -> list[dict[str, Any]] | None:
    if found is None:
        return None
    return [rule.model_dump(by_alias=True, exclude_none=True) for rule in found]


def instants(flag: Flag) -> set[int]:
    """Every moment written in the flag, a second either side, and the very start."""
    written: set[int] = {BASE - 1}
    for steps in [flag.schedule or []] + [
        o.schedule or [] for o in flag.environments.values() if isinstance(o, EnvironmentOverride)
    ]:
        for taken in steps:
            texts = [taken.at] if taken.ramp is None else [taken.ramp.from_, taken.ramp.to]
            written |= {seconds_of(t) + d for t in texts if t is not None for d in (-1, 0, 1)}
    return written


@settings(max_examples=300, deadline=None)
@given(flags(), st.lists(st.integers(BASE - 10, BASE + 10 * 86400), max_size=20))
def test_the_phase_at_any_instant_is_the_steps_replayed_up_to_it(
    flag: Flag, sampled: list[int]
) -> None:
    found = phases(flag, ENVIRONMENTS)
    assert [phase.start for phase in found][1:] == sorted({p.start for p in found[1:]})
    for at in sorted(instants(flag) | set(sampled)):
        phase = phase_at(found, at)
        assert phase.flag.schedule is None
        for environment in ENVIRONMENTS:
            expected = replayed(flag, environment, at)
            assert served(phase.flag, environment) == expected, (environment, at)


# -- ramp shares -----------------------------------------------------------------------------


@st.composite
def ramps(draw: st.DrawFn) -> Ramp:
    every = draw(st.sampled_from(["1m", "5m", "1h", "7m", "1d"]))
    length = draw(st.integers(1, 300)) * seconds(every) + draw(st.integers(-59, 59))
    start = BASE + draw(st.integers(0, 3600))
    fields = {
        "from": text(start),
        "to": text(start + max(length, 1)),
        "variant": "on",
        "start": draw(st.integers(0, 100)),
        "end": draw(st.integers(0, 100)),
        "every": every,
    }
    return Ramp.model_validate(fields)


def brute_shares(ramp: Ramp) -> list[tuple[int, int]]:
    """Every change of the share, found by asking the formula at each period."""
    begin, end = seconds_of(ramp.from_), seconds_of(ramp.to)
    every = seconds(ramp.every)
    found = [(begin, ramp.start)]
    at = begin + every
    while at < end:
        share = reference_share(ramp, at)
        assert share is not None
        if share != found[-1][1]:
            found.append((at, share))
        at += every
    if found[-1][1] != ramp.end:
        found.append((end, ramp.end))
    return found


@settings(max_examples=400, deadline=None)
@given(ramps(), st.lists(st.integers(BASE - 60, BASE + 400 * 86400), max_size=30))
def test_ramp_shares_are_every_change_of_the_share(ramp: Ramp, sampled: list[int]) -> None:
    shares = ramp_shares(ramp)
    assert shares == brute_shares(ramp)
    assert len(shares) <= 102
    begin, end = seconds_of(ramp.from_), seconds_of(ramp.to)
    for at in [
        *sampled,
        begin - 1,
        begin,
        end - 1,
        end,
        *(m + d for m, _ in shares for d in (-1, 0)),
    ]:
        expected = reference_share(ramp, at)
        assert share_at(ramp, at) == expected
        current = [share for changed, share in shares if changed <= at]
        assert (current[-1] if current else None) == expected


# -- moments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2027-01-11T09:00:00+01:00", "2027-01-11T08:00:00Z"),
        ("2027-01-11T08:00:00Z", "2027-01-11T08:00:00Z"),
        ("2027-01-11T08:00:00.000001Z", "2027-01-11T08:00:01Z"),  # a fraction rounds up
        # Digits past the microsecond, which datetime drops: read from the text.
        ("2027-01-11T08:00:00.000000001Z", "2027-01-11T08:00:01Z"),
        ("2027-01-11T08:00:00.0000009+01:00", "2027-01-11T07:00:01Z"),
        ("2027-01-11T08:00:00.000000000Z", "2027-01-11T08:00:00Z"),  # zeros are no fraction
        ("2027-01-11T08:00:00.0Z", "2027-01-11T08:00:00Z"),
        ("1969-12-31T23:59:59.000000001Z", "1970-01-01T00:00:00Z"),  # before 1970 too
        ("2027-01-11T08:00:00.5-00:30", "2027-01-11T08:30:01Z"),
        ("2027-01-11T08:00:00", "2027-01-11T08:00:00Z"),  # no offset: read as UTC
        ("2027-01-11T08:00:59.999Z", "2027-01-11T08:01:00Z"),
    ],
)
def test_moments_are_whole_seconds_a_fraction_rounding_up(written: str, expected: str) -> None:
    assert utc_text(moment(written)) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 32_503_680_000),  # 1970 to 3000
    st.text("0123456789", min_size=1, max_size=9),
    st.sampled_from([0, 60, -330, 1439, -1439]),  # the offset, in minutes
)
def test_a_moment_is_its_exact_instant_rounded_up(at: int, digits: str, minutes: int) -> None:
    """Against exact fractions: the instant the text names, rounded up to a whole second."""
    zone = datetime.timezone(datetime.timedelta(minutes=minutes))
    shown = datetime.datetime.fromtimestamp(at, zone).isoformat()  # ...T09:00:00+01:00
    written = f"{shown[:19]}.{digits}{shown[19:]}"
    exact = at + Fraction(int(digits), 10 ** len(digits))
    assert moment(written) == -(-exact // 1)


def test_short_text_shows_seconds_only_when_there_are_some() -> None:
    assert short_text(moment("2027-01-11T08:00:00Z")) == "2027-01-11T08:00Z"
    assert short_text(moment("2027-01-11T08:00:07Z")) == "2027-01-11T08:00:07Z"
