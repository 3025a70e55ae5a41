"""The query parameters the list endpoints share: each given at most once, and the page
(`limit`, `offset`; the rules of paging are `core.paging`'s). A value that does not parse is
a 400 naming the parameter, never a guess or a 500."""

from __future__ import annotations

import re

import falcon

from core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from server.errors import Problem

_COUNT = re.compile(r"[0-9]{1,15}")


def param(req: falcon.Request, name: str) -> str | None:
    """A query parameter given at most once (a repeated one is a 400, not a guess)."""
    value = req.params.get(name)
    if isinstance(value, list):
        raise Problem("invalid-parameter", f"Give {name} at most once.")
    return value


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
