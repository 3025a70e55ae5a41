"""flagd's flag definitions of one environment, for flagd's HTTP sync (which polls with an
ETag) and any flagd provider that reads a definition over HTTP."""

from __future__ import annotations

import falcon

from server.access import SCOPED, require_environment
from server.errors import Problem
from server.send import send
from server.store import Store


class Definitions:
    """`GET /api/v1/environments/{environment}/flagd.json`: the bytes `flagc build` wrote to
    OUT/flagd/<environment>.json, computed from the loaded snapshot when it was loaded."""

    access = SCOPED

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, environment: str) -> None:
        require_environment(req, environment)  # before existence: no names outside scope
        body = self._store.current.flagd_definitions.get(environment)
        if body is None:
            raise Problem("unknown-environment", f"There is no environment {environment!r}.")
        send(req, resp, body)

    on_head = on_get
