"""What every response does: ETags and 304, gzip, HEAD, 405 with Allow, problem details,
the 500 of last resort, request ids, security headers, access control and reloads."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import uuid

import falcon
import falcon.testing
import pytest

from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing
from server.errors import Problem
from server.store import Store
from tests.server.conftest import FLAGS, Built

PROBLEMS = "https://gitflags.dev/problems/"
PROBLEM_JSON = "application/problem+json"
GETS = [
    "/api/v1/snapshot",
    "/api/v1/environments/production/flags",
    "/api/v1/environments/production/flags?application=web",
    "/api/v1/flags",
    "/api/v1/flags?environment=staging&application=ios&tag=checkout",
    "/api/v1/flags/new-checkout",
    "/api/v1/flags/new-checkout/audit",
    "/api/v1/audit",
    "/api/v1/audit?actor=ada@example.com&since=2026-01-01&limit=2",
]
API_ROUTES = [
    "/api/v1/snapshot",
    "/api/v1/environments/production/flags",
    "/api/v1/flags",
    "/api/v1/flags/new-checkout",
    "/api/v1/flags/new-checkout/audit",
    "/api/v1/audit",
]
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def split(path: str) -> tuple[str, str]:
    route, _, query = path.partition("?")
    return route, query


def request(
    client: falcon.testing.TestClient, method: str, path: str, **headers: str
) -> falcon.testing.Result:
    route, query = split(path)
    return client.simulate_request(
        method,
        route,
        query_string=query,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


@pytest.mark.parametrize("path", GETS)
def test_every_get_has_a_strong_etag_and_revalidates(
    client: falcon.testing.TestClient, path: str
) -> None:
    first = request(client, "GET", path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["Vary"] == "Accept-Encoding"
    for given in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = request(client, "GET", path, If_None_Match=given)
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["ETag"] == etag
        assert "Content-Type" not in again.headers
    assert request(client, "GET", path, If_None_Match='"other"').status_code == 200
    assert request(client, "GET", path).headers["ETag"] == etag  # stable


@pytest.mark.parametrize("path", GETS)
def test_gzip_when_accepted(client: falcon.testing.TestClient, path: str) -> None:
    plain = request(client, "GET", path)
    assert "Content-Encoding" not in plain.headers
    zipped = request(client, "GET", path, Accept_Encoding="br, gzip, deflate")
    assert zipped.headers["ETag"] == plain.headers["ETag"]
    if len(plain.content) < 512:  # too small to be worth it
        assert "Content-Encoding" not in zipped.headers
        assert zipped.content == plain.content
        return
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) == len(zipped.content) < len(plain.content)
    assert gzip.decompress(zipped.content) == plain.content
    for refused in ("gzip;q=0", "identity", "br", "gzip; q=0.000, identity"):
        result = request(client, "GET", path, Accept_Encoding=refused)
        assert "Content-Encoding" not in result.headers
    for accepted in ("*", "gzip;q=0.5", "identity;q=1, *;q=0.1"):
        assert request(client, "GET", path, Accept_Encoding=accepted).content == zipped.content


def test_the_big_answers_are_compressed(client: falcon.testing.TestClient) -> None:
    for path in ("/api/v1/snapshot", "/api/v1/flags", "/api/v1/audit"):
        result = request(client, "GET", path, Accept_Encoding="gzip")
        assert result.headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("path", [*GETS, "/healthz"])  # /readyz's age changes by the call
@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_head_has_the_headers_of_get_and_no_body(
    client: falcon.testing.TestClient, path: str, encoding: str
) -> None:
    get = request(client, "GET", path, Accept_Encoding=encoding)
    head = request(client, "HEAD", path, Accept_Encoding=encoding)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    ignore = {"x-request-id"}
    assert {k: v for k, v in head.headers.items() if k not in ignore} == {
        k: v for k, v in get.headers.items() if k not in ignore
    }
    assert int(head.headers["Content-Length"]) == len(get.content)


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


def test_unknown_environment_is_404_in_the_path(client: falcon.testing.TestClient) -> None:
    result = request(client, "GET", "/api/v1/environments/qa/flags")
    assert result.status_code == 404
    assert result.json == {
        "type": PROBLEMS + "unknown-environment",
        "title": "No such environment",
        "status": 404,
        "detail": "There is no environment 'qa'.",
    }
    application = request(client, "GET", "/api/v1/environments/staging/flags?application=tv")
    assert application.status_code == 400
    assert application.json["type"] == PROBLEMS + "unknown-application"


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


def test_health_is_never_cached(client: falcon.testing.TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        assert client.simulate_get(path).headers["Cache-Control"] == "no-store"


def restricted(store: Store, environments: frozenset[str] | None) -> falcon.testing.TestClient:
    """A client presenting a key allowed `environments` (None: '*') to the real access
    control, which decides what needs '*' (the resource's declaration)."""
    ring = KeyRing([ApiKey("test", hashlib.sha256(b"test-key").digest(), environments)])
    app = create_app(store, middleware=[AccessControl(ring)])
    return falcon.testing.TestClient(app, headers={"Authorization": "Bearer test-key"})


STAGING = frozenset({"staging"})


@pytest.mark.parametrize(
    ("allowed", "path", "status"),
    [
        (STAGING, "/api/v1/environments/staging/flags", 200),
        (STAGING, "/api/v1/environments/staging/flags?application=web", 200),
        (STAGING, "/api/v1/environments/production/flags", 403),
        (STAGING, "/api/v1/environments/production/flags?application=web", 403),
        (STAGING, "/api/v1/environments/qa/flags", 403),  # outside scope, existing or not
        (STAGING, "/api/v1/flags", 200),
        (STAGING, "/api/v1/flags?environment=staging", 200),
        (STAGING, "/api/v1/flags?environment=production", 403),
        (STAGING, "/api/v1/flags?environment=qa", 403),
        (None, "/api/v1/flags?environment=qa", 400),
        (STAGING, "/api/v1/flags/new-checkout", 200),
        (STAGING, "/api/v1/flags/nope", 404),
        (STAGING, "/api/v1/snapshot", 403),
        (STAGING, "/api/v1/audit", 403),
        (STAGING, "/api/v1/flags/new-checkout/audit", 403),
        (STAGING, "/api/v1/flags/nope/audit", 403),
        (frozenset(), "/api/v1/environments/staging/flags", 403),
        (frozenset(), "/api/v1/flags", 200),
        (frozenset(), "/api/v1/snapshot", 403),
        (frozenset({"development", "staging", "production"}), "/api/v1/audit", 403),
        (None, "/api/v1/environments/production/flags", 200),
        (None, "/api/v1/snapshot", 200),
        (None, "/api/v1/audit", 200),
        (None, "/api/v1/flags/new-checkout/audit", 200),
    ],
)
def test_access_control(
    store: Store, allowed: frozenset[str] | None, path: str, status: int
) -> None:
    result = request(restricted(store, allowed), "GET", path)
    assert result.status_code == status
    if status == 403:
        assert result.headers["Content-Type"] == PROBLEM_JSON
        assert result.json["type"] == PROBLEMS + "forbidden"
        assert result.json["status"] == 403


def test_restricted_credentials_see_only_their_environments(store: Store) -> None:
    client = restricted(store, STAGING)
    listing = client.simulate_get("/api/v1/flags").json
    assert [item["values"] for item in listing["items"]] == [
        {"staging": {"value": False, "source": "default"}},
        {"staging": {"value": True, "source": "environment"}},
        {"staging": {"value": True, "source": "default"}},
    ]
    detail = client.simulate_get("/api/v1/flags/new-checkout").json
    assert list(detail["resolved"]) == ["staging"]
    assert detail["environments"] == {"staging": True}  # production's overrides are hidden
    nothing = restricted(store, frozenset()).simulate_get("/api/v1/flags/new-checkout").json
    assert (nothing["resolved"], nothing["environments"]) == ({}, {})
    everything = restricted(store, None).simulate_get("/api/v1/flags/new-checkout")
    unrestricted = falcon.testing.TestClient(create_app(store))
    assert everything.json == unrestricted.simulate_get("/api/v1/flags/new-checkout").json
    assert "production" in everything.json["resolved"]


def test_restricted_and_full_answers_have_different_etags(store: Store) -> None:
    full = restricted(store, None).simulate_get("/api/v1/flags")
    staging = restricted(store, STAGING).simulate_get("/api/v1/flags")
    assert full.headers["ETag"] != staging.headers["ETag"]
    again = restricted(store, STAGING).simulate_get(
        "/api/v1/flags", headers={"If-None-Match": full.headers["ETag"]}
    )
    assert again.status_code == 200


def test_a_reload_changes_the_answers_and_their_etags(
    client: falcon.testing.TestClient, built: Built, store: Store
) -> None:
    paths = [
        "/api/v1/snapshot",
        "/api/v1/environments/development/flags",
        "/api/v1/flags",
        "/api/v1/flags/banner",
        "/api/v1/flags/banner/audit",
        "/api/v1/audit",
    ]
    before = {path: client.simulate_get(path) for path in paths}
    banner = FLAGS["growth/banner.yaml"].replace("development: true", "development: false")
    built.commit("Hide the banner in development", {"growth/banner.yaml": banner})
    assert store.reload()
    after = {path: client.simulate_get(path) for path in paths}
    for path in paths:
        assert after[path].status_code == 200
        assert after[path].headers["ETag"] != before[path].headers["ETag"], path
        stale = client.simulate_get(path, headers={"If-None-Match": before[path].headers["ETag"]})
        assert stale.status_code == 200
    flat = after["/api/v1/environments/development/flags"].json
    assert flat["flags"]["banner"] is False
    assert flat["revision"] == built.git("rev-parse", "HEAD").strip()
    assert after["/api/v1/flags/banner"].json["resolved"]["development"]["value"] is False
    assert after["/api/v1/flags/banner"].json["updated_reason"] == "Hide the banner in development"
    assert after["/api/v1/audit"].json["items"][0]["subject"] == "Hide the banner in development"
    assert after["/api/v1/flags"].json["items"][0]["values"]["development"] == {
        "value": False,
        "source": "environment",
    }


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
