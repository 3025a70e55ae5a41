"""Sending precomputed bodies: ETag and If-None-Match, gzip when accepted, HEAD."""

from __future__ import annotations

import falcon

from server.responses import Body

CACHE_CONTROL = "no-cache"  # clients may keep a copy, but revalidate it (cheap: a 304)


def send(req: falcon.Request, resp: falcon.Response, body: Body) -> None:
    """Answer with `body`, or 304 when the client already has it."""
    resp.etag = body.etag
    resp.cache_control = [CACHE_CONTROL]
    resp.vary = ["Accept-Encoding"]
    if body.etag in _tags(req.get_header("If-None-Match")):
        resp.status = falcon.HTTP_304
        resp.content_type = None  # a 304 carries no content, nor its type
        return
    resp.content_type = body.content_type
    if body.gzipped is not None and "gzip" in (req.get_header("Accept-Encoding") or ""):
        resp.set_header("Content-Encoding", "gzip")
        resp.data = body.gzipped
    else:
        resp.data = body.data


def _tags(header: str | None) -> list[str]:
    if not header:
        return []
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]


class RespondMiddleware:
    """Headers every response carries."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
