"""The skeleton end to end: a real build, served by a real gunicorn."""

from __future__ import annotations

import falcon.testing

from tests.server.conftest import Live


def test_flat_map_through_the_test_client(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get(
        "/api/v1/environments/production/flags", params={"application": "web"}
    )
    assert result.status_code == 200
    assert result.json["flags"] == {"banner": False, "new-checkout": True, "pricing-engine": True}


def test_flat_map_from_gunicorn(live: Live) -> None:
    first = live.get("/api/v1/environments/production/flags", params={"application": "ios"})
    assert first.status_code == 200
    assert first.json()["flags"] == {"banner": False, "new-checkout": False, "pricing-engine": True}
    again = live.get(
        "/api/v1/environments/production/flags",
        params={"application": "ios"},
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304
