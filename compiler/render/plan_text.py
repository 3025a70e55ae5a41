"""A plan for a terminal, read like `terraform plan`: `+` added, `-` removed, `→` moved,
`~` changed, with the changed fields, rules, values and schedule steps (`+`, `-`, `→` again)
under each flag and one summary line at the end."""

from __future__ import annotations

from compiler.plan import FlagChange, Kind, Plan
from compiler.printable import printable
from compiler.render.plan_words import (
    kind_summary,
    notes,
    rule_summary,
    side_name,
    step_line,
    step_summary,
    value_groups,
    value_summary,
)
from compiler.render.words import literal, rule_lines, state

SYMBOLS: dict[Kind, str] = {"added": "+", "removed": "-", "moved": "→", "changed": "~"}


def render(plan: Plan) -> str:
    """The plan for a terminal; every line is `printable` (file names, revisions and flag
    data may hold control characters)."""
    lines = [f"flagc diff: {side_name(plan.base)} -> {side_name(plan.head)}", ""]
    for section in ([f"! {note}" for note in notes(plan)], _text_project(plan)):
        lines += [*section, ""] if section else []
    for change in plan.flags:
        lines += _text_flag(plan, change)
    lines += [
        f"? {item.key}: not compared, {item.file} has errors at {item.side.upper()}"
        for item in plan.unreadable
    ]
    if plan.empty:
        lines.append("No changes.")
    counts = [kind_summary(plan), value_summary(plan), rule_summary(plan), step_summary(plan)]
    lines += ["", "; ".join(part for part in counts if part)]
    return "".join(f"{printable(line)}\n" for line in lines)


def _text_project(plan: Plan) -> list[str]:
    project = plan.project
    if not project:
        return []
    return [
        "project:",
        *(f"  + environment {name}" for name in project.environments_added),
        *(f"  - environment {name}" for name in project.environments_removed),
        *(f"  + application {name}" for name in project.applications_added),
        *(f"  - application {name}" for name in project.applications_removed),
    ]


def _text_flag(plan: Plan, change: FlagChange) -> list[str]:
    where = change.path
    if change.kind == "moved":
        where = f"{change.base_path} -> {change.head_path}"
    return [
        f"{SYMBOLS[change.kind]} {change.key}  {where}",
        *_text_fields(change),
        *(f"    {line}" for line in rule_lines(change.rules)),
        *(
            f"    {cells}: {state(before)} -> {state(after)}"
            for _, cells, before, after in value_groups(plan, change.values)
        ),
        *(f"    {SYMBOLS[step.kind]} {step_line(step)}" for step in change.steps),
    ]


def _text_fields(change: FlagChange) -> list[str]:
    # A new flag is shown as declared; a removed one by the values it takes away (its old
    # declaration is in BASE, and the JSON output has it).
    if change.kind == "removed":
        return []
    if change.kind == "added":
        return [f"    {f.path} = {literal(f.after)}" for f in change.fields]
    return [f"    {f.path}: {literal(f.before)} -> {literal(f.after)}" for f in change.fields]
