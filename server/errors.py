"""Errors as RFC 9457 problem details (`application/problem+json`), and the 500 of last resort.

Resources raise `Problem(kind, detail)` (a Falcon HTTPError); Falcon's own errors (unknown
route, method not allowed, ...) and those of middleware get a type from their status. Every
body is `{type, title, status, detail}`: `type` is `PROBLEM_BASE + kind`, one of `PROBLEMS`
(stable: a kind never changes meaning), `title` is the kind's and never varies, `detail` says
what happened this time. A status without a kind of its own is typed `about:blank`.

Routes under a prefix in `own_shapes` (by default `/ofrep/`, whose clients expect OFREP's
error shape) are left to their own serializer: `install(app, own_shapes={...})` is the hook.
The route is the URI template the router matched, so every spelling of a path that reaches
a resource (`//ofrep/...`) gets that resource's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import falcon
import orjson
from falcon.app_helpers import default_serialize_error

from core.snapshot import SnapshotError

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_BASE: Final = "https://gitflags.dev/problems/"

ErrorSerializer = Callable[[falcon.Request, falcon.Response, falcon.HTTPError], None]


@dataclass(frozen=True)
class Kind:
    status: str
    title: str


PROBLEMS: Final[Mapping[str, Kind]] = {
    "bad-request": Kind(falcon.HTTP_400, "The request is not valid"),
    "invalid-parameter": Kind(falcon.HTTP_400, "A query parameter has an invalid value"),
    "unknown-environment": Kind(falcon.HTTP_404, "No such environment"),  # 400 in a query
    "unknown-application": Kind(falcon.HTTP_400, "No such application"),
    "unauthorized": Kind(falcon.HTTP_401, "Authentication is required"),
    "forbidden": Kind(falcon.HTTP_403, "Not allowed for these credentials"),
    "not-found": Kind(falcon.HTTP_404, "No such resource"),
    "unknown-flag": Kind(falcon.HTTP_404, "No such flag"),
    "method-not-allowed": Kind(falcon.HTTP_405, "The resource is read-only"),
    "internal-error": Kind(falcon.HTTP_500, "Internal server error"),
    "unavailable": Kind(falcon.HTTP_503, "No snapshot to serve yet"),
}

BY_STATUS: Final[Mapping[int, str]] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    500: "internal-error",
    503: "unavailable",
}

DEFAULT_OWN_SHAPES: Final[Mapping[str, ErrorSerializer]] = {"/ofrep/": default_serialize_error}

log = logging.getLogger("flagserve")


class Problem(falcon.HTTPError):
    """An HTTP error of one of the `PROBLEMS` kinds; `status` overrides the kind's own."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        status: str | None = None,
        headers: Mapping[str, str] | None = None,  # such as WWW-Authenticate for a 401
    ) -> None:
        known = PROBLEMS[kind]
        super().__init__(
            status or known.status,
            title=known.title,
            description=detail,
            headers=dict(headers) if headers else None,
        )
        self.kind = kind


def install(
    app: falcon.App[falcon.Request, falcon.Response],
    own_shapes: Mapping[str, ErrorSerializer] = DEFAULT_OWN_SHAPES,
) -> None:
    """Serialize errors as problem details (but under `own_shapes`' prefixes), answer
    unexpected exceptions with a 500 (logged, never with a traceback) and a store without
    a snapshot with a 503."""
    app.set_error_serializer(_Serializer(dict(own_shapes)))
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(SnapshotError, _unavailable)


class _Serializer:
    def __init__(self, own_shapes: dict[str, ErrorSerializer]) -> None:
        self._own = own_shapes

    def __call__(self, req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
        route = _route(req)
        for prefix, serializer in self._own.items():
            if route.startswith(prefix):
                serializer(req, resp, error)
                return
        resp.content_type = PROBLEM_JSON
        resp.cache_control = ["no-store"]
        resp.data = orjson.dumps(problem(req, error))


def _route(req: falcon.Request) -> str:
    """The matched route's template; without one, the path as the router reads it (it
    ignores leading slashes)."""
    return req.uri_template or "/" + req.path.lstrip("/")


def problem(req: falcon.Request, error: falcon.HTTPError) -> dict[str, Any]:
    """The problem details of `error`."""
    status = error.status_code
    kind = getattr(error, "kind", None) or BY_STATUS.get(status)
    if kind is None:  # RFC 9457: about:blank's title is the status phrase
        phrase = falcon.code_to_http_status(status).partition(" ")[2]
        return {
            "type": "about:blank",
            "title": phrase,
            "status": status,
            "detail": error.description or phrase,
        }
    return {
        "type": PROBLEM_BASE + kind,
        "title": PROBLEMS[kind].title,
        "status": status,
        "detail": error.description or _detail(req, kind),
    }


def _detail(req: falcon.Request, kind: str) -> str:
    if kind == "not-found":
        return f"There is nothing at {req.path}."
    if kind == "method-not-allowed":
        return f"{req.method} is not allowed on {req.path}: this API is read-only."
    return PROBLEMS[kind].title + "."


def _unexpected(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]
) -> None:
    log.error(
        "unexpected error in %s %s (request %s)",
        req.method,
        req.path,
        getattr(req.context, "request_id", "-"),
        exc_info=error,
    )
    raise Problem("internal-error", "The server failed to answer; the error is logged.")


def _unavailable(
    req: falcon.Request, resp: falcon.Response, error: SnapshotError, params: dict[str, Any]
) -> None:
    log.error("no snapshot to serve: %s", error)
    raise Problem("unavailable", "The server has no good build to serve yet.")
