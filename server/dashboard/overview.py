"""The overview's content: which flags (filters, order) and which columns of the matrix.

Pure functions over the snapshot document. At 5 environments x 20 applications a full
matrix is 105 cells a row; the page then shows one cell per environment (its value, and how
many of its applications differ) until an environment is chosen, whose applications then
get a column each. Small projects get every column at once.

The rows are paged (ROWS_PER_PAGE a page): a browser needs seconds to parse and lay out a
2,000-row table, so filters and order apply to every flag, then one page of them is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

SORTS = ("key", "owner", "expires", "updated")
EXPAND_ALL_UP_TO = 48  # environment x application cells a row shown without choosing
ROWS_PER_PAGE = 200  # flags a page of the overview shows (a browser lays it out in ~0.2 s)
PAGE_LINKS_AROUND = 2  # page numbers linked either side of the current one

Flag = Mapping[str, Any]


@dataclass(frozen=True)
class Filters:
    """What the overview's form asks for; "" is no filter."""

    text: str = ""
    tag: str = ""
    owner: str = ""
    environment: str = ""
    sort: str = "key"
    page: int = 1  # from 1

    def query(self, **changes: str | int) -> dict[str, str]:
        """The query parameters of this view with `changes`, empty ones (and page 1, sort by
        key: the defaults) left out; a link that re-sorts passes `page=1`."""
        values: dict[str, str | int] = {
            "q": self.text,
            "tag": self.tag,
            "owner": self.owner,
            "environment": self.environment,
            "sort": self.sort,
            "page": self.page,
        }
        values.update(changes)
        defaults = {"sort": "key", "page": 1}
        return {
            name: str(value)
            for name, value in values.items()
            if value not in ("", 0) and value != defaults.get(name)
        }


@dataclass(frozen=True)
class Column:
    environment: str
    application: str | None  # None: the environment without application


def columns(
    environments: Sequence[str], applications: Sequence[str], chosen: str
) -> tuple[list[Column], bool]:
    """The matrix's columns, and whether each environment shows its applications."""
    shown = [chosen] if chosen else list(environments)
    expanded = bool(chosen) or len(environments) * len(applications) <= EXPAND_ALL_UP_TO
    found = []
    for environment in shown:
        found.append(Column(environment, None))
        if expanded:
            found += [Column(environment, application) for application in applications]
    return found, expanded


def matches(flag: Flag, filters: Filters) -> bool:
    """Whether `flag` passes the text (key, description, owner, tags; any case), tag and
    owner filters."""
    if filters.tag and filters.tag not in flag["tags"]:
        return False
    if filters.owner and filters.owner != flag["owner"]:
        return False
    if not filters.text:
        return True
    words = [flag["key"], flag["description"], flag["owner"], *flag["tags"]]
    return filters.text.casefold() in " ".join(words).casefold()


def ordered(flags: Sequence[Flag], sort: str) -> list[Flag]:
    """By key; or by owner, by expiry (soonest first, none last) or by last change (newest
    first), each then by key."""
    by_key = sorted(flags, key=lambda flag: flag["key"])
    if sort == "owner":
        return sorted(by_key, key=lambda flag: flag["owner"].casefold())
    if sort == "expires":
        return sorted(by_key, key=lambda flag: (flag["expires"] is None, flag["expires"] or ""))
    if sort == "updated":
        return sorted(by_key, key=lambda flag: flag["updated_at"] or "", reverse=True)
    return by_key


def last_page(matching: int) -> int:
    """How many pages `matching` flags fill (one, even when none match)."""
    return max(1, -(-matching // ROWS_PER_PAGE))


def page_numbers(current: int, last: int) -> list[int | None]:
    """The page numbers to link: the first, the last and a few around the current one, None
    where some are left out (ten pages at 2,000 flags fit; 50,000 would not)."""
    near = range(current - PAGE_LINKS_AROUND, current + PAGE_LINKS_AROUND + 1)
    kept = sorted({1, last, *(number for number in near if 1 <= number <= last)})
    found: list[int | None] = []
    previous = 0
    for number in kept:
        if number - previous == 2:
            found.append(number - 1)  # a gap of one page: its number, not an ellipsis
        elif number - previous > 2:
            found.append(None)
        found.append(number)
        previous = number
    return found


LEVELS = {
    "environment-application": "set for this application in this environment",
    "environment": "set for the environment",
    "application": "set for the application, in every environment",
    "default": "the flag's default (enabled)",
}

# The cells of boolean flags whose value depends on no context, made once: the matrix is
# most of the page's bytes.
_CELLS = {
    (value, source): Markup('<td class="{}" title="{}">{}</td>').format(
        "on" if value else "off", source, "on" if value else "off"
    )
    for value in (True, False)
    for source in LEVELS
}
TARGETED = "depends on the context"


@dataclass(frozen=True)
class Dependence:
    """Which cells' values depend on the context: per (environment, application) the keys
    that `core.evaluate.Evaluator.targeted` reports (a flag's own rules there, or a
    dependency targeted there that can gate it). Made once a page, read once a cell."""

    flags: Mapping[str, Flag]
    targeted: Mapping[tuple[str, str | None], frozenset[str]]

    def why(self, flag: Flag, environment: str, application: str | None) -> str | None:
        """None where the cell's value is the same for every context; else what a cell's
        title says: the flag's own rules, or the first dependency through which it is."""
        keys = self.targeted[environment, application]
        if flag["key"] not in keys:
            return None
        if flag["resolved"][environment]["rules"]:
            return f"{TARGETED}: its own rules"
        through = next(
            (
                dependency
                for dependency in flag["depends_on"]
                if dependency in keys and self.flags[dependency].get("off") is not None
            ),
            None,
        )
        return f"{TARGETED}: through dependency {through}" if through else TARGETED


def cell(flag: Flag, column: Column, why: str | None = None) -> Markup:
    """One cell: on/off (a typed flag: its variant, green unless it is the flag's `off`),
    the level that decided it on hover (`title`: the snapshot's source, explained once in
    the legend, to keep a 2,000-row page light), classes for color; a cell whose value
    depends on the context (`why`, from `Dependence.why`) is marked `targeted`, with a `*`
    and why in its title."""
    row = flag["resolved"][column.environment]
    found = row if column.application is None else row["applications"][column.application]
    if why is None and flag["type"] == "boolean":
        return _CELLS[found["value"], found["source"]]
    state = "off" if found["variant"] == flag["off"] else "on"
    return _td(state, found["source"], why, str(found["variant"]))


def _td(state: str, title: str, why: str | None, text: str, small: str = "") -> Markup:
    """A cell's markup; `small` follows the value (and the `*` of a targeted cell). Each
    part escaped, joined by an f-string: `Markup.format` took a third of a page's time."""
    if why:
        state, title, text = f"{state} targeted", f"{title}; {why}", f"{text}*"
    after = f" <small>{escape(small)}</small>" if small else ""
    return Markup(f'<td class="{escape(state)}" title="{escape(title)}">{escape(text)}{after}</td>')


def shown_value(found: Mapping[str, Any]) -> str:
    """A cell's value as the flag page shows it: on/off, or the variant's name."""
    return str(found["variant"])


def rule_lines(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each normalized rule of a row in words, with its rollout's shares for a bar."""
    return [
        {
            "when": " and ".join(_condition(name, ops) for name, ops in rule["when"].items())
            or "everyone",
            "serve": rule.get("serve"),
            "rollout": [
                {"variant": variant, "share": weight} for variant, weight in rule.get("rollout", [])
            ],
            "by": rule.get("by"),
        }
        for rule in rules
    ]


_OPERATORS = {
    "in": "in", "not": "not in", "starts_with": "starts with", "ends_with": "ends with",
    "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
}  # fmt: skip


def _condition(name: str, operators: Mapping[str, Any]) -> str:
    parts = []
    for operator, argument in operators.items():
        if operator == "semver":
            parts.append(f"{name} {argument[0]}{argument[1]}")
        elif isinstance(argument, list):
            parts.append(f"{name} {_OPERATORS[operator]} {', '.join(map(str, argument))}")
        else:
            parts.append(f"{name} {_OPERATORS[operator]} {argument}")
    return " and ".join(parts)


def row_cells(
    flag: Flag, shown: Sequence[Column], expanded: bool, dependence: Dependence
) -> Markup:
    """A row's cells; folded environments also say how many applications differ."""
    if expanded:
        return Markup("").join(
            cell(flag, column, dependence.why(flag, column.environment, column.application))
            for column in shown
        )
    return Markup("").join(
        _folded(flag, column.environment, dependence.why(flag, column.environment, None))
        for column in shown
    )


def _folded(flag: Flag, environment: str, why: str | None) -> Markup:
    """The environment's cell, and how many of its applications differ (a boolean flag);
    marked as the environment's own cell is (`why` of no application)."""
    row = flag["resolved"][environment]
    if flag["type"] != "boolean":
        return cell(flag, Column(environment, None), why)
    on = sum(cell["value"] for cell in row["applications"].values())
    total = len(row["applications"])
    state = "on" if row["value"] else "off"
    differ = total - on if row["value"] else on
    if not differ:
        return (
            _CELLS[row["value"], row["source"]]
            if why is None
            else _td(state, row["source"], why, state)
        )
    note = f"{differ} of {total} applications {'off' if row['value'] else 'on'}"
    return _td(f"{state} mixed", f"{row['source']}; {note}", why, state, f"{on}/{total}")
