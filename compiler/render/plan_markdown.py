"""Reporters for a plan: text for a terminal, JSON for programs, Markdown for a pull request.

Text reads like `terraform plan`: `+` added, `-` removed, `→` moved, `~` changed, with the
changed fields and values under each flag and one summary line at the end. JSON follows
`schemas/plan.schema.json`. Markdown is a summary table, then details folded per environment
and per kind, with long lists cut so that a comment on a pull request stays readable (and
under GitHub's 65,536 characters) however many flags change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import groupby
from typing import Any

from compiler.plan import KINDS, FlagChange, Kind, Plan, Side, ValueChange
from compiler.printable import printable
from compiler.yamlsource import Data

PLAN_FORMAT = 1
SYMBOLS: dict[Kind, str] = {"added": "+", "removed": "-", "moved": "→", "changed": "~"}
ROW_BUDGET = 300  # table rows in all the Markdown details together
MIN_ROWS = 10  # rows a details block shows however many blocks there are
MAX_TEXT = 80  # characters of a declared value shown in Markdown
MAX_MARKDOWN = 60_000  # characters: a pull-request comment holds at most 65,536


# Shared wording


def state(value: bool | None) -> str:
    # Worded as `flagc audit` words them.
    return "(absent)" if value is None else "on" if value else "off"


def side_name(side: Side) -> str:
    return f"{side.name} ({side.commit[:12]})" if side.commit else side.name


def value_groups(
    plan: Plan, values: tuple[ValueChange, ...]
) -> Iterator[tuple[str, str, bool | None, bool | None]]:
    """(environment, cells, before, after), one per environment and transition: cells are
    `production/web, production/ios` or, when the environment and all its applications
    change alike, `production/*`. `values` come in the plan's order, by environment."""
    width = len(plan.applications) + 1
    for environment, group in groupby(values, key=lambda value: value.environment):
        by_transition: dict[tuple[bool | None, bool | None], list[str]] = {}
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
                f"{which} has {_plural(side.errors, 'error')}: the plan compares only the "
                "flags that compile (`flagc check` lists the errors)"
            )
    if not plan.values_compared:
        found.append("values not compared: the project file (_project.yaml) is invalid")
    return found


def value_summary(plan: Plan) -> str:
    if not plan.values_compared:
        return "values not compared"
    parts = [
        f"{_plural(row.changes, 'value')} change{'s' * (row.changes == 1)} in {row.environment}"
        for row in plan.by_environment()
        if row.changes
    ]
    return ", ".join(parts) or "no values change"


def kind_summary(plan: Plan) -> str:
    return ", ".join(f"{plan.count(kind)} {kind}" for kind in KINDS)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def literal(value: Data) -> str:
    """A declared value as it reads in YAML-ish JSON; None is the absence of a value."""
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


# Text


def text(plan: Plan) -> str:
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
    lines += ["", f"{kind_summary(plan)}; {value_summary(plan)}"]
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
        *(
            f"    {cells}: {state(before)} -> {state(after)}"
            for _, cells, before, after in value_groups(plan, change.values)
        ),
    ]


def _text_fields(change: FlagChange) -> list[str]:
    # A new flag is shown as declared; a removed one by the values it takes away (its old
    # declaration is in BASE, and the JSON output has it).
    if change.kind == "removed":
        return []
    if change.kind == "added":
        return [f"    {f.path} = {literal(f.after)}" for f in change.fields]
    return [f"    {f.path}: {literal(f.before)} -> {literal(f.after)}" for f in change.fields]


# JSON


def document(plan: Plan) -> dict[str, Any]:
    """The JSON document, described by schemas/plan.schema.json."""
    return {
        "format": PLAN_FORMAT,
        "base": _side_json(plan.base),
        "head": _side_json(plan.head),
        "values_compared": plan.values_compared,
        "environments": list(plan.environments),
        "applications": list(plan.applications),
        "project": {
            "environments": {
                "added": list(plan.project.environments_added),
                "removed": list(plan.project.environments_removed),
            },
            "applications": {
                "added": list(plan.project.applications_added),
                "removed": list(plan.project.applications_removed),
            },
        },
        "summary": {
            **{kind: plan.count(kind) for kind in KINDS},
            "environments": [
                {"environment": r.environment, "changes": r.changes, "on": r.on, "off": r.off}
                for r in plan.by_environment()
            ],
        },
        "flags": [_flag_json(change) for change in plan.flags],
        "unreadable": [
            {"key": item.key, "side": item.side, "file": item.file} for item in plan.unreadable
        ],
    }


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "name": side.name,
        "commit": side.commit,
        "exists": side.exists,
        "flags": side.flags,
        "errors": side.errors,
        "project_valid": side.project_valid,
    }


def _flag_json(change: FlagChange) -> dict[str, Any]:
    return {
        "key": change.key,
        "kind": change.kind,
        "base_path": change.base_path,
        "head_path": change.head_path,
        "fields": [{"field": f.path, "from": f.before, "to": f.after} for f in change.fields],
        "values": [
            {
                "environment": v.environment,
                "application": v.application,
                "cell": v.cell,
                "from": v.before,
                "to": v.after,
            }
            for v in change.values
        ],
    }


def as_json(plan: Plan) -> str:
    return json.dumps(document(plan), indent=2, ensure_ascii=False) + "\n"


# Markdown

# Flag data is user input shown in someone else's pull request: every character that
# Markdown or HTML could read as syntax becomes an entity, so that a description cannot
# end a table cell, open a tag, start a code span, link, or @-mention a team.
_ENTITIES = str.maketrans(
    {
        **{char: f"&#{ord(char)};" for char in "&<>`|@\\*_[]~$"},
        "\n": " ",
        "\r": " ",
        "\t": " ",
    }
)
Row = tuple[str, ...]


def escape(text: str, limit: int | None = None) -> str:
    """`text` safe anywhere in Markdown, cut to `limit` characters first."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.translate(_ENTITIES)


def markdown(plan: Plan) -> str:
    parts = [
        f"### Flag plan: {escape(side_name(plan.base))} → {escape(side_name(plan.head))}",
        _markdown_summary(plan),
        *(f"> **Note:** {_markdown_note(note)}" for note in notes(plan)),
        *_markdown_project(plan),
    ]
    if plan.empty:
        parts.append("No changes.")
    blocks = [*_environment_blocks(plan), *_kind_blocks(plan)]
    limit = max(MIN_ROWS, ROW_BUDGET // max(1, len(blocks)))
    while True:
        details = [_details(summary, header, rows, limit) for summary, header, rows in blocks]
        rendered = "\n\n".join([*parts, *details]) + "\n"
        # Escaped text can be five times longer than it reads: cut further when needed.
        if len(rendered) <= MAX_MARKDOWN or limit == 1:
            return rendered
        limit //= 2


def _markdown_note(note: str) -> str:
    # Notes are ours, but name revisions the user typed; keep the `flagc check` code span.
    return "`flagc check`".join(escape(part) for part in note.split("`flagc check`"))


def _markdown_summary(plan: Plan) -> str:
    kinds = ["| change | flags |", "|---|---:|"]
    kinds += [f"| {kind} | {plan.count(kind)} |" for kind in KINDS]
    if not plan.values_compared:
        return "\n".join([*kinds, "", "Values not compared."])
    environments = [
        "| environment | values that change | turn on | turn off |",
        "|---|---:|---:|---:|",
    ]
    environments += [
        f"| {escape(row.environment)} | {row.changes} | {row.on} | {row.off} |"
        for row in plan.by_environment()
    ]
    return "\n".join([*kinds, "", *environments])


def _markdown_project(plan: Plan) -> list[str]:
    project = plan.project
    if not project:
        return []
    items = [
        *(f"+ environment {escape(name)}" for name in project.environments_added),
        *(f"- environment {escape(name)}" for name in project.environments_removed),
        *(f"+ application {escape(name)}" for name in project.applications_added),
        *(f"- application {escape(name)}" for name in project.applications_removed),
    ]
    return [f"**Project:** {', '.join(items)}"]


Block = tuple[str, Row, list[Row]]  # summary, table header, rows


def _environment_blocks(plan: Plan) -> Iterator[Block]:
    rows: dict[str, list[Row]] = {environment: [] for environment in plan.environments}
    for change in plan.flags:
        for environment, cells, before, after in value_groups(plan, change.values):
            rows[environment].append(
                (_code(change.key), escape(cells), _bold_on(before), _bold_on(after))
            )
    for row in plan.by_environment():
        if row.changes:
            summary = (
                f"{escape(row.environment)}: {_plural(row.changes, 'value')} "
                f"({row.on} on, {row.off} off)"
            )
            yield summary, ("flag", "cells", "from", "to"), rows[row.environment]


def _bold_on(value: bool | None) -> str:
    return "**on**" if value else state(value)


def _kind_blocks(plan: Plan) -> Iterator[Block]:
    for kind in KINDS:
        changes = [change for change in plan.flags if change.kind == kind]
        if changes:
            header, rows = _KIND_TABLES[kind](changes)
            yield f"{_plural(len(changes), 'flag')} {kind}", header, rows
    if plan.unreadable:
        rows = [(_code(item.key), escape(item.file), item.side.upper()) for item in plan.unreadable]
        yield f"{_plural(len(rows), 'flag')} not compared", ("flag", "file", "errors at"), rows


def _added(changes: list[FlagChange]) -> tuple[Row, list[Row]]:
    return ("flag", "file", "owner", "description"), [
        (
            _code(change.key),
            escape(change.path),
            escape(_field(change, "owner")),
            escape(_field(change, "description"), MAX_TEXT),
        )
        for change in changes
    ]


def _field(change: FlagChange, path: str) -> str:
    for field in change.fields:
        if field.path == path and isinstance(field.after, str):
            return field.after
    return ""


def _removed(changes: list[FlagChange]) -> tuple[Row, list[Row]]:
    return ("flag", "file"), [(_code(change.key), escape(change.path)) for change in changes]


def _moved(changes: list[FlagChange]) -> tuple[Row, list[Row]]:
    return ("flag", "from", "to", "fields changed"), [
        (
            _code(change.key),
            escape(change.base_path or ""),
            escape(change.head_path or ""),
            ", ".join(_code(field.path) for field in change.fields) or "none",
        )
        for change in changes
    ]


def _changed(changes: list[FlagChange]) -> tuple[Row, list[Row]]:
    rows: list[Row] = []
    for change in changes:
        rows += [
            (
                _code(change.key),
                _code(field.path),
                escape(literal(field.before), MAX_TEXT),
                escape(literal(field.after), MAX_TEXT),
            )
            for field in change.fields
        ] or [(_code(change.key), "(values only: see the environments)", "", "")]
    return ("flag", "field", "from", "to"), rows


_KIND_TABLES: dict[Kind, Callable[[list[FlagChange]], tuple[Row, list[Row]]]] = {
    "added": _added,
    "removed": _removed,
    "moved": _moved,
    "changed": _changed,
}


def _code(text: str) -> str:
    # <code> rather than backticks: a key or path cannot close it, once escaped.
    return f"<code>{escape(text)}</code>"


def _details(summary: str, header: Row, rows: list[Row], limit: int) -> str:
    shown = rows[:limit]
    lines = [
        f"<details><summary>{summary}</summary>",
        "",
        _table_row(header),
        _table_row(tuple("---" for _ in header)),
        *(_table_row(row) for row in shown),
    ]
    if len(rows) > limit:
        lines += ["", f"… and {len(rows) - limit} more: `flagc diff --format json` lists them all."]
    return "\n".join([*lines, "", "</details>"])


def _table_row(cells: Row) -> str:
    return "| " + " | ".join(cells) + " |"


REPORTERS: dict[str, Callable[[Plan], str]] = {
    "text": text,
    "json": as_json,
    "markdown": markdown,
}
