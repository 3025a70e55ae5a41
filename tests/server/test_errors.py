"""`server.errors`: every refusal is a problem+json (405 with Allow, 404, 400, 503, an
error raised by middleware with its headers, Falcon's own errors), OFREP's keep their own
shape, and the 500 of last resort is logged, never a traceback."""

from __future__ import annotations

import logging

import falcon
import falcon.testing
import pytest

from server.app import create_app
from server.errors import Problem
from server.store import Store
from tests.server.conftest import Built
from tests.server.helpers import request

PROBLEMS = "https://gitflags.dev/problems/"
PROBLEM_JSON = "application/problem+json"
API_ROUTES = [
    "/api/v1/snapshot",
    "/api/v1/environments/production/flags",
    "/api/v1/flags",
    "/api/v1/flags/new-checkout",
    "/api/v1/flags/new-checkout/audit",
    "/api/v1/audit",
]


@pytest.mark.parametrize("path", API_ROUTES)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_405_with_allow(
    client: falcon.testing.TestClient, path: str, method: str
) -> None:
    result = request(client, method, path)
    assert result.status_code == 405
    assert result.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert result.headers["Content-Type"] == PROBLEM_JSON
    assert result.json == {
        "type": PROBLEMS + "method-not-allowed",
        "title": "The resource is read-only",
        "status": 405,
        "detail": f"{method} is not allowed on {path}: this API is read-only.",
    }


# (/ is the dashboard's overview page)
@pytest.mark.parametrize("path", ["/api", "/api/v1", "/api/v1/nothing", "/api/v2/flags"])
def test_unknown_routes_are_404_problems(client: falcon.testing.TestClient, path: str) -> None:
    for method in ("GET", "POST"):
        result = request(client, method, path)
        assert result.status_code == 404
        assert result.headers["Content-Type"] == PROBLEM_JSON
        assert result.headers["Cache-Control"] == "no-store"
        assert result.json == {
            "type": PROBLEMS + "not-found",
            "title": "No such resource",
            "status": 404,
            "detail": f"There is nothing at {path}.",
        }


class Boom:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("secret: the database password is hunter2")


def test_an_unexpected_exception_is_a_logged_500_without_traceback(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(store)
    app.add_route("/api/v1/boom", Boom())
    client = falcon.testing.TestClient(app)
    with caplog.at_level(logging.ERROR, logger="flagserve"):
        result = client.simulate_get("/api/v1/boom", headers={"X-Request-ID": "req-42"})
    assert result.status_code == 500
    assert result.headers["Content-Type"] == PROBLEM_JSON
    assert result.headers["X-Request-ID"] == "req-42"
    assert result.json == {
        "type": PROBLEMS + "internal-error",
        "title": "Internal server error",
        "status": 500,
        "detail": "The server failed to answer; the error is logged.",
    }
    assert b"hunter2" not in result.content
    assert b"Traceback" not in result.content
    assert b"RuntimeError" not in result.content
    record = next(record for record in caplog.records if "GET /api/v1/boom" in record.getMessage())
    assert "req-42" in record.getMessage()
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


def test_no_snapshot_is_503(built: Built) -> None:
    client = falcon.testing.TestClient(create_app(Store(built.out)))  # never started
    result = client.simulate_get("/api/v1/flags")
    assert result.status_code == 503
    assert result.json["type"] == PROBLEMS + "unavailable"


def test_ofrep_errors_keep_their_own_shape(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/ofrep/v1/evaluate/flags")
    assert result.status_code == 405
    assert result.headers["Content-Type"] != PROBLEM_JSON
    assert "type" not in result.json


class Locked:
    """Middleware raising a Problem with headers, as authentication does."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise Problem("unauthorized", "No key.", headers={"WWW-Authenticate": "Bearer"})


def test_a_problem_from_middleware_keeps_its_headers(store: Store) -> None:
    client = falcon.testing.TestClient(create_app(store, middleware=[Locked()]))
    result = client.simulate_get("/api/v1/flags", headers={"X-Request-ID": "r1"})
    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"] == "Bearer"
    assert result.headers["X-Request-ID"] == "r1"
    assert result.headers["Content-Type"] == PROBLEM_JSON
    assert result.json == {
        "type": PROBLEMS + "unauthorized",
        "title": "Authentication is required",
        "status": 401,
        "detail": "No key.",
    }


def test_falcon_errors_without_a_kind_are_about_blank(store: Store) -> None:
    class Teapot:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            raise falcon.HTTPError(falcon.HTTP_418)

    app = create_app(store)
    app.add_route("/api/v1/teapot", Teapot())
    result = falcon.testing.TestClient(app).simulate_get("/api/v1/teapot")
    assert result.status_code == 418
    assert result.headers["Content-Type"] == PROBLEM_JSON
    assert result.json == {
        "type": "about:blank",
        "title": "I'm a teapot",
        "status": 418,
        "detail": "I'm a teapot",
    }
