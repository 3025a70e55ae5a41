"""The whole snapshot, and the flat map services fetch (the hot path)."""

from __future__ import annotations

import falcon

from server.errors import Problem
from server.respond import require_all_environments, require_environment, send
from server.store import Snapshot, Store


class Whole:
    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_all_environments(req, "The whole snapshot")
        send(req, resp, self._store.current.snapshot_body)

    on_head = on_get


class FlatMap:
    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, environment: str) -> None:
        snapshot = self._store.current
        application = req.get_param("application")
        body = snapshot.flat_maps.get((environment, application))
        if body is None:
            raise _unknown(snapshot, environment, application)
        require_environment(req, environment)
        send(req, resp, body)

    on_head = on_get


def _unknown(snapshot: Snapshot, environment: str, application: str | None) -> Problem:
    if environment not in snapshot.environments:
        return Problem("unknown-environment", f"There is no environment {environment!r}.")
    return Problem("unknown-application", f"There is no application {application!r}.")
