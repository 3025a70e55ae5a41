"""The flags: a filtered, paginated list, and one flag in full; the bodies are
`core.flag_bodies`', these resources read the request and look them up.

Both show only the environments the credentials may read (`req.context.environments`), and
a flag's history (HISTORY_FIELDS: who created it and last changed it, when and why) only to
credentials that may read every environment, as the audit log: a change's reason and author
may concern any environment. Others get those fields as null, as from a build made without
git history (the documented shapes stay the same).
"""

from __future__ import annotations

import falcon

from core import flag_bodies
from core.snapshot import Snapshot
from server.access import SCOPED, allowed_environments, reads_history, require_environment
from server.errors import Problem
from server.params import page, param
from server.send import send
from server.store import Store


class List:
    """`GET /api/v1/flags?tag=&owner=&environment=&application=&limit=&offset=`"""

    access = SCOPED

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        send(req, resp, flag_bodies.list_answer(snapshot, _list_query(req, snapshot)))

    on_head = on_get


def _list_query(req: falcon.Request, snapshot: Snapshot) -> flag_bodies.ListQuery:
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
    return flag_bodies.ListQuery(
        param(req, "tag"), param(req, "owner"), environment, application, chosen,
        reads_history(req), where.limit, where.offset,
    )  # fmt: skip


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
        send(
            req,
            resp,
            flag_bodies.detail(snapshot, key, _visible(req, snapshot), history=reads_history(req)),
        )

    on_head = on_get


def _visible(req: falcon.Request, snapshot: Snapshot) -> tuple[str, ...]:
    allowed = allowed_environments(req)
    if allowed is None:
        return snapshot.environments
    return tuple(env for env in snapshot.environments if env in allowed)
