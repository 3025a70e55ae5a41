"""What a change does to the schedules: the steps each environment takes, compared between
BASE and HEAD by what they do and when (docs/diff.md, "Schedules").

A step is what happens in one environment at one moment (`at`) or over a span (a `ramp`).
A step at a moment is known by its effect there: the environment's values and rules with
every change at that moment applied, against the same with this step left out (so a ramp
ending then keeps its last share for itself), on that side's grid (the flag's phases,
core.schedule), so that a step that does the same thing written another way (another zone
offset, a field repeated) is the same step. A ramp is known by its variant, `by`, `seed`
and the shares it passes through, each at its offset from `from`.

Compared: a step of HEAD equal to one of BASE (same environment, time and effect) is no
change; one whose effect matches a step of BASE at another time has moved; the others are
added, and BASE's left over removed. Pure: flags and grids in, `StepChange`s out; the words
are compiler/render/plan_words.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from compiler.changes import ValueChange, off_value
from compiler.rule_changes import FlagAt, RuleChange, flag_rule_changes
from core.model import EnvironmentOverride, Flag, Ramp
from core.resolve import Grid, cell_values
from core.schedule import Moment, moment, phase_at, phases, ramp_shares, scheduled, schedules
from core.schedule import seconds as duration_seconds

StepChangeKind = Literal["added", "removed", "moved"]
STEP_KINDS: tuple[StepChangeKind, ...] = ("removed", "added", "moved")  # at one moment


@dataclass(frozen=True, slots=True)
class Rise:
    """A ramp's motion: `variant`'s share from `start` to `end` percent, at most once per
    `every` seconds; `shares` are (seconds since `from`, the share from then on), the first
    at 0 (core.schedule.ramp_shares)."""

    variant: str
    start: int
    end: int
    every: int
    shares: tuple[tuple[int, int], ...]
    by: str | None = None
    seed: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduledStep:
    """One step of one environment. `end` is a ramp's `to` (None: a step at `start`);
    `values` and `rules` are what a step at a moment changes there (`cells`: how many
    cells the environment has, to tell a whole environment from some of its cells); a
    ramp has `rise` instead."""

    environment: str
    start: Moment
    end: Moment | None = None
    values: tuple[ValueChange, ...] = ()
    rules: tuple[RuleChange, ...] = ()
    rise: Rise | None = None
    cells: int = 1

    @property
    def effect(self) -> tuple[object, ...]:
        """What the step does, wherever in time: steps of equal effect at other times are
        one step moved."""
        span = None if self.end is None else self.end - self.start
        return (self.environment, span, self.values, self.rules, self.rise, self.cells)


@dataclass(frozen=True, slots=True)
class StepChange:
    """A step `added` or `moved` (HEAD's `step`; `was`, BASE's, for moved), or `removed`
    (BASE's `step`)."""

    kind: StepChangeKind
    step: ScheduledStep
    was: ScheduledStep | None = None

    @property
    def environment(self) -> str:
        return self.step.environment


class ScheduleAt(NamedTuple):
    """One side of a flag's change: its key, the flag (None where absent), and that side's
    grid (None: no valid project, so no values)."""

    key: str
    flag: Flag | None
    grid: Grid | None


def flag_step_changes(
    environments: Mapping[str, int], before: ScheduleAt, after: ScheduleAt
) -> tuple[StepChange, ...]:
    """The step changes of one flag from BASE to HEAD, in time order, then in the order of
    `environments` (either side's names, ranked)."""
    old, new = scheduled_steps(before), scheduled_steps(after)
    if old == new:
        return ()
    changes = changed_steps(old, new)

    def order(change: StepChange) -> tuple[int, int, int]:
        rank = environments.get(change.environment, len(environments))
        return change.step.start, rank, STEP_KINDS.index(change.kind)

    return tuple(sorted(changes, key=order))


def changed_steps(
    before: Sequence[ScheduledStep], after: Sequence[ScheduledStep]
) -> list[StepChange]:
    """The steps of `after` not in `before` (moved when a step of `before` that is gone
    has the same effect), and those of `before` not in `after`."""
    removed = list(before)
    added: list[ScheduledStep] = []
    for step in after:
        if step in removed:
            removed.remove(step)
        else:
            added.append(step)
    changes: list[StepChange] = []
    for step in added:
        was = next((old for old in removed if old.effect == step.effect), None)
        if was is None:
            changes.append(StepChange("added", step))
        else:
            removed.remove(was)
            changes.append(StepChange("moved", step, was))
    changes += [StepChange("removed", step) for step in removed]
    return changes


def scheduled_steps(side: ScheduleAt) -> list[ScheduledStep]:
    """Every step of the flag on one side, per environment of its grid in the order of its
    schedule; none without a flag, a grid or a schedule."""
    key, flag, grid = side
    if flag is None or grid is None or not scheduled(flag):
        return []
    found = phases(flag, grid.environments)
    steps: list[ScheduledStep] = []
    for environment, schedule in schedules(flag, grid.environments):
        for number, step in enumerate(schedule):
            if step.ramp is not None:
                steps.append(_ramp_step(environment, step.ramp, grid))
                continue
            assert step.at is not None  # the model requires one of them
            at = moment(step.at)
            # Against the same moment without this step, not a second earlier: whatever
            # else happens then (a ramp reaching its end) is not this step's doing.
            without = phases(_left_out(flag, environment, number), grid.environments)
            old, new = phase_at(without, at).flag, phase_at(found, at).flag
            steps.append(
                ScheduledStep(
                    environment,
                    at,
                    values=_values(grid, environment, old, new),
                    rules=flag_rule_changes(
                        [environment],
                        FlagAt(key, old, grid.environments),
                        FlagAt(key, new, grid.environments),
                    ),
                    cells=grid.width,
                )
            )
    return steps


def _left_out(flag: Flag, environment: str, number: int) -> Flag:
    """The flag without step `number` of `environment`'s schedule (its own, else the
    top-level one, which then loses the step in every environment: only `environment`'s
    cells are compared)."""
    override = flag.environments.get(environment)
    if isinstance(override, EnvironmentOverride) and override.schedule is not None:
        schedule = [*override.schedule[:number], *override.schedule[number + 1 :]]
        trimmed = override.model_copy(update={"schedule": schedule})
        return flag.model_copy(update={"environments": {**flag.environments, environment: trimmed}})
    assert flag.schedule is not None  # `schedules` gave the environment this one
    return flag.model_copy(
        update={"schedule": [*flag.schedule[:number], *flag.schedule[number + 1 :]]}
    )


def _values(grid: Grid, environment: str, old: Flag, new: Flag) -> tuple[ValueChange, ...]:
    """The environment's cells whose value differs between the two phases of the flag."""
    first = grid.index(environment)
    cells = slice(first, first + grid.width)
    before, after = cell_values(grid, old)[cells], cell_values(grid, new)[cells]
    off = off_value(new)
    return tuple(
        ValueChange(environment, application, value, other, off, off)
        for application, value, other in zip((None, *grid.applications), before, after, strict=True)
        if value != other
    )


def _ramp_step(environment: str, ramp: Ramp, grid: Grid) -> ScheduledStep:
    start = moment(ramp.from_)
    shares = tuple((at - start, share) for at, share in ramp_shares(ramp))
    rise = Rise(
        ramp.variant,
        ramp.start,
        ramp.end,
        duration_seconds(ramp.every),
        shares,
        ramp.by,
        ramp.seed,
    )
    return ScheduledStep(environment, start, moment(ramp.to), rise=rise, cells=grid.width)
