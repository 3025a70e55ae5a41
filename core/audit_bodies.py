"""The bodies of the audit log, `GET /api/v1/audit` and `GET /api/v1/flags/{key}/audit`:
newest first, entries as OUT/audit.json holds them (read by core.audit_format.expand); plain
data over a snapshot, kept with it.

Rules: a query is normalized against the log (`since` to the earliest timestamp at or
after it, `actor` casefolded, matched against authors' names and emails) so that equal
answers share one kept body; a filter that names nothing in the log gives an empty page.
The Falcon resources (`server.resources.audit`) turn a request into a query; the static
export (`core.documents`) asks for the unfiltered pages.
"""

from __future__ import annotations

import bisect
import collections
import functools
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from core.bodies import Body, json_body
from core.paging import Page, per_snapshot
from core.snapshot import Snapshot


@dataclass(frozen=True)
class Index:
    times: list[datetime]  # each entry's timestamp
    cuts: list[datetime]  # the distinct timestamps, sorted
    actors: frozenset[str]  # authors' names and emails, casefolded
    flags: frozenset[str]
    counts: collections.Counter[str | None]  # entries per flag (None: _project.yaml)


@per_snapshot
def index_of(snapshot: Snapshot) -> Index:
    times = [aware(datetime.fromisoformat(entry["timestamp"])) for entry in snapshot.entries]
    return Index(
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


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Query:
    flag: str | None
    since: datetime | None  # normalized to the earliest timestamp at or after the one asked
    actor: str | None  # casefolded
    limit: int
    offset: int
    matchable: bool  # False when a filter names nothing in the log: the answer is empty

    def bounded(self, snapshot: Snapshot) -> bool:
        """Whether the answer is worth keeping (kept answers stay few however clients ask)."""
        return self.matchable and self.offset < len(snapshot.entries)


def logged_flags(snapshot: Snapshot) -> list[str]:
    """Every key `GET /api/v1/flags/{key}/audit` answers for, sorted: the snapshot's flags
    and those the log remembers (deleted since)."""
    return sorted(snapshot.flags.keys() | index_of(snapshot).flags)


def entry_count(snapshot: Snapshot, flag: str | None) -> int:
    """How many entries the log holds (of one flag, or all): the `total` of its pages."""
    return len(snapshot.entries) if flag is None else index_of(snapshot).counts[flag]


def unfiltered_page(snapshot: Snapshot, flag: str | None, where: Page) -> Body:
    """`GET /api/v1/audit?limit=&offset=` (`flag` None) or `GET /api/v1/flags/{flag}/audit
    ?limit=&offset=`, with no other filter: the pages a static export holds."""
    return answer(snapshot, build_query(snapshot, flag, None, None, where))


def answer(snapshot: Snapshot, query: Query) -> Body:
    make = functools.partial(_body, snapshot, query)
    return snapshot.memo(("audit", *astuple(query)), make) if query.bounded(snapshot) else make()


def build_query(
    snapshot: Snapshot, flag: str | None, since: datetime | None, actor: str | None, where: Page
) -> Query:
    """The query normalized against the log, so that equal answers share one kept body."""
    index = index_of(snapshot)
    matchable = flag is None or flag in index.flags
    if since is not None:
        position = bisect.bisect_left(index.cuts, since)
        matchable = matchable and position < len(index.cuts)
        since = index.cuts[position] if matchable else None
    if actor is not None:
        actor = actor.casefold()
        matchable = matchable and actor in index.actors
    return Query(flag, since, actor, where.limit, where.offset, matchable)


def _body(snapshot: Snapshot, query: Query) -> Body:
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


def _select(snapshot: Snapshot, query: Query) -> list[dict[str, Any]]:
    times = index_of(snapshot).times
    return [
        entry
        for entry, moment in zip(snapshot.entries, times, strict=True)
        if (query.flag is None or entry["flag"] == query.flag)
        and (query.since is None or moment >= query.since)
        and (query.actor is None or query.actor in _people(entry))
    ]


def _people(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["author"]["name"].casefold(), entry["author"]["email"].casefold()
