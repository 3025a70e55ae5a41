"""Wording of a plan shared by its text and Markdown renderers: how a side is named, the
notes a reader must see first, the one-line summaries, and values grouped per transition."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

from compiler.changes import ValueChange
from compiler.plan import KINDS, Plan, Side
from compiler.render.words import plural
from core.resolve import CellValue


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
