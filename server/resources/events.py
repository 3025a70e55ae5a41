"""`GET /ofrep/v1/events`: an environment's OFREP event stream (server.streams).

The stream is named by the token of a bulk answer's `eventStreams` URL (which carries the
environment and application), or, with the key in a header (or no API keys at all), by
`?environment=` and `?application=` as an OFREP context names them. `since` (in the URL a
bulk answer gives) or `Last-Event-ID` (sent by a reconnecting EventSource) is the tag the
client already has: when the environment is tagged otherwise now, the event comes at once.
"""

from __future__ import annotations

from typing import Final

import falcon

from server.access import STREAM, allowed_environments
from server.params import param
from server.resources.ofrep import (
    INVALID_CONTEXT,
    OfrepError,
    check_application,
    choose_environment,
)
from server.streams import HOLD, OPENING, Held, Hub

EVENT_STREAM: Final = "text/event-stream"


class Events:
    """The stream: its first bytes now, then the server keeps it (`HOLD`)."""

    access = STREAM

    def __init__(self, hub: Hub, default_environment: str | None, keepalive: float) -> None:
        self._hub = hub
        self._default = default_environment
        self._keepalive = keepalive

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The stream's headers, checked as GET's, and nothing kept open."""
        self._answer(req, resp)
        resp.stream = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        held = self._answer(req, resp)
        hold = req.env.get(HOLD)
        if hold is not None:
            hold(held)

    def _answer(self, req: falcon.Request, resp: falcon.Response) -> Held:
        """The stream's headers and first bytes, and what the server is to keep open."""
        snapshot = self._hub.store.current
        since = param(req, "since")  # every parameter read (each given once) before any check
        grant = getattr(req.context, "grant", None)
        if grant is not None:
            environment, application = grant.environment, grant.application
        else:
            environment = param(req, "environment")
            application = param(req, "application")
        scope = allowed_environments(req)
        environment = choose_environment(environment, scope, self._default, snapshot, None)
        check_application(snapshot, application, None)
        news = self._hub.news(environment)
        if news is None:  # a build without this environment swapped in just now
            raise OfrepError(falcon.HTTP_400, INVALID_CONTEXT, "the environment is gone")
        tag, told = news
        seen = req.get_header("Last-Event-ID") or since
        first = OPENING
        if seen is not None and seen != tag:
            first += told
            seen = tag
        resp.content_type = EVENT_STREAM
        resp.cache_control = ["no-store"]
        resp.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
        # A stream, not data: no Content-Length, so gunicorn frames it in chunks and the
        # worker goes on writing them.
        resp.stream = [first]
        return Held(environment, seen, self._hub, self._keepalive)
