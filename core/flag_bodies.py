"""The bodies of `GET /api/v1/flags` (a filtered, paginated list) and `GET
/api/v1/flags/{key}` (one flag in full): plain data over a snapshot, kept with it.

Rules: each shows only the environments of the query (those the credentials may read), and
a flag's history (HISTORY_FIELDS: who created it and last changed it, when and why) only
when asked (credentials that may read every environment, as the audit log); otherwise
those fields are null, as from a build made without git history. A flag with a schedule
also shows its `timeline` as of the snapshot's moment, and its `steps` cut to the visible
environments as `resolved` is. The Falcon resources (`server.resources.flags`) turn a
request into a query; the static export (`core.documents`) asks for what credentials for
every environment see.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from core.bodies import Body, json_body
from core.model import Ramp
from core.paging import Page
from core.schedule import Moment, moment, ramp_shares
from core.snapshot import Snapshot, cell

ITEM_FIELDS = (
    "key", "description", "owner", "tags", "expires", "file",
    "created_at", "created_by", "updated_at", "updated_by", "updated_reason",
)  # fmt: skip
HISTORY_FIELDS = ("created_at", "created_by", "updated_at", "updated_by", "updated_reason")


@dataclass(frozen=True)
class ListQuery:
    tag: str | None
    owner: str | None
    environment: str | None
    application: str | None
    environments: tuple[str, ...]  # whose values each item shows
    history: bool  # whether items show HISTORY_FIELDS (else null)
    limit: int
    offset: int

    def bounded(self, snapshot: Snapshot) -> bool:
        """Whether the answer is worth keeping: the filters name what exists and the page
        is not past the end (so that kept answers stay few however clients ask)."""
        return (
            (self.tag is None or self.tag in snapshot.tags)
            and (self.owner is None or self.owner in snapshot.owners)
            and self.offset < len(snapshot.keys)
        )


def unfiltered_page(snapshot: Snapshot, where: Page) -> Body:
    """`GET /api/v1/flags?limit=&offset=` with no filter, as answered to credentials that
    may read every environment: the pages a static export holds (`core.documents`)."""
    query = ListQuery(
        None, None, None, None, snapshot.environments, True, where.limit, where.offset
    )
    return list_answer(snapshot, query)


def list_answer(snapshot: Snapshot, query: ListQuery) -> Body:
    make = functools.partial(_list_body, snapshot, query)
    return snapshot.memo(("flags", *astuple(query)), make) if query.bounded(snapshot) else make()


def _list_body(snapshot: Snapshot, query: ListQuery) -> Body:
    flags = snapshot.flags
    keys = [
        key
        for key in snapshot.keys
        if (query.tag is None or query.tag in flags[key]["tags"])
        and (query.owner is None or flags[key]["owner"] == query.owner)
    ]
    where = Page(query.limit, query.offset)
    return json_body(
        {
            "revision": snapshot.revision,
            "environment": query.environment,
            "application": query.application,
            "total": len(keys),
            "limit": query.limit,
            "offset": query.offset,
            "items": [_item(flags[key], query) for key in where.cut(keys)],
        }
    )


def _item(flag: dict[str, Any], query: ListQuery) -> dict[str, Any]:
    item = {name: flag[name] for name in ITEM_FIELDS}
    if not query.history:
        item.update(dict.fromkeys(HISTORY_FIELDS))
    item["values"] = {
        environment: cell(flag, environment, query.application)
        for environment in query.environments
    }
    return item


def detail(snapshot: Snapshot, key: str, visible: tuple[str, ...], *, history: bool = True) -> Body:
    """The flag `key` as `GET /api/v1/flags/{key}` answers credentials that may read the
    `visible` environments, and its `history` or not (the static export asks for all); a
    flag with a schedule also has its `timeline` as of the snapshot's moment."""
    make = functools.partial(_detail, snapshot, key, visible, history)
    return snapshot.memo(("flag", key, visible, history), make)


def _detail(snapshot: Snapshot, key: str, visible: tuple[str, ...], history: bool) -> Body:
    flag = snapshot.flags[key]
    shown = dict(flag)
    if not history:
        shown.update(dict.fromkeys(HISTORY_FIELDS))
    shown["resolved"] = {env: flag["resolved"][env] for env in visible}
    shown["environments"] = {
        env: value for env, value in flag["environments"].items() if env in visible
    }
    if "steps" in flag:
        shown["steps"] = _visible_steps(flag["steps"], visible)
        shown["timeline"] = timeline(snapshot, key, visible)
    return json_body(shown)


def _visible_steps(steps: list[dict[str, Any]], visible: tuple[str, ...]) -> list[dict[str, Any]]:
    """The steps that change a visible environment, with those rows only (as `resolved`)."""
    found = []
    for step in steps:
        rows = {env: step["resolved"][env] for env in visible if env in step["resolved"]}
        if rows:
            found.append({**step, "resolved": rows})
    return found


# The timeline of a flag's schedule ---------------------------------------------------------


def timeline(snapshot: Snapshot, key: str, visible: Sequence[str]) -> list[dict[str, Any]]:
    """The flag's schedule as it stands at the snapshot's moment: each moment at which a row
    of a `visible` environment changes (the build's `steps`), oldest first, with `state`
    `current` for the last at or before the moment, `past` for those before it, `next` for
    the first after it and `later` for the rest; empty for a flag without steps.

    Each moment lists the visible environments it changes: the environment's cell before
    and after (`from`, `to`), the applications that do not move as the environment does
    (one that keeps its value while the environment's changes, or changes alone), the
    rules from then on when they change (else null), and `ramp` (the variant and its share
    from then on) when a ramp's share changes then (else null)."""
    flag = snapshot.source["flags"][key]
    rows = dict(flag["resolved"])  # the flag before its first step
    ramps = _ramp_shares(flag, snapshot.environments)
    found = []
    for step in flag.get("steps", ()):
        at = moment(step["at"])
        changes = [
            _change(env, rows[env], step["resolved"][env], ramps.get((env, at)))
            for env in visible
            if env in step["resolved"]
        ]
        rows.update(step["resolved"])
        if changes:
            found.append({"at": step["at"], "state": "later", "changes": changes})
    _mark(found, snapshot.moment)
    return found


def _mark(found: list[dict[str, Any]], now: Moment | None) -> None:
    """Each moment's `state` against `now` (steps are in time order)."""
    moments = [moment(item["at"]) for item in found]
    current = bisect.bisect_right(moments, now) - 1 if now is not None else -1
    for index, item in enumerate(found):
        if index < current:
            item["state"] = "past"
        elif index == current:
            item["state"] = "current"
        elif index == current + 1:
            item["state"] = "next"


def _change(
    environment: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    ramp: tuple[str, int] | None,
) -> dict[str, Any]:
    moved = (before["variant"], after["variant"])
    applications = {}
    for name, found in after["applications"].items():
        was = before["applications"].get(name, _cell(before))
        shift = (was["variant"], found["variant"])
        changing = shift[0] != shift[1] or moved[0] != moved[1]
        if shift != moved and changing:
            applications[name] = {"from": was, "to": found}
    return {
        "environment": environment,
        "from": _cell(before),
        "to": _cell(after),
        "applications": applications,
        "rules": after["rules"] if after["rules"] != before["rules"] else None,
        "ramp": None if ramp is None else {"variant": ramp[0], "share": ramp[1]},
    }


def _cell(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"variant": row["variant"], "value": row["value"], "source": row["source"]}


def declared_schedules(
    flag: Mapping[str, Any], environments: Sequence[str]
) -> Iterator[tuple[str, str, list[Any]]]:
    """Each environment's schedule as a snapshot's flag declares it, with where the file
    declares it (the audit log's field path): `environments.<env>.schedule`, or the
    top-level `schedule` in an environment without one of its own that is not a bare value
    (`core.schedule.schedules`' rule)."""
    top = flag.get("schedule") or []
    for environment in environments:
        written = (flag.get("environments") or {}).get(environment)
        if isinstance(written, dict) and isinstance(written.get("schedule"), list):
            yield environment, f"environments.{environment}.schedule", written["schedule"]
        elif top and (written is None or isinstance(written, dict)):
            yield environment, "schedule", top


def ramp_of(step: Any) -> Ramp | None:
    """A declared step's ramp (None for a step at a moment, or one that is not a ramp)."""
    found = step.get("ramp") if isinstance(step, dict) else None
    try:
        return Ramp.model_validate(found) if isinstance(found, dict) else None
    except ValueError:  # checked by flagc; a build made otherwise shows no share
        return None


def _ramp_shares(
    flag: Mapping[str, Any], environments: Sequence[str]
) -> dict[tuple[str, Moment], tuple[str, int]]:
    """(environment, moment) -> (variant, share) for each share change of each ramp."""
    found = {}
    for environment, _, steps in declared_schedules(flag, environments):
        for step in steps:
            ramp = ramp_of(step)
            if ramp is not None:
                for at, share in ramp_shares(ramp):
                    found[environment, at] = (ramp.variant, share)
    return found
