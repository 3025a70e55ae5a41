"""GET /openapi.json: a valid OpenAPI 3.1 document that names every route the app has (and
no other), and whose schemas describe what the resources really answer."""

from __future__ import annotations

import hashlib
from typing import Any

import falcon
import falcon.testing
import pytest
from openapi_spec_validator import validate

from server import openapi
from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing
from server.store import Store
from tests.server.contract import METHODS, conforms, resource_at, routes


@pytest.fixture
def document(client: falcon.testing.TestClient) -> dict[str, Any]:
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    found: dict[str, Any] = result.json
    return found


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document == openapi.spec()


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_is_documented_and_every_operation_is_routed(
    client: falcon.testing.TestClient, document: dict[str, Any]
) -> None:
    served = routes(client.app)
    assert ("/api/v1/environments/{environment}/flags", "get") in served
    assert operations(document) == served


def test_every_get_that_has_head_says_so(client: falcon.testing.TestClient) -> None:
    for template, method in routes(client.app):
        if method == "get":
            resource = resource_at(client.app, template)
            assert hasattr(resource, "on_head"), template


def test_both_credentials_and_the_etag_headers_are_described(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {**schemes["BearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["ApiKeyAuth"] == {
        **schemes["ApiKeyAuth"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    flat = document["paths"]["/api/v1/environments/{environment}/flags"]["get"]
    assert {"$ref": "#/components/parameters/IfNoneMatch"} in flat["parameters"]
    assert "ETag" in flat["responses"]["200"]["headers"]
    assert flat["responses"]["304"] == {"$ref": "#/components/responses/NotModified"}


def test_the_contract_schemas_are_lifted_with_their_references(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["SnapshotFlag"]["properties"]["key"] == {
        "$ref": "#/components/schemas/SnapshotName"
    }
    assert schemas["AuditLog"]["properties"]["commits"]["items"] == {
        "$ref": "#/components/schemas/AuditCommit"
    }
    # what the API serves: the entries the file's commits hold, one per commit and file
    assert schemas["AuditEntry"]["properties"]["author"] == {
        "description": "Who made the change: the actor.",
        "$ref": "#/components/schemas/AuditPerson",
    }
    assert "$defs" not in str(document)


# What the resources answer, against what the document says they answer ------------------

OFREP_CONTEXT = {"context": {"targetingKey": "u-1", "environment": "production"}}
EXCHANGES: list[tuple[str, str, dict[str, Any], int]] = [  # method, URL, request options, status
    ("GET", "/api/v1/environments/production/flags?application=web", {}, 200),
    ("GET", "/api/v1/environments/production/flags", {}, 200),
    ("GET", "/api/v1/environments/nowhere/flags", {}, 404),
    ("GET", "/api/v1/environments/production/flags?application=toaster", {}, 400),
    ("GET", "/api/v1/environments/production/flagd.json", {}, 200),
    ("GET", "/api/v1/environments/nowhere/flagd.json", {}, 404),
    ("GET", "/api/v1/flags", {}, 200),
    ("GET", "/api/v1/flags?environment=staging&application=ios&limit=1&offset=1", {}, 200),
    ("GET", "/api/v1/flags?limit=0", {}, 400),
    ("GET", "/api/v1/flags/new-checkout", {}, 200),
    ("GET", "/api/v1/flags/nope", {}, 404),
    ("GET", "/api/v1/flags/new-checkout/audit", {}, 200),
    ("GET", "/api/v1/flags/nope/audit", {}, 404),
    ("GET", "/api/v1/audit?limit=1", {}, 200),
    ("GET", "/api/v1/audit?since=yesterday", {}, 400),
    ("GET", "/api/v1/snapshot", {}, 200),
    ("GET", "/healthz", {}, 200),
    ("GET", "/readyz", {}, 200),
    ("POST", "/ofrep/v1/evaluate/flags/banner", OFREP_CONTEXT, 200),
    ("POST", "/ofrep/v1/evaluate/flags/nope", OFREP_CONTEXT, 404),
    ("POST", "/ofrep/v1/evaluate/flags/banner", {"body": "{"}, 400),
    ("POST", "/ofrep/v1/evaluate/flags", OFREP_CONTEXT, 200),
    ("POST", "/ofrep/v1/evaluate/flags", {"json": {"context": {}}}, 400),
]


@pytest.mark.parametrize(("method", "url", "options", "status"), EXCHANGES)
def test_answers_match_the_document(
    client: falcon.testing.TestClient,
    document: dict[str, Any],
    method: str,
    url: str,
    options: dict[str, Any],
    status: int,
) -> None:
    conforms(client, document, method, url, options, status)


SECRET = "s3cret-for-production"
PRODUCTION = {"headers": {"Authorization": f"Bearer {SECRET}"}}
OFREP_STAGING = {
    "json": {"context": {"environment": "staging"}},
    "headers": {"X-API-Key": SECRET},
}
REFUSALS: list[tuple[str, str, dict[str, Any], int]] = [  # with a key for production only
    ("GET", "/api/v1/flags", {}, 401),
    ("GET", "/api/v1/flags/new-checkout", {"headers": {"Authorization": "Basic eDp5"}}, 401),
    ("POST", "/ofrep/v1/evaluate/flags/banner", OFREP_CONTEXT, 401),
    ("POST", "/ofrep/v1/evaluate/flags", OFREP_CONTEXT, 401),
    ("GET", "/api/v1/environments/staging/flags", PRODUCTION, 403),
    ("GET", "/api/v1/flags?environment=staging", PRODUCTION, 403),
    ("GET", "/api/v1/environments/staging/flagd.json", PRODUCTION, 403),
    ("GET", "/api/v1/snapshot", PRODUCTION, 403),
    ("GET", "/api/v1/audit", PRODUCTION, 403),
    ("GET", "/api/v1/flags/banner/audit", PRODUCTION, 403),
    ("GET", "/api/v1/flags/banner", PRODUCTION, 200),
    ("POST", "/ofrep/v1/evaluate/flags/banner", OFREP_STAGING, 403),
    ("POST", "/ofrep/v1/evaluate/flags", OFREP_STAGING, 403),
    ("POST", "/ofrep/v1/evaluate/flags/banner", {**PRODUCTION, "body": " " * 70_000}, 413),
    ("POST", "/ofrep/v1/evaluate/flags", {**PRODUCTION, "body": " " * 70_000}, 413),
    ("GET", "/openapi.json", {}, 200),
    ("GET", "/healthz", {}, 200),
]


@pytest.mark.parametrize(("method", "url", "options", "status"), REFUSALS)
def test_refusals_match_the_document(
    store: Store,
    document: dict[str, Any],
    method: str,
    url: str,
    options: dict[str, Any],
    status: int,
) -> None:
    key = ApiKey("production", hashlib.sha256(SECRET.encode()).digest(), frozenset(["production"]))
    app = create_app(store, middleware=[AccessControl(KeyRing([key]))])
    conforms(falcon.testing.TestClient(app), document, method, url, options, status)
