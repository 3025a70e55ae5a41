"""`server.access` as resources see it: a key scoped to some environments reads only those
(403 for any other, existing or not), sees only their values in the flag list and detail,
and history needs a '*' key; a restricted answer is a body of its own, with its own ETag.
(The attacks on access control are in tests/security/test_access.py.)"""

from __future__ import annotations

import hashlib

import falcon
import falcon.testing
import pytest

from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing
from server.store import Store
from tests.server.helpers import request

PROBLEMS = "https://gitflags.dev/problems/"
PROBLEM_JSON = "application/problem+json"


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
        {"staging": {"variant": "off", "value": False, "source": "default"}},
        {"staging": {"variant": "on", "value": True, "source": "environment"}},
        {"staging": {"variant": "on", "value": True, "source": "default"}},
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
