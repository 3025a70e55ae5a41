"""Wording shared by every output that shows a change to people: `flagc audit`'s text and
`flagc diff`'s text and Markdown say a value and a declared field the same way."""

from __future__ import annotations

import json

from compiler.yamlsource import Data
from core.resolve import CellValue


def state(value: CellValue | None) -> str:
    """A resolved value: `on`, `off` (boolean flags), the variant's name (typed flags), or
    `(absent)` where the cell does not exist (None)."""
    if value is None:
        return "(absent)"
    if isinstance(value, str):
        return value
    return "on" if value else "off"


def literal(value: Data) -> str:
    """A declared value as it reads in YAML-ish JSON; None is the absence of a value."""
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


def plural(count: int, noun: str) -> str:
    """`1 flag`, `2 flags`: English's regular plural, all the nouns used here need."""
    return f"{count} {noun}{'s' * (count != 1)}"
