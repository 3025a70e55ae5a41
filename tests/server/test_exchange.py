"""`server.exchange.Exchange`, the middleware every request passes through: the request id
(the client's when tame, a new UUID otherwise) and the security headers of a JSON API on
every answer, 304s and refusals included. (Its observers are tested by what they feed:
tests/server/test_logs.py and test_metrics.py.)"""

from __future__ import annotations

import uuid

import falcon.testing
import pytest

from tests.server.helpers import request

SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def test_a_request_id_is_echoed(client: falcon.testing.TestClient) -> None:
    for path in ("/api/v1/flags", "/nothing", "/healthz"):
        given = "4f6c2a-web-7"
        assert request(client, "GET", path, X_Request_ID=given).headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", [None, "", "a" * 129, "bad id", "x\u00e9", "<script>"])
def test_a_request_id_is_made_when_missing_or_unusable(
    client: falcon.testing.TestClient, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    made = client.simulate_get("/api/v1/flags", headers=headers).headers["X-Request-ID"]
    assert uuid.UUID(hex=made).version == 4
    assert uuid.UUID(hex=made).hex == made
    other = client.simulate_get("/api/v1/flags", headers=headers).headers["X-Request-ID"]
    assert other != made


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/flags", 200),
        ("GET", "/api/v1/flags/nope", 404),
        ("GET", "/nothing", 404),
        ("DELETE", "/api/v1/flags", 405),
        ("GET", "/api/v1/flags?limit=0", 400),
        ("GET", "/healthz", 200),
        ("HEAD", "/readyz", 200),
        ("OPTIONS", "/api/v1/flags", 200),
    ],
)
def test_security_headers_on_every_response(
    client: falcon.testing.TestClient, method: str, path: str, status: int
) -> None:
    result = request(client, method, path)
    assert result.status_code == status
    for name, value in SECURITY.items():
        assert result.headers[name] == value
    assert result.headers["X-Request-ID"]


def test_security_headers_on_304(client: falcon.testing.TestClient) -> None:
    etag = client.simulate_get("/api/v1/flags").headers["ETag"]
    result = client.simulate_get("/api/v1/flags", headers={"If-None-Match": etag})
    assert result.status_code == 304
    for name, value in SECURITY.items():
        assert result.headers[name] == value
