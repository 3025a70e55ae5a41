"""The whole snapshot, and the flat map services fetch (the hot path)."""

from __future__ import annotations

import falcon

from core.snapshot import Snapshot
from server.access import EVERY, SCOPED, require_environment
from server.errors import Problem
from server.params import context, param
from server.send import accepts_gzip, send
from server.store import Store


class Whole:
    """`GET /api/v1/snapshot`: every environment, so only for '*' keys (`EVERY`)."""

    access = EVERY

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, self._store.current.snapshot_body)

    on_head = on_get


class FlatMap:
    """`GET /api/v1/environments/{environment}/flags[?application=A]`, and the same answer
    at `.../environments/{environment}/applications/{application}/flags` (routed with the
    suffix `application`): a path with no query string, which a static export can hold.
    Any other query parameter is the evaluation context (`targetingKey=...`, attributes):
    then each flag is evaluated for it, not kept."""

    access = SCOPED

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, environment: str) -> None:
        _send_flat_map(req, resp, self._store.current, environment, param(req, "application"))

    def on_get_application(
        self, req: falcon.Request, resp: falcon.Response, environment: str, application: str
    ) -> None:
        # A name in the path that names nothing is a missing resource (404), not a bad query.
        _send_flat_map(req, resp, self._store.current, environment, application, falcon.HTTP_404)

    on_head = on_get
    on_head_application = on_get_application


_RESERVED = frozenset({"application"})  # the flat map's own parameter; the rest: context


def _send_flat_map(
    req: falcon.Request,
    resp: falcon.Response,
    snapshot: Snapshot,
    environment: str,
    application: str | None,
    unknown_application: str | None = None,  # the status, if not the kind's own (400)
) -> None:
    # Scope first: outside it, 403 whether the environment exists or not (names stay unknown).
    require_environment(req, environment)
    body = snapshot.flat_maps.get((environment, application))
    given = context(req, _RESERVED)
    if body is not None and given:
        given["environment"] = environment
        if application is not None:
            given["application"] = application
        compress = accepts_gzip(req.get_header("Accept-Encoding"))
        body = snapshot.evaluated_flat(environment, application, given, compress=compress)
    if body is None:
        if environment not in snapshot.environments:
            raise Problem("unknown-environment", f"There is no environment {environment!r}.")
        raise Problem(
            "unknown-application",
            f"There is no application {application!r}.",
            status=unknown_application,
        )
    send(req, resp, body)
