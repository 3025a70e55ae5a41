"""Liveness and readiness: never cached (they say how the server is now). Readiness names
the build served and, for a build with schedules, the moment its flags stand at and when the
next step changes them (UTC; null without one)."""

from __future__ import annotations

import falcon

from core.schedule import utc_text
from server.access import OPEN
from server.store import Store


class Liveness:
    access = OPEN

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.cache_control = ["no-store"]
        resp.media = {"status": "ok"}

    on_head = on_get


class Readiness:
    access = OPEN

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        resp.cache_control = ["no-store"]
        resp.media = {
            "status": "ready",
            "revision": snapshot.revision,
            "age_seconds": round(self._store.clock() - snapshot.loaded_at, 3),
            "reload_failures": self._store.failures,
            "last_error": self._store.last_error,
            "moment": _utc(snapshot.moment),
            "next_step": _utc(snapshot.next_step),
        }

    on_head = on_get


def _utc(moment: int | None) -> str | None:
    return None if moment is None else utc_text(moment)
