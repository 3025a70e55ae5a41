"""Sending a precomputed body (`core.bodies.Body`: bytes, ETag and gzip made once per
snapshot, never per request).

The rules, the same on every route that sends one:
- the answer carries the body's ETag, `Cache-Control: no-cache` (a client may keep a copy
  but revalidates it) and `Vary: Accept-Encoding`;
- an If-None-Match naming that ETag (strong or weak, in a list, or `*`) is a 304 with no
  content and no content type;
- the gzipped bytes are sent when Accept-Encoding accepts gzip (named or `*`, without q=0)
  and the body has them (small bodies are not worth compressing);
- HEAD is answered by Falcon from the same GET responder: the same headers, no content.
"""

from __future__ import annotations

import re

import falcon

from core.bodies import Body

CACHE_CONTROL = "no-cache"  # clients may keep a copy, but revalidate it (cheap: a 304)


def send(
    req: falcon.Request, resp: falcon.Response, body: Body, *, revalidate: bool = True
) -> None:
    """Answer with `body`, or 304 when the client already has it (and `revalidate`: not
    when it was told something changed)."""
    resp.etag = body.etag
    resp.cache_control = [CACHE_CONTROL]
    resp.vary = ["Accept-Encoding"]
    if revalidate and _matches(req.get_header("If-None-Match"), body.etag):
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
    """Whether If-None-Match names `etag` (weak or strong: a GET compares weakly) or is `*`."""
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
