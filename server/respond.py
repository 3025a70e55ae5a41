"""Sending precomputed bodies (ETag and If-None-Match, gzip when accepted, HEAD), the
middleware every request passes through (request id, headers, observers), access control
as resources see it, and the query parameters list endpoints share (pagination, whose
rules are `core.paging`'s)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

import falcon

from core.bodies import Body
from core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from server.errors import Problem

CACHE_CONTROL = "no-cache"  # clients may keep a copy, but revalidate it (cheap: a 304)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
REQUEST_ID = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")  # echoed only when this tame

_T = TypeVar("_T")


def send(req: falcon.Request, resp: falcon.Response, body: Body) -> None:
    """Answer with `body`, or 304 when the client already has it."""
    resp.etag = body.etag
    resp.cache_control = [CACHE_CONTROL]
    resp.vary = ["Accept-Encoding"]
    if _matches(req.get_header("If-None-Match"), body.etag):
        resp.status = falcon.HTTP_304
        resp.content_type = None  # a 304 carries no content, nor its type
        return
    resp.content_type = body.content_type
    if body.gzipped is not None and accepts_gzip(req.get_header("Accept-Encoding")):
        resp.set_header("Content-Encoding", "gzip")
        resp.data = body.gzipped
    else:
        resp.data = body.data


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return etag in tags or "*" in tags


def accepts_gzip(header: str | None) -> bool:
    """Whether Accept-Encoding accepts gzip (named, or `*`, without q=0)."""
    if not header:
        return False
    if ";" not in header:  # the usual case: no weights
        codings = {coding.strip() for coding in header.lower().split(",")}
        return "gzip" in codings or "*" in codings
    weights: dict[str, bool] = {}
    for part in header.lower().split(","):
        coding, _, parameters = part.partition(";")
        weights[coding.strip()] = not re.fullmatch(r"\s*q\s*=\s*0(\.0{0,3})?\s*", parameters)
    return weights.get("gzip", weights.get("*", False))


Observer = Callable[[falcon.Request, falcon.Response, float], None]
"""Told of every answered request with its duration in seconds (access log, metrics)."""


class Exchange:
    """The one middleware every request passes through (one, because Falcon's dispatch of
    each middleware method costs on the hot path): the request id (the client's
    X-Request-ID when tame, or a new one), the security headers of a JSON API, and the
    observers, each told of the request once it is answered, with its duration."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._observers = tuple(observers)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        context = req.context
        context.started = time.perf_counter()
        given = req.get_header(REQUEST_ID)
        tame = given is not None and _CLIENT_REQUEST_ID.fullmatch(given)
        context.request_id = given if tame else new_request_id()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        context = req.context
        # Kept in the context for the observers (the access line names it).
        context.request_id = context.get("request_id") or new_request_id()
        resp.set_header(REQUEST_ID, context.request_id)
        # The dashboard's pages carry their own (a CSP that lets their stylesheet and script in).
        resp.set_headers(getattr(resource, "security_headers", SECURITY_HEADERS))
        started: float = context.get("started") or time.perf_counter()
        elapsed = time.perf_counter() - started
        for observe in self._observers:
            observe(req, resp, elapsed)


def new_request_id() -> str:
    """A random UUID (version 4) in hex, for a request that brought no tame X-Request-ID."""
    return uuid.uuid4().hex


def allowed_environments(req: falcon.Request) -> frozenset[str] | None:
    """The environments these credentials may read, or None for all (or no access control):
    set by the authentication middleware as `req.context.environments`."""
    allowed: frozenset[str] | None = getattr(req.context, "environments", None)
    return allowed


def require_environment(req: falcon.Request, environment: str) -> None:
    allowed = allowed_environments(req)
    if allowed is not None and environment not in allowed:
        raise Problem("forbidden", f"These credentials may not read environment {environment!r}.")


def reads_history(req: falcon.Request) -> bool:
    """Whether these credentials may read history (the audit log, and who changed a flag,
    when and why): only those allowed every environment, as a change may concern any."""
    return allowed_environments(req) is None


_COUNT = re.compile(r"[0-9]{1,15}")


def param(req: falcon.Request, name: str) -> str | None:
    """A query parameter given at most once (a repeated one is a 400, not a guess)."""
    value = req.params.get(name)
    if isinstance(value, list):
        raise Problem("invalid-parameter", f"Give {name} at most once.")
    return value


def page(req: falcon.Request) -> Page:
    """`limit` (1 to MAX_LIMIT, default DEFAULT_LIMIT) and `offset` (0 or more, default 0)."""
    limit = _count(req, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem("invalid-parameter", f"limit must be between 1 and {MAX_LIMIT}.")
    return Page(limit, _count(req, "offset", 0))


def _count(req: falcon.Request, name: str, default: int) -> int:
    value = param(req, name)
    if value is None:
        return default
    if not _COUNT.fullmatch(value):
        raise Problem("invalid-parameter", f"{name} must be a whole number, not {value!r}.")
    return int(value)
