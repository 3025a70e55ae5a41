"""Wording of a plan shared by its text and Markdown renderers: how a side is named, the
notes a reader must see first, the one-line summaries, values grouped per transition, and a
schedule's steps in the reviewer's terms (the JSON's `text` too)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby, pairwise

from compiler.changes import ValueChange
from compiler.plan import KINDS, Plan, Side
from compiler.render.words import plural, rule_change, state
from compiler.step_changes import Rise, ScheduledStep, StepChange
from core.resolve import CellValue
from core.schedule import short_text


def side_name(side: Side) -> str:
    """`origin/main (0123456789ab)`: the revision as given, and its commit's short SHA."""
    return f"{side.name} ({side.commit[:12]})" if side.commit else side.name


def value_groups(
    plan: Plan, values: tuple[ValueChange, ...]
) -> Iterator[tuple[str, str, CellValue | None, CellValue | None]]:
    """(environment, cells, before, after), one per environment and transition: cells are
    `production/web, production/ios` or, when the environment and all its applications
    change alike, `production/*`. `values` come in the plan's order, by environment."""
    width = len(plan.applications) + 1
    for environment, group in groupby(values, key=lambda value: value.environment):
        by_transition: dict[tuple[CellValue | None, CellValue | None], list[str]] = {}
        for value in group:
            by_transition.setdefault((value.before, value.after), []).append(value.cell)
        for (before, after), cells in by_transition.items():
            everything = len(by_transition) == 1 and len(cells) == width
            yield environment, f"{environment}/*" if everything else ", ".join(cells), before, after


def notes(plan: Plan) -> list[str]:
    """What the reader must know before trusting the plan."""
    found: list[str] = []
    for label, side in (("BASE", plan.base), ("HEAD", plan.head)):
        named = f"{side.name}{f' {side.commit[:12]}' if side.commit else ''}"
        which = label if named == label else f"{label} ({named})"
        if not side.exists:
            everything = "added" if label == "BASE" else "removed"
            found.append(f"{which} has no flags folder: every flag is {everything}")
        elif side.errors:
            found.append(
                f"{which} has {plural(side.errors, 'error')}: the plan compares only the "
                "flags that compile (`flagc check` lists the errors)"
            )
    if not plan.values_compared:
        found.append("values not compared: the project file (_project.yaml) is invalid")
    return found


def value_summary(plan: Plan) -> str:
    """`3 values change in production, 1 value changes in staging`, per environment."""
    if not plan.values_compared:
        return "values not compared"
    parts = [
        f"{plural(row.changes, 'value')} change{'s' * (row.changes == 1)} in {row.environment}"
        for row in plan.by_environment()
        if row.changes
    ]
    return ", ".join(parts) or "no values change"


def rule_summary(plan: Plan) -> str:
    """`2 rule changes in production`, per environment; empty when no rules change."""
    return ", ".join(
        f"{plural(row.rules, 'rule change')} in {row.environment}"
        for row in plan.by_environment()
        if row.rules
    )


def kind_summary(plan: Plan) -> str:
    """`1 added, 0 removed, 2 moved, 0 changed`: every kind, in KINDS' order."""
    return ", ".join(f"{plan.count(kind)} {kind}" for kind in KINDS)


def step_summary(plan: Plan) -> str:
    """`2 step changes in production`, per environment; empty when no step changes."""
    return ", ".join(
        f"{plural(row.steps, 'step change')} in {row.environment}"
        for row in plan.by_environment()
        if row.steps
    )


# Steps, in the words of docs/diff.md: `at 2027-01-11 08:00 UTC, production: off -> on`,
# `from 2027-01-13 09:00 to 2027-01-20 09:00 UTC, production: on rises 0% -> 100%, 1% more
# each hour`; a moved step adds `(was ...)` after its time.

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def step_line(change: StepChange) -> str:
    """A step added, removed or moved, without its kind: when, then what, per environment."""
    when = _when(change.step)
    if change.was is not None:
        when += f" (was {_when(change.was).split(' ', 1)[1]})"
    return f"{when}, {'; '.join(step_effects(change.step))}"


def moment_text(at: int) -> str:
    """`2027-01-11 08:00` (seconds only when not 0), UTC: core.schedule.short_text with a
    space for its `T` and no `Z`, since the plan's lines end in `UTC`."""
    return short_text(at).replace("T", " ").removesuffix("Z")


def _when(step: ScheduledStep) -> str:
    start = moment_text(step.start)
    if step.end is None:
        return f"at {start} UTC"
    return f"from {start} to {moment_text(step.end)} UTC"


def step_effects(step: ScheduledStep) -> list[str]:
    """What the step does, one phrase per transition or rule change, each naming its
    environment (`production: off -> on`), or its cells when not all of them change alike
    (`production/web: off -> on`); `production: nothing changes` for a step that changes
    nothing there."""
    environment = step.environment
    if step.rise is not None:
        return [f"{environment}: {rise_words(step.rise)}"]
    found: list[str] = []
    by_transition: dict[tuple[CellValue | None, CellValue | None], list[ValueChange]] = {}
    for value in step.values:
        by_transition.setdefault((value.before, value.after), []).append(value)
    for (before, after), values in by_transition.items():
        whole = len(by_transition) == 1 and len(values) == step.cells
        cells = environment if whole else ", ".join(map(_cell_name, values))
        found.append(f"{cells}: {state(before)} -> {state(after)}")
    found += [f"{environment}: {rule_change(change)}" for change in step.rules]
    return found or [f"{environment}: nothing changes"]


def _cell_name(value: ValueChange) -> str:
    # The bare environment names the whole environment in a step's words.
    return value.cell if value.application is not None else f"{value.cell} (no application)"


def rise_words(rise: Rise) -> str:
    """`on rises 0% -> 100%, 1% more each hour`; `falls` and `less` for a ramp down; the
    pace from the moments the share changes (`1% more each 1 to 2 hours` when they are
    not evenly spread)."""
    how = "" if rise.by is None else f" by {rise.by}"
    how += "" if rise.seed is None else f" (seed {rise.seed})"
    if rise.start == rise.end:
        return f"{rise.variant} stays at {rise.start}%{how}"
    verb, more = ("rises", "more") if rise.end > rise.start else ("falls", "less")
    shares = f"{rise.variant} {verb} {rise.start}% -> {rise.end}%{how}"
    if len(rise.shares) < 2:  # a ramp that ends where it starts: all at once
        return f"{shares} at once"
    sizes = sorted({abs(after - before) for (_, before), (_, after) in pairwise(rise.shares)})
    gaps = sorted({later - earlier for (earlier, _), (later, _) in pairwise(rise.shares)})
    size = f"{sizes[0]}%" if len(sizes) == 1 else f"{sizes[0]}% to {sizes[-1]}%"
    return f"{shares}, {size} {more} each {_period(gaps[0], gaps[-1])}"


def _period(shortest: int, longest: int) -> str:
    """`hour`, `30 minutes`, `1 to 2 hours`: in the largest unit that measures both."""
    unit, name = next(
        (size, name) for size, name in _UNITS if shortest % size == 0 and longest % size == 0
    )
    low, high = shortest // unit, longest // unit
    if low == high:
        return name if low == 1 else f"{low} {name}s"
    return f"{low} to {high} {name}s"
