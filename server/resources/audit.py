"""The audit log: the whole repository's, and one flag's; newest first, entries exactly as
in OUT/audit.json. Only for credentials allowed every environment (`EVERY`): history
spans every environment. The bodies are `core.audit_bodies`'; these resources read the
request and look them up."""

from __future__ import annotations

from datetime import datetime

import falcon

from core import audit_bodies
from core.snapshot import Snapshot
from server.access import EVERY
from server.errors import Problem
from server.params import page, param
from server.send import send
from server.store import Store


class Log:
    """`GET /api/v1/audit?since=&actor=&flag=&limit=&offset=`"""

    access = EVERY

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        send(req, resp, audit_bodies.answer(snapshot, _query(req, snapshot, param(req, "flag"))))

    on_head = on_get


class FlagLog:
    """`GET /api/v1/flags/{key}/audit?since=&actor=&limit=&offset=`: also for a flag deleted
    since, as long as the log remembers it."""

    access = EVERY

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        snapshot = self._store.current
        if key not in snapshot.flags and key not in audit_bodies.index_of(snapshot).flags:
            raise Problem("unknown-flag", f"There is no flag {key!r}, nor any history of one.")
        send(req, resp, audit_bodies.answer(snapshot, _query(req, snapshot, key)))

    on_head = on_get


def _query(req: falcon.Request, snapshot: Snapshot, flag: str | None) -> audit_bodies.Query:
    since = _since(param(req, "since"))
    return audit_bodies.build_query(snapshot, flag, since, param(req, "actor"), page(req))


def _since(value: str | None) -> datetime | None:
    """An ISO 8601 date (midnight UTC) or date-time (UTC unless it has an offset)."""
    if value is None:
        return None
    try:
        return audit_bodies.aware(datetime.fromisoformat(value))
    except ValueError:
        raise Problem(
            "invalid-parameter",
            f"since must be an ISO 8601 date or date-time (2026-01-02, "
            f"2026-01-02T03:04:05+01:00), not {value!r}.",
        ) from None
