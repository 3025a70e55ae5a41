"""The Falcon application: only wiring. Resources look things up in the store."""

from __future__ import annotations

import falcon

from server.resources import health, snapshot
from server.respond import RespondMiddleware
from server.store import Store


def create_app(store: Store) -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App(middleware=[RespondMiddleware()])
    app.add_route("/healthz", health.Liveness())
    app.add_route("/readyz", health.Readiness(store))
    app.add_route("/api/v1/snapshot", snapshot.Whole(store))
    app.add_route("/api/v1/environments/{environment}/flags", snapshot.FlatMap(store))
    return app
