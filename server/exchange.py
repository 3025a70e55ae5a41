"""The one middleware every request passes through (`Exchange`): the request id, the
security headers of a JSON API, and the observers (access log, metrics) told of each
answered request with its duration."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Sequence

import falcon

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
REQUEST_ID = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")  # echoed only when this tame


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
    """A random UUID (version 4) in hex, for a request that brought no tame X-Request-ID.

    Made from `random` bits, not `uuid.uuid4()`: an id needs to be unique, not secret
    (`random` is reseeded in each forked worker), and `uuid4`'s `os.urandom` releases the
    GIL, a context switch per request among a worker's threads: 4 threads doing 55 us of
    work and an id each made 13-16k ids/s with `uuid4` against 17-19k this way (1.0 against
    0.05 voluntary switches per id)."""
    return uuid.UUID(int=random.getrandbits(128), version=4).hex
