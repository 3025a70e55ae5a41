"""The audit log: the whole repository's, and one flag's; newest first, entries exactly as
in OUT/audit.json. Only for credentials allowed every environment (`EVERY`): history
spans every environment."""

from __future__ import annotations

import bisect
import collections
import functools
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

import falcon

from server.access import EVERY
from server.errors import Problem
from server.respond import Page, page, param, per_snapshot, send
from server.responses import Body, json_body
from server.store import Snapshot, Store


@dataclass(frozen=True)
class _Index:
    times: list[datetime]  # each entry's timestamp
    cuts: list[datetime]  # the distinct timestamps, sorted
    actors: frozenset[str]  # authors' names and emails, casefolded
    flags: frozenset[str]
    counts: collections.Counter[str | None]  # entries per flag (None: _project.yaml)


@per_snapshot
def _index(snapshot: Snapshot) -> _Index:
    times = [_aware(datetime.fromisoformat(entry["timestamp"])) for entry in snapshot.entries]
    return _Index(
        times,
        sorted(set(times)),
        frozenset(_actors(snapshot.entries)),
        frozenset(entry["flag"] for entry in snapshot.entries if entry["flag"] is not None),
        collections.Counter(entry["flag"] for entry in snapshot.entries),
    )


def _actors(entries: list[dict[str, Any]]) -> set[str]:
    return {
        person.casefold()
        for entry in entries
        for person in (entry["author"]["name"], entry["author"]["email"])
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Query:
    flag: str | None
    since: datetime | None  # normalized to the earliest timestamp at or after the one asked
    actor: str | None  # casefolded
    limit: int
    offset: int
    matchable: bool  # False when a filter names nothing in the log: the answer is empty

    def bounded(self, snapshot: Snapshot) -> bool:
        """Whether the answer is worth keeping (kept answers stay few however clients ask)."""
        return self.matchable and self.offset < len(snapshot.entries)


class Log:
    """`GET /api/v1/audit?since=&actor=&flag=&limit=&offset=`"""

    access = EVERY

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        send(req, resp, _answer(snapshot, _query(req, snapshot, param(req, "flag"))))

    on_head = on_get


class FlagLog:
    """`GET /api/v1/flags/{key}/audit?since=&actor=&limit=&offset=`: also for a flag deleted
    since, as long as the log remembers it."""

    access = EVERY

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        snapshot = self._store.current
        if key not in snapshot.flags and key not in _index(snapshot).flags:
            raise Problem("unknown-flag", f"There is no flag {key!r}, nor any history of one.")
        send(req, resp, _answer(snapshot, _query(req, snapshot, key)))

    on_head = on_get


def logged_flags(snapshot: Snapshot) -> list[str]:
    """Every key `GET /api/v1/flags/{key}/audit` answers for, sorted: the snapshot's flags
    and those the log remembers (deleted since)."""
    return sorted(snapshot.flags.keys() | _index(snapshot).flags)


def entry_count(snapshot: Snapshot, flag: str | None) -> int:
    """How many entries the log holds (of one flag, or all): the `total` of its pages."""
    return len(snapshot.entries) if flag is None else _index(snapshot).counts[flag]


def unfiltered_page(snapshot: Snapshot, flag: str | None, where: Page) -> Body:
    """`GET /api/v1/audit?limit=&offset=` (`flag` None) or `GET /api/v1/flags/{flag}/audit
    ?limit=&offset=`, with no other filter: the pages a static export holds."""
    return _answer(snapshot, _build_query(snapshot, flag, None, None, where))


def _answer(snapshot: Snapshot, query: _Query) -> Body:
    make = functools.partial(_body, snapshot, query)
    return snapshot.memo(("audit", *astuple(query)), make) if query.bounded(snapshot) else make()


def _query(req: falcon.Request, snapshot: Snapshot, flag: str | None) -> _Query:
    since = _since(param(req, "since"))
    return _build_query(snapshot, flag, since, param(req, "actor"), page(req))


def _build_query(
    snapshot: Snapshot, flag: str | None, since: datetime | None, actor: str | None, where: Page
) -> _Query:
    """The query normalized against the log, so that equal answers share one kept body."""
    index = _index(snapshot)
    matchable = flag is None or flag in index.flags
    if since is not None:
        position = bisect.bisect_left(index.cuts, since)
        matchable = matchable and position < len(index.cuts)
        since = index.cuts[position] if matchable else None
    if actor is not None:
        actor = actor.casefold()
        matchable = matchable and actor in index.actors
    return _Query(flag, since, actor, where.limit, where.offset, matchable)


def _since(value: str | None) -> datetime | None:
    """An ISO 8601 date (midnight UTC) or date-time (UTC unless it has an offset)."""
    if value is None:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        raise Problem(
            "invalid-parameter",
            f"since must be an ISO 8601 date or date-time (2026-01-02, "
            f"2026-01-02T03:04:05+01:00), not {value!r}.",
        ) from None


def _body(snapshot: Snapshot, query: _Query) -> Body:
    entries = _select(snapshot, query) if query.matchable else []
    return json_body(
        {
            "revision": snapshot.revision,
            "complete": snapshot.audit_complete,
            "total": len(entries),
            "limit": query.limit,
            "offset": query.offset,
            "items": Page(query.limit, query.offset).cut(entries),
        }
    )


def _select(snapshot: Snapshot, query: _Query) -> list[dict[str, Any]]:
    times = _index(snapshot).times
    return [
        entry
        for entry, moment in zip(snapshot.entries, times, strict=True)
        if (query.flag is None or entry["flag"] == query.flag)
        and (query.since is None or moment >= query.since)
        and (query.actor is None or query.actor in _people(entry))
    ]


def _people(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["author"]["name"].casefold(), entry["author"]["email"].casefold()
