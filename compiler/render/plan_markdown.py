"""A plan for a pull request's comment, in Markdown: a summary table, then details folded
per environment and per kind, with long lists cut so that the comment stays readable (and
under GitHub's 65,536 characters) however many flags change."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from compiler.plan import KINDS, FlagChange, Kind, Plan
from compiler.render.plan_words import notes, side_name, step_line, value_groups
from compiler.render.words import literal, plural, rule_groups, state
from core.resolve import CellValue

ROW_BUDGET = 300  # table rows in all the Markdown details together
MIN_ROWS = 10  # rows a details block shows however many blocks there are
MAX_TEXT = 80  # characters of a declared value shown in Markdown
MAX_MARKDOWN = 60_000  # characters: a pull-request comment holds at most 65,536

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


def render(plan: Plan) -> str:
    """The plan as `flagc diff --format markdown` prints it."""
    parts = [
        f"### Flag plan: {escape(side_name(plan.base))} → {escape(side_name(plan.head))}",
        _markdown_summary(plan),
        *(f"> **Note:** {_markdown_note(note)}" for note in notes(plan)),
        *_markdown_project(plan),
    ]
    if plan.empty:
        parts.append("No changes.")
    blocks = [
        *_rule_blocks(plan),
        *_step_blocks(plan),
        *_environment_blocks(plan),
        *_kind_blocks(plan),
    ]
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
    rows = plan.by_environment()
    # A column only for plans that change rules, or steps.
    rules, steps = any(row.rules for row in rows), any(row.steps for row in rows)
    environments = [
        "| environment | values that change | turn on | turn off |"
        + " rule changes |" * rules
        + " step changes |" * steps,
        "|---|---:|---:|---:|" + "---:|" * (rules + steps),
    ]
    environments += [
        f"| {escape(row.environment)} | {row.changes} | {row.on} | {row.off} |"
        + f" {row.rules} |" * rules
        + f" {row.steps} |" * steps
        for row in rows
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


def _rule_blocks(plan: Plan) -> Iterator[Block]:
    """Rules and rollouts first: their words say what a change does to whom."""
    rows: list[Row] = [
        (_code(change.key), escape(environments), escape(words))
        for change in plan.flags
        for environments, words in rule_groups(change.rules)
    ]
    if rows:
        count = sum(len(change.rules) for change in plan.flags)
        summary = f"rules and rollouts: {plural(count, 'change')}"
        yield summary, ("flag", "environments", "change"), rows


def _step_blocks(plan: Plan) -> Iterator[Block]:
    """Then the schedules: what each step added, removed or moved does, and when."""
    rows: list[Row] = [
        (_code(change.key), step.kind, escape(step_line(step)))
        for change in plan.flags
        for step in change.steps
    ]
    if rows:
        summary = f"schedules: {plural(len(rows), 'step change')}"
        yield summary, ("flag", "step", "when and what"), rows


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
                f"{escape(row.environment)}: {plural(row.changes, 'value')} "
                f"({row.on} on, {row.off} off)"
            )
            yield summary, ("flag", "cells", "from", "to"), rows[row.environment]


def _bold_on(value: CellValue | None) -> str:
    return "**on**" if value is True else state(value)


def _kind_blocks(plan: Plan) -> Iterator[Block]:
    for kind in KINDS:
        changes = [change for change in plan.flags if change.kind == kind]
        if changes:
            header, rows = _KIND_TABLES[kind](changes)
            yield f"{plural(len(changes), 'flag')} {kind}", header, rows
    if plan.unreadable:
        rows = [(_code(item.key), escape(item.file), item.side.upper()) for item in plan.unreadable]
        yield f"{plural(len(rows), 'flag')} not compared", ("flag", "file", "errors at"), rows


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
