"""The bodies of the audit log, `GET /api/v1/audit` and `GET /api/v1/flags/{key}/audit`:
newest first, entries as OUT/audit.json holds them (read by core.audit_format.expand); plain
data over a snapshot, kept with it.

Rules: a query is normalized against the log (`since` to the earliest timestamp at or
after it, `actor` casefolded, matched against authors' names and emails) so that equal
answers share one kept body; a filter that names nothing in the log gives an empty page.
The log of one flag with a schedule also lists the steps that have taken effect by the
snapshot's moment, each with the commit that scheduled it and when it took effect: its
moment, or that commit's if it came later (`steps_taken`).
The Falcon resources (`server.resources.audit`) turn a request into a query; the static
export (`core.documents`) asks for the unfiltered pages.
"""

from __future__ import annotations

import bisect
import collections
import functools
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from core.bodies import Body, json_body
from core.flag_bodies import declared_schedules, ramp_of
from core.paging import Page, per_snapshot
from core.schedule import Moment, moment, share_at, utc_text
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
    page = {
        "revision": snapshot.revision,
        "complete": snapshot.audit_complete,
        "total": len(entries),
        "limit": query.limit,
        "offset": query.offset,
        "items": Page(query.limit, query.offset).cut(entries),
    }
    if query.flag is not None and "steps" in snapshot.source["flags"].get(query.flag, {}):
        page["took_effect"] = took_effect(snapshot, query.flag)  # whatever the page and filters
    return json_body(page)


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


# Steps that took effect ------------------------------------------------------------------


def took_effect(snapshot: Snapshot, key: str) -> list[dict[str, Any]]:
    """The steps of flag `key`'s schedule that have taken effect by the snapshot's moment,
    newest first: see `steps_taken`. Empty for a flag without a schedule (or deleted)."""
    flag = snapshot.source["flags"].get(key)
    if flag is None or "steps" not in flag or snapshot.moment is None:
        return []
    entries = [entry for entry in snapshot.entries if entry["flag"] == key]
    return steps_taken(
        flag, snapshot.environments, entries, snapshot.moment, complete=snapshot.audit_complete
    )


def steps_taken(
    flag: Mapping[str, Any],
    environments: Sequence[str],
    entries: Sequence[Mapping[str, Any]],
    now: Moment,
    *,
    complete: bool = True,
) -> list[dict[str, Any]]:
    """Each declared step of `flag` (a snapshot's flag) whose moment (a ramp's `from`) is at
    or before `now`, newest first: `at`, when it took effect (UTC), the `environments` it
    applies to, the step as written, a ramp's `share` at `now` (else null), the `commit`
    that scheduled it, and `scheduled_for`, the step's own moment (UTC).

    A step takes effect at its moment or when the commit that scheduled it was committed
    (`committed_at`), whichever is later: a pull request merged after the moment its step
    names makes the step take effect when merged, not before the commit existed.

    The commit that scheduled a step is the one that put it, exactly as it stands (its `at`
    and fields), into the file, where it has stayed since: `entries` (the flag's, newest
    first, as the audit log has them) carry each declared schedule before and after a
    change (`fields`), so a step is scheduled by the oldest change in which it appears
    without having been there before, since which every change kept it (`attribution`:
    "added"). A step the log never shows arriving is attributed to the flag's last change
    at or before the step's moment ("last-change"), that is the commit behind its
    `updated_at` then; with no such change, `commit` is null ("none"). In a log that is not
    `complete` (a shallow clone), the flag's oldest entry when it reads "created" shows
    where the history was cut, not where its steps arrived."""
    added = _scheduled_by(entries)
    if not complete and entries and entries[-1]["change"] == "created":
        added = {key: entry for key, entry in added.items() if entry is not entries[-1]}
    found: dict[tuple[str, bytes], dict[str, Any]] = {}
    for environment, location, steps in declared_schedules(flag, environments):
        for step in steps:
            start = _start(step)
            if start is None or start > now:
                continue
            identity = (location, _step_key(step))
            item = found.get(identity)
            if item is None:
                item = found[identity] = _taken(step, start, now, added.get(identity), entries)
            item["environments"].append(environment)
    newest = sorted(found.values(), key=lambda item: item["scheduled_for"], reverse=True)
    return sorted(newest, key=lambda item: item["at"], reverse=True)


def _taken(
    step: Mapping[str, Any],
    start: Moment,
    now: Moment,
    scheduler: Mapping[str, Any] | None,
    entries: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    attribution = "added"
    if scheduler is None:
        scheduler = _last_change(entries, start)
        attribution = "last-change" if scheduler is not None else "none"
    ramp = ramp_of(step)
    committed = _committed(scheduler)
    effective = start if committed is None else max(start, committed)
    return {
        "at": utc_text(effective),
        "environments": [],
        "step": step,
        "share": None if ramp is None else share_at(ramp, now),
        "commit": None if scheduler is None else scheduler["commit"],
        "attribution": attribution,
        "scheduled_for": utc_text(start),
    }


def _committed(entry: Mapping[str, Any] | None) -> Moment | None:
    """When the entry's commit was committed (on a first-parent history: merged); None
    without an entry or a readable time."""
    text = None if entry is None else entry.get("committed_at", entry.get("timestamp"))
    try:
        return moment(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _scheduled_by(entries: Sequence[Mapping[str, Any]]) -> dict[tuple[str, bytes], Any]:
    """(where the file declares the schedule, a step) -> the entry that added that step,
    for each step still in the file after the newest entry: `entries` replayed oldest first,
    each change of a schedule adding the steps its new list has and its old one had not,
    and dropping those it no longer has."""
    added: dict[tuple[str, bytes], Any] = {}
    for entry in reversed(entries):
        for change in entry["fields"]:
            location = change["field"]
            if not _is_schedule(location):
                continue
            before = {_step_key(step) for step in _steps(change["from"])}
            after = {_step_key(step): step for step in _steps(change["to"])}
            for identity in [found for found in added if found[0] == location]:
                if identity[1] not in after:
                    del added[identity]
            for step in after.keys() - before:
                added[location, step] = entry
    return added


def _is_schedule(field: str) -> bool:
    parts = field.split(".")
    return parts == ["schedule"] or (
        len(parts) == 3 and parts[0] == "environments" and parts[2] == "schedule"
    )


def _steps(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _step_key(step: Any) -> bytes:
    """A step as written, comparable whatever the order of its keys."""
    return orjson.dumps(step, option=orjson.OPT_SORT_KEYS)


def _start(step: Any) -> Moment | None:
    """When a declared step takes effect: its `at`, or its ramp's `from` (None if it has
    neither, in a build flagc did not check)."""
    ramp = ramp_of(step)
    if ramp is not None:
        return moment(ramp.from_)
    at = step.get("at") if isinstance(step, dict) else None
    try:
        return moment(at) if isinstance(at, str) else None
    except ValueError:
        return None


def _last_change(entries: Sequence[Mapping[str, Any]], at: Moment) -> Mapping[str, Any] | None:
    """The newest of the flag's `entries` (newest first) authored at or before `at`."""
    for entry in entries:
        if aware(datetime.fromisoformat(entry["timestamp"])).timestamp() <= at:
            return entry
    return None


def taken_words(item: Mapping[str, Any], arrow: str = "→") -> str:
    """A step that took effect (an item of `steps_taken`) in one line: `took effect at
    2027-01-11T08:00:00Z in production: enabled: true`; `ramp began at ... in production
    (now 40%): ...`; a step whose commit came after its moment says `at <commit's time>
    when merged (scheduled for <its moment>)`."""
    began = "ramp began" if item["share"] is not None else "took effect"
    share = f" (now {item['share']}%)" if item["share"] is not None else ""
    where = ", ".join(item["environments"])
    return (
        f"{began} at {item['at']}{_late(item)} in {where}{share}: {step_words(item['step'], arrow)}"
    )


def _late(item: Mapping[str, Any]) -> str:
    """` when merged (scheduled for 2025-06-01T00:00:00Z)` for a step that took effect when
    the commit that scheduled it came, after its own moment; else nothing."""
    scheduled_for = item["scheduled_for"]
    return "" if scheduled_for == item["at"] else f" when merged (scheduled for {scheduled_for})"


def step_words(step: Any, arrow: str = "→") -> str:
    """A declared step in one line, for people: its fields (`enabled: true, applications:
    {"ios":false}`), or its ramp (`on 0% → 100% until 2027-01-20T09:00:00Z, every 1h`)."""
    if not isinstance(step, dict):
        return _json(step)
    ramp = step.get("ramp")
    if isinstance(ramp, dict):
        return (
            f"{ramp.get('variant')} {ramp.get('start', 0)}% {arrow} {ramp.get('end', 100)}% "
            f"until {ramp.get('to')}, every {ramp.get('every', '1h')}"
        )
    fields = sorted(step.items())  # as the snapshot writes them, whatever the file's order
    return ", ".join(f"{name}: {_json(value)}" for name, value in fields if name != "at")


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
