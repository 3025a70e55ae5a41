"""The read-only web dashboard: the flag matrix, each flag's values, dependencies and
history, the change feed and the dependency graph, as server-rendered pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import falcon

from server.dashboard import views
from server.dashboard.links import SourceLinks
from server.store import Store

__all__ = ["SourceLinks", "add_routes"]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def add_routes(
    app: falcon.App[falcon.Request, falcon.Response],
    store: Store,
    links: SourceLinks | None = None,  # to flag files and commits on the code host
    today: Callable[[], dt.date] = _today,  # expiry is judged against it
) -> None:
    """The pages under `/` and their assets under `/static/`."""
    where = links or SourceLinks()
    app.add_route("/", views.Overview(store, where, today))
    app.add_route("/flags/{key}", views.Flag(store, where, today))
    app.add_route("/audit", views.Audit(store, where, today))
    app.add_route("/graph", views.Graph(store, where, today))
    app.add_route("/static/{name}", views.Static())
