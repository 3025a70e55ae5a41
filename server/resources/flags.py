"""The flags: a filtered, paginated list, and one flag in full.

Both show only the environments the credentials may read (`req.context.environments`), and
a flag's history (HISTORY_FIELDS: who created it and last changed it, when and why) only to
credentials that may read every environment, as the audit log: a change's reason and author
may concern any environment. Others get those fields as null, as from a build made without
git history (the documented shapes stay the same).
"""

from __future__ import annotations

import functools
from dataclasses import astuple, dataclass
from typing import Any

import falcon

from server.access import SCOPED
from server.errors import Problem
from server.respond import (
    Page,
    allowed_environments,
    page,
    param,
    reads_history,
    require_environment,
    send,
)
from server.responses import Body, json_body
from server.store import Snapshot, Store, cell

ITEM_FIELDS = (
    "key", "description", "owner", "tags", "expires", "file",
    "created_at", "created_by", "updated_at", "updated_by", "updated_reason",
)  # fmt: skip
HISTORY_FIELDS = ("created_at", "created_by", "updated_at", "updated_by", "updated_reason")


@dataclass(frozen=True)
class _ListQuery:
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


class List:
    """`GET /api/v1/flags?tag=&owner=&environment=&application=&limit=&offset=`"""

    access = SCOPED

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        send(req, resp, _list_answer(snapshot, _list_query(req, snapshot)))

    on_head = on_get


def unfiltered_page(snapshot: Snapshot, where: Page) -> Body:
    """`GET /api/v1/flags?limit=&offset=` with no filter, as answered to credentials that
    may read every environment: the pages a static export holds (`server.documents`)."""
    everyone = tuple(snapshot.environments)
    query = _ListQuery(None, None, None, None, everyone, True, where.limit, where.offset)
    return _list_answer(snapshot, query)


def _list_answer(snapshot: Snapshot, query: _ListQuery) -> Body:
    make = functools.partial(_list_body, snapshot, query)
    return snapshot.memo(("flags", *astuple(query)), make) if query.bounded(snapshot) else make()


def _list_query(req: falcon.Request, snapshot: Snapshot) -> _ListQuery:
    environment = param(req, "environment")
    if environment is not None:
        # Scope first: outside it, 403 whether the environment exists or not.
        require_environment(req, environment)
        if environment not in snapshot.environments:
            raise Problem(
                "unknown-environment",
                f"There is no environment {environment!r}.",
                status=falcon.HTTP_400,
            )
    visible = _visible(req, snapshot)
    application = param(req, "application")
    if application is not None and application not in snapshot.applications:
        raise Problem("unknown-application", f"There is no application {application!r}.")
    chosen = visible if environment is None else (environment,)
    where = page(req)
    return _ListQuery(
        param(req, "tag"), param(req, "owner"), environment, application, chosen,
        reads_history(req), where.limit, where.offset,
    )  # fmt: skip


def _list_body(snapshot: Snapshot, query: _ListQuery) -> Body:
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


def _item(flag: dict[str, Any], query: _ListQuery) -> dict[str, Any]:
    item = {name: flag[name] for name in ITEM_FIELDS}
    if not query.history:
        item.update(dict.fromkeys(HISTORY_FIELDS))
    item["values"] = {
        environment: cell(flag, environment, query.application)
        for environment in query.environments
    }
    return item


class Detail:
    """`GET /api/v1/flags/{key}`: the flag as the snapshot has it, environments limited to
    the visible ones, its history only for '*' credentials."""

    access = SCOPED

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        snapshot = self._store.current
        if key not in snapshot.flags:
            raise Problem("unknown-flag", f"There is no flag {key!r}.")
        send(req, resp, detail(snapshot, key, _visible(req, snapshot), history=reads_history(req)))

    on_head = on_get


def detail(snapshot: Snapshot, key: str, visible: tuple[str, ...], *, history: bool = True) -> Body:
    """The flag `key` as `GET /api/v1/flags/{key}` answers credentials that may read the
    `visible` environments, and its `history` or not (the static export asks for all)."""
    flag = snapshot.flags[key]
    return snapshot.memo(("flag", key, visible, history), lambda: _detail(flag, visible, history))


def _detail(flag: dict[str, Any], visible: tuple[str, ...], history: bool) -> Body:
    shown = dict(flag)
    if not history:
        shown.update(dict.fromkeys(HISTORY_FIELDS))
    shown["resolved"] = {env: flag["resolved"][env] for env in visible}
    shown["environments"] = {
        env: value for env, value in flag["environments"].items() if env in visible
    }
    return json_body(shown)


def _visible(req: falcon.Request, snapshot: Snapshot) -> tuple[str, ...]:
    allowed = allowed_environments(req)
    if allowed is None:
        return tuple(snapshot.environments)
    return tuple(env for env in snapshot.environments if env in allowed)
