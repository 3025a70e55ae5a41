"""`server.resources.health`: liveness and readiness are never cached, and HEAD answers as
GET does, without the body."""

from __future__ import annotations

import falcon.testing

from tests.server.helpers import request


def test_health_is_never_cached(client: falcon.testing.TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        assert client.simulate_get(path).headers["Cache-Control"] == "no-store"


def test_head_of_liveness_has_the_headers_of_get(client: falcon.testing.TestClient) -> None:
    """(/readyz's headers hold the build's age, which changes by the call.)"""
    get = request(client, "GET", "/healthz")
    head = request(client, "HEAD", "/healthz")
    assert (head.status_code, head.content) == (200, b"")
    ignore = {"x-request-id"}
    assert {k: v for k, v in head.headers.items() if k not in ignore} == {
        k: v for k, v in get.headers.items() if k not in ignore
    }
    assert int(head.headers["Content-Length"]) == len(get.content)


def test_readiness_of_a_build_without_steps_names_no_moment(
    client: falcon.testing.TestClient,
) -> None:
    """(For one with steps: tests/server/test_schedule_serving.py.)"""
    ready = client.simulate_get("/readyz").json
    assert (ready["moment"], ready["next_step"]) == (None, None)
