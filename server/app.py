"""The Falcon application: only wiring. Resources look things up in the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import falcon

from server import dashboard, errors
from server.exchange import Exchange, Observer
from server.resources import (
    audit,
    events,
    flagd,
    flags,
    health,
    metrics,
    ofrep,
    openapi,
    snapshot,
)
from server.store import Store
from server.streams import KEEPALIVE_SECONDS, PATH, Hub, Offer, Tokens


def create_app(
    store: Store,
    *,
    observers: Sequence[Observer] = (),  # told of every answered request (logs, metrics)
    middleware: Iterable[Any] = (),  # Falcon middleware after Exchange (access control)
    default_environment: str | None = None,
    metrics_route: bool = True,  # False when /metrics has its own port (--metrics-bind)
    links: dashboard.SourceLinks | None = None,  # the dashboard's links to flag files
    tokens: Tokens | None = None,  # signs stream URLs (server.streams); None: a new secret
    keepalive: float = KEEPALIVE_SECONDS,  # an event stream's keep-alive comments, at least
) -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App(middleware=[Exchange(observers), *middleware])
    hub = Hub(store)
    offer = Offer(hub, tokens if tokens is not None else Tokens.from_file(None))
    # problem+json outside /ofrep/; 500s logged, never a traceback
    errors.install(app, own_shapes={"/ofrep/": ofrep.serialize_error})
    app.add_error_handler(ofrep.OfrepError, ofrep.OfrepError.handle)
    app.add_route("/healthz", health.Liveness())
    app.add_route("/readyz", health.Readiness(store))
    if metrics_route:
        app.add_route("/metrics", metrics.Exposition())
    app.add_route("/openapi.json", openapi.Spec())
    app.add_route("/api/v1/snapshot", snapshot.Whole(store))
    app.add_route("/api/v1/environments/{environment}/flags", snapshot.FlatMap(store))
    app.add_route(
        "/api/v1/environments/{environment}/applications/{application}/flags",
        snapshot.FlatMap(store),
        suffix="application",  # ?application=A as a path, for static exports (flagc export)
    )
    app.add_route("/api/v1/environments/{environment}/flagd.json", flagd.Definitions(store))
    app.add_route("/api/v1/flags", flags.List(store))
    app.add_route("/api/v1/flags/{key}", flags.Detail(store))
    app.add_route("/api/v1/flags/{key}/audit", audit.FlagLog(store))
    app.add_route("/api/v1/audit", audit.Log(store))
    app.add_route("/ofrep/v1/evaluate/flags", ofrep.Bulk(store, default_environment, offer))
    app.add_route(PATH, events.Events(hub, default_environment, keepalive))
    app.add_route("/ofrep/v1/evaluate/flags/{key}", ofrep.Single(store, default_environment))
    dashboard.add_routes(app, store, links)  # the read-only pages: /, /flags/{key}, ...
    return app
