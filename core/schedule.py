"""Schedules: what a flag serves from each moment on (docs/flags.md, "Schedules").

An environment's `schedule` (or the top-level one, in every environment that has none of
its own and is not a bare value) is a list of steps. A step `at` a moment changes, from
then on, the environment's value-level fields it names: `enabled` or `default`, the
applications it names in `applications`, and `rules` as a whole. A `ramp` sets the
environment's rules to one rollout of `variant` against the flag's `off`, whose share at
moment t is `start + (end - start) x k x every / (to - from)` whole percent, rounded down,
k being the whole periods of `every` since `from`; from `to` on it is `end`.

Moments are whole seconds since the Unix epoch, UTC: a fraction of a second rounds up
(flagd's `$flagd.timestamp` counts whole seconds), and a time without a zone offset, which
`flagc check` refuses (`schedule-zone`), is read as UTC here. A flag's `phases` are the
flag as it stands before its first step and from each moment something changes on, each
a plain flag without schedules: what every other stage (resolve, the checks, flagd's
files, evaluation) already knows how to serve.
"""

from __future__ import annotations

import bisect
import datetime
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from core.model import EnvironmentOverride, Flag, Ramp, Rule, Step

Moment = int  # seconds since the Unix epoch, UTC
_UNITS: Final = {"m": 60, "h": 3600, "d": 86400}
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_SECOND: Final = datetime.timedelta(seconds=1)
_FRACTION: Final = re.compile(r"[.,]([0-9]+)")


def moment(text: str) -> Moment:
    """An RFC 3339 text as whole seconds, a fraction with any digit but 0 rounded up; no
    offset means UTC."""
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    whole = (parsed.replace(microsecond=0) - _EPOCH) // _SECOND
    # From the text: datetime keeps microseconds, and `.000000001` is a fraction too.
    fraction = _FRACTION.search(text)
    return whole + 1 if fraction is not None and fraction[1].strip("0") else whole


def utc_text(at: Moment) -> str:
    """`2027-01-11T08:00:00Z`: how the snapshot and the plan write a moment."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_text(at: Moment) -> str:
    """`2027-01-11T08:00Z` (seconds only when not 0): how messages name a moment."""
    shown = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return shown.strftime("%Y-%m-%dT%H:%M:%SZ" if shown.second else "%Y-%m-%dT%H:%MZ")


def seconds(duration: str) -> int:
    """`30m`, `1h`, `1d` in seconds."""
    return int(duration[:-1]) * _UNITS[duration[-1]]


def ramp_shares(ramp: Ramp) -> list[tuple[Moment, int]]:
    """Each moment the ramp's share changes, with the share from then on: `from` with
    `start` first. At most one per whole percent between `start` and `end`, found without
    walking every period (a ramp of minutes over years has millions)."""
    start, end = moment(ramp.from_), moment(ramp.to)
    every, span, rise = seconds(ramp.every), end - start, ramp.end - ramp.start
    found = [(start, ramp.start)]
    if span <= 0 or rise == 0:  # refused by `schedule-order`; as a step, the end share
        return found if span > 0 else [(start, ramp.end)]
    periods = set()
    for share in range(ramp.start, ramp.end, 1 if rise > 0 else -1):
        target = share + (1 if rise > 0 else -1)  # the first period that reaches it
        if rise > 0:
            period = -(-(target - ramp.start) * span // (rise * every))
        else:
            period = (ramp.start - target - 1) * span // (-rise * every) + 1
        if start + period * every < end:
            periods.add(period)
    for period in sorted(periods):
        found.append((start + period * every, share_of(ramp, period, every, span)))
    if found[-1][1] != ramp.end:
        found.append((end, ramp.end))
    return found


def share_of(ramp: Ramp, period: int, every: int, span: int) -> int:
    """The share in the `period`-th whole period since `from`: the issue's formula."""
    return ramp.start + (ramp.end - ramp.start) * period * every // span


def share_at(ramp: Ramp, at: Moment) -> int | None:
    """The ramp's share at `at`; None before `from`."""
    start, end = moment(ramp.from_), moment(ramp.to)
    if at < start:
        return None
    if at >= end:
        return ramp.end
    every = seconds(ramp.every)
    return share_of(ramp, (at - start) // every, every, end - start)


def ramp_rules(flag: Flag, ramp: Ramp, share: int) -> list[Rule]:
    """The rules a ramp sets at `share`: one rollout of its variant against `off`."""
    off = flag.off_variant
    weights = {ramp.variant: share} if off is None else {off: 100 - share, ramp.variant: share}
    fields = {"rollout": weights, "by": ramp.by, "seed": ramp.seed}
    return [
        Rule.model_validate({name: value for name, value in fields.items() if value is not None})
    ]


@dataclass(frozen=True, slots=True)
class Phase:
    """The flag as it stands from `start` on (None: before its first step)."""

    start: Moment | None
    flag: Flag


def scheduled(flag: Flag) -> bool:
    """Whether the flag has a schedule anywhere."""
    if flag.schedule is not None:
        return True
    # A loop rather than any() over a generator: 10,000 flags in 0.006 s rather than 0.0085 s.
    for override in flag.environments.values():
        if isinstance(override, EnvironmentOverride) and override.schedule is not None:
            return True
    return False


def schedules(flag: Flag, environments: Sequence[str]) -> Iterator[tuple[str, list[Step]]]:
    """Each environment's schedule: its own, else the top-level one unless it is a bare
    value."""
    for environment in environments:
        override = flag.environments.get(environment)
        if isinstance(override, EnvironmentOverride) and override.schedule is not None:
            yield environment, override.schedule
        elif flag.schedule is not None and (
            override is None or isinstance(override, EnvironmentOverride)
        ):
            yield environment, flag.schedule


def declared(flag: Flag) -> Iterator[tuple[tuple[str, ...], list[Step]]]:
    """Each schedule as the file writes it, with its path in the file: the top-level one
    (once, whichever environments it applies in), then each environment's own."""
    if flag.schedule is not None:
        yield ("schedule",), flag.schedule
    for environment, override in flag.environments.items():
        if isinstance(override, EnvironmentOverride) and override.schedule is not None:
            yield ("environments", environment, "schedule"), override.schedule


Change = tuple[Moment, int, str, Step, int | None]  # when, order, environment, step, share


def changes(flag: Flag, environments: Sequence[str]) -> list[Change]:
    """Every change of every environment, in time order (a ramp's at each share change);
    at one moment, in the order of the file."""
    found: list[Change] = []
    for environment, steps in schedules(flag, environments):
        for number, step in enumerate(steps):
            if step.ramp is None:
                assert step.at is not None  # the model requires one of them
                found.append((moment(step.at), number, environment, step, None))
                continue
            for at, share in ramp_shares(step.ramp):
                found.append((at, number, environment, step, share))
    found.sort(key=lambda change: change[:2])
    return found


def phases(flag: Flag, environments: Sequence[str]) -> list[Phase]:
    """The flag before its first step, then from each moment at which something changes:
    each a flag without schedules. A flag without a schedule has one phase, itself."""
    if not scheduled(flag):
        return [Phase(None, flag)]
    overrides = {name: _unscheduled(value) for name, value in flag.environments.items()}
    found = [Phase(None, _with(flag, overrides))]
    pending = changes(flag, environments)
    index = 0
    while index < len(pending):
        at = pending[index][0]
        while index < len(pending) and pending[index][0] == at:
            _, _, environment, step, share = pending[index]
            overrides[environment] = _applied(flag, overrides.get(environment), step, share)
            index += 1
        found.append(Phase(at, _with(flag, overrides)))
    return found


def phase_at(found: Sequence[Phase], at: Moment) -> Phase:
    """The phase in force at `at` (`found` as `phases` gives them: the first without a
    start, then in time order)."""
    return found[phase_index(found, at)]


def phase_index(found: Sequence[Phase], at: Moment) -> int:
    """Where in `found` the phase in force at `at` is."""
    return bisect.bisect_right(found, at, lo=1, key=_start) - 1


def _start(phase: Phase) -> Moment:
    return phase.start if phase.start is not None else -(2**63)


def _unscheduled(value: bool | str | EnvironmentOverride) -> bool | str | EnvironmentOverride:
    if isinstance(value, EnvironmentOverride) and value.schedule is not None:
        return _override(value, schedule=None)
    return value


def _with(flag: Flag, overrides: dict[str, bool | str | EnvironmentOverride]) -> Flag:
    return flag.model_copy(update={"environments": dict(overrides), "schedule": None})


def _applied(
    flag: Flag,
    override: bool | str | EnvironmentOverride | None,
    step: Step,
    share: int | None,
) -> EnvironmentOverride:
    """`override` with the step's fields over it (a ramp's rules at `share`)."""
    base = override if isinstance(override, EnvironmentOverride) else None
    update: dict[str, object] = {}
    if step.ramp is not None:
        assert share is not None
        update["rules"] = ramp_rules(flag, step.ramp, share)
    else:
        for name in ("enabled", "default", "rules"):
            if name in step.model_fields_set:
                update[name] = getattr(step, name)
        if step.applications:
            before = base.applications if base is not None else {}
            update["applications"] = {**before, **step.applications}
    if base is None:
        return EnvironmentOverride.model_construct(**update)  # type: ignore[arg-type]
    return _override(base, **update)


def _override(base: EnvironmentOverride, **update: object) -> EnvironmentOverride:
    return base.model_copy(update=update)


# -- a snapshot's steps, as a server serves them ---------------------------------------------


def step_moments(document: Mapping[str, Any]) -> list[Moment]:
    """Every moment at which some flag of the snapshot `document` changes, in order."""
    found = {
        moment(step["at"]) for flag in document["flags"].values() for step in flag.get("steps", ())
    }
    return sorted(found)


def view(document: Mapping[str, Any], at: Moment) -> dict[str, Any]:
    """The snapshot `document` as it stands at `at`: each flag's `resolved` with the rows
    of every step up to `at` over it. Everything that reads `resolved` then serves `at`."""
    flags = {key: entry_at(flag, at) for key, flag in document["flags"].items()}
    return {**document, "flags": flags}


def entry_at(flag: Mapping[str, Any], at: Moment) -> Mapping[str, Any]:
    """One flag entry of a snapshot as `view` has it at `at` (the entry itself when no
    step has come yet): for a reader that asks for a few flags, not the whole document.
    Steps are in time order, their `at` as `utc_text` writes it (core.verify holds a served
    snapshot's so), whose text order is time order: no moment is parsed here."""
    steps = flag.get("steps")
    taken = steps[: bisect.bisect_right(steps, utc_text(at), key=_step_at)] if steps else ()
    if not taken:
        return flag
    resolved = dict(flag["resolved"])
    for step in taken:
        resolved.update(step["resolved"])
    return {**flag, "resolved": resolved}


def _step_at(step: Mapping[str, Any]) -> str:
    return str(step["at"])


def row_moments(flag: Mapping[str, Any], environment: str) -> tuple[Moment, ...]:
    """The moments at which a snapshot flag entry's row of `environment` changes, in order."""
    steps = flag.get("steps")
    if not steps:
        return ()
    return tuple(moment(step["at"]) for step in steps if environment in step["resolved"])
