"""The whole snapshot, and the flat map services fetch (the hot path)."""

from __future__ import annotations

import falcon

from server.respond import send
from server.store import Store


class Whole:
    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, self._store.current.snapshot_body)

    on_head = on_get


class FlatMap:
    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, environment: str) -> None:
        snapshot = self._store.current
        if environment not in snapshot.environments:
            raise falcon.HTTPNotFound(title="unknown environment", description=environment)
        application = req.get_param("application")
        if application is not None and application not in snapshot.applications:
            raise falcon.HTTPBadRequest(title="unknown application", description=application)
        send(req, resp, snapshot.flat_maps[environment, application])

    on_head = on_get
