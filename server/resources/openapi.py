"""`GET /openapi.json`: the OpenAPI document, built once and sent as precomputed bytes."""

from __future__ import annotations

import falcon

from core.bodies import Body, json_body
from server import openapi
from server.access import OPEN
from server.send import send


class Spec:
    """The OpenAPI document, one body made when the app is."""

    access = OPEN

    def __init__(self) -> None:
        self._body: Body = json_body(openapi.spec())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, self._body)

    on_head = on_get
