"""Pagination and data derived once per snapshot: plain data, for the resources that read
`limit` and `offset` from a request and for the export that writes every page.

Rules: a page holds 1 to MAX_LIMIT items, DEFAULT_LIMIT when the client names no limit;
an offset past the end gives an empty page.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from core.snapshot import Snapshot

_T = TypeVar("_T")


def per_snapshot(make: Callable[[Snapshot], _T]) -> Callable[[Snapshot], _T]:
    """`make(snapshot)` computed once per snapshot and forgotten with it (indexes that
    requests need before they can choose a memoized body)."""
    found: weakref.WeakKeyDictionary[Snapshot, _T] = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    @functools.wraps(make)
    def get(snapshot: Snapshot) -> _T:
        with lock:
            if snapshot in found:
                return found[snapshot]
        value = make(snapshot)
        with lock:
            return found.setdefault(snapshot, value)

    return get


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    def cut(self, items: Sequence[_T]) -> Sequence[_T]:
        return items[self.offset : self.offset + self.limit]
