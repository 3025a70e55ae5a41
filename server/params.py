"""The query parameters the list endpoints share: each given at most once, and the page
(`limit`, `offset`; the rules of paging are `core.paging`'s). A value that does not parse is
a 400 naming the parameter, never a guess or a 500."""

from __future__ import annotations

import re
from typing import Any

import falcon
import orjson

from core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from server.errors import Problem

_COUNT = re.compile(r"[0-9]{1,15}")


def param(req: falcon.Request, name: str) -> str | None:
    """A query parameter given at most once (a repeated one is a 400, not a guess)."""
    value = req.params.get(name)
    if isinstance(value, list):
        raise Problem("invalid-parameter", f"Give {name} at most once.")
    return value


def context(req: falcon.Request, reserved: frozenset[str]) -> dict[str, Any]:
    """An evaluation context from the query parameters other than `reserved`, each given
    at most once: a value that reads as a JSON number or boolean is that, any other is
    the string as given (`seats=10` is 10, `plan=pro` is "pro", `beta=true` is true)."""
    return {name: _scalar(param(req, name) or "") for name in req.params if name not in reserved}


def _scalar(text: str) -> Any:
    if _NUMBER_OR_BOOLEAN.fullmatch(text):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:  # out of range: as given
            return text
        if isinstance(value, bool | int | float):
            return value
    return text


# JSON's number grammar, and its two booleans: nothing else is read as other than a string.
_NUMBER_OR_BOOLEAN = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false")


def page(req: falcon.Request) -> Page:
    """`limit` (1 to MAX_LIMIT, default DEFAULT_LIMIT) and `offset` (0 or more, default 0)."""
    limit = _count(req, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem("invalid-parameter", f"limit must be between 1 and {MAX_LIMIT}.")
    return Page(limit, _count(req, "offset", 0))


def _count(req: falcon.Request, name: str, default: int) -> int:
    value = param(req, name)
    if value is None:
        return default
    if not _COUNT.fullmatch(value):
        raise Problem("invalid-parameter", f"{name} must be a whole number, not {value!r}.")
    return int(value)
