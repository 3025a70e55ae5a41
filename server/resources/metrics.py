"""`GET /metrics`: Prometheus' text format (see server.metrics)."""

from __future__ import annotations

import falcon

from server import metrics
from server.access import OPEN


class Exposition:
    access = OPEN

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.cache_control = ["no-store"]
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.exposition()

    on_head = on_get
