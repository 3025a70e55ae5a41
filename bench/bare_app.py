"""The floor Python sets: a bare Falcon app that answers every GET with the same precomputed
bytes flagserve sends for one URL, with no middleware, no store and no lookup.

    BARE_BODY=/path/to/body.json gunicorn -c python:server.gunicorn_conf bench.bare_app:app

bench/serve_bench.py runs it under exactly flagserve's gunicorn settings, so the ratio
between the two is what flagserve's own code costs per request.
"""

from __future__ import annotations

import os
from pathlib import Path

import falcon

from core.bodies import body
from server.exchange import REQUEST_ID, SECURITY_HEADERS
from server.send import CACHE_CONTROL

BODY = (
    Path(os.environ.get("BARE_BODY", "")).read_bytes() if os.environ.get("BARE_BODY") else b"{}\n"
)
ETAG = body(BODY).etag
# The other headers of flagserve's answer, with fixed values: the same response on the wire.
HEADERS = (
    ("Cache-Control", CACHE_CONTROL),
    ("Vary", "Accept-Encoding"),
    (REQUEST_ID, "0" * 32),
    *SECURITY_HEADERS,
)


class Bytes:
    """Any path, any query: the body, with the headers flagserve would set on it."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        resp.etag = ETAG
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY
        resp.set_headers(HEADERS)


def create_app() -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App()
    app.add_sink(Bytes(), "/")
    return app


app = create_app()
