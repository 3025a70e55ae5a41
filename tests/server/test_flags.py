"""`/api/v1/flags` and `/api/v1/flags/{key}` over the real store of the fixture build."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest

from core.rows import expanded
from tests.server.conftest import Built

PROBLEMS = "https://gitflags.dev/problems/"
ADA = "Ada Lovelace"
DATE = "2026-01-02T03:04:05+01:00"
FIRST = "Add the pricing engine and the banner"
SECOND = "Launch the new checkout on web in production\n\nApproved in CHG-1234."


def on(source: str) -> dict[str, Any]:
    return {"variant": "on", "value": True, "source": source}


def off(source: str) -> dict[str, Any]:
    return {"variant": "off", "value": False, "source": source}


def item(key: str, **values: dict[str, Any]) -> dict[str, Any]:
    declared = {
        "banner": ("Free shipping banner", "team-growth", [], "growth/banner.yaml", FIRST),
        "new-checkout": (
            "Single-page checkout", "team-checkout", ["checkout", "q3"],
            "checkout/new-checkout.yaml", SECOND,
        ),
        "pricing-engine": (
            "New pricing engine", "team-pricing", ["platform"], "platform/pricing-engine.yaml",
            FIRST,
        ),
    }[key]  # fmt: skip
    description, owner, tags, file, reason = declared
    return {
        "key": key,
        "description": description,
        "owner": owner,
        "tags": tags,
        "expires": None,
        "file": file,
        "created_at": DATE,
        "created_by": ADA,
        "updated_at": DATE,
        "updated_by": ADA,
        "updated_reason": reason,
        "values": values,
    }


def listing(built: Built, items: list[dict[str, Any]], **envelope: Any) -> dict[str, Any]:
    return {
        "revision": built.git("rev-parse", "HEAD").strip(),
        "environment": None,
        "application": None,
        "total": len(items),
        "limit": 100,
        "offset": 0,
        "items": items,
        **envelope,
    }


def get(client: falcon.testing.TestClient, path: str, **params: str) -> falcon.testing.Result:
    return client.simulate_get(path, params=params)


def test_the_list_shows_every_environment_value_sorted_by_key(
    client: falcon.testing.TestClient, built: Built
) -> None:
    result = get(client, "/api/v1/flags")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    assert result.json == listing(
        built,
        [
            item(
                "banner",
                development=on("environment"),
                staging=off("default"),
                production=off("default"),
            ),
            item(
                "new-checkout",
                development=off("default"),
                staging=on("environment"),
                production=off("environment"),
            ),
            item(
                "pricing-engine",
                development=on("default"),
                staging=on("default"),
                production=on("default"),
            ),
        ],
    )


def test_environment_and_application_choose_the_values(
    client: falcon.testing.TestClient, built: Built
) -> None:
    result = get(client, "/api/v1/flags", environment="production", application="web")
    assert result.json == listing(
        built,
        [
            item("banner", production=off("default")),
            item("new-checkout", production=on("environment-application")),
            item("pricing-engine", production=on("default")),
        ],
        environment="production",
        application="web",
    )


def test_an_application_alone_shows_it_in_every_environment(
    client: falcon.testing.TestClient,
) -> None:
    result = get(client, "/api/v1/flags", application="ios", tag="checkout")
    assert result.json["items"][0]["values"] == {
        "development": on("application"),
        "staging": on("environment"),
        "production": off("environment"),
    }
    assert result.json["application"] == "ios"


def test_an_environment_alone_shows_its_own_value(client: falcon.testing.TestClient) -> None:
    result = get(client, "/api/v1/flags", environment="staging")
    assert [flag["values"] for flag in result.json["items"]] == [
        {"staging": off("default")},
        {"staging": on("environment")},
        {"staging": on("default")},
    ]


@pytest.mark.parametrize(
    ("params", "keys"),
    [
        ({"tag": "checkout"}, ["new-checkout"]),
        ({"tag": "q3"}, ["new-checkout"]),
        ({"tag": "platform"}, ["pricing-engine"]),
        ({"tag": "nothing-has-it"}, []),
        ({"tag": ""}, []),
        ({"owner": "team-growth"}, ["banner"]),
        ({"owner": "TEAM-GROWTH"}, []),
        ({"owner": "team-growth", "tag": "platform"}, []),
        ({"owner": "team-pricing", "tag": "platform"}, ["pricing-engine"]),
    ],
)
def test_tag_and_owner_filter_the_list(
    client: falcon.testing.TestClient, params: dict[str, str], keys: list[str]
) -> None:
    result = get(client, "/api/v1/flags", **params)
    assert result.status_code == 200
    assert [flag["key"] for flag in result.json["items"]] == keys
    assert result.json["total"] == len(keys)


@pytest.mark.parametrize(
    ("limit", "offset", "keys"),
    [
        ("1", "0", ["banner"]),
        ("1", "1", ["new-checkout"]),
        ("2", "1", ["new-checkout", "pricing-engine"]),
        ("1", "2", ["pricing-engine"]),
        ("1", "3", []),
        ("1000", "0", ["banner", "new-checkout", "pricing-engine"]),
        ("5", "1000000", []),
        ("100", "00", ["banner", "new-checkout", "pricing-engine"]),
    ],
)
def test_pagination(
    client: falcon.testing.TestClient, limit: str, offset: str, keys: list[str]
) -> None:
    result = get(client, "/api/v1/flags", limit=limit, offset=offset)
    assert result.status_code == 200
    assert [flag["key"] for flag in result.json["items"]] == keys
    assert (result.json["total"], result.json["limit"]) == (3, int(limit))
    assert result.json["offset"] == int(offset)


def test_unknown_environment_or_application_in_the_query_is_400(
    client: falcon.testing.TestClient,
) -> None:
    environment = get(client, "/api/v1/flags", environment="qa")
    assert environment.status_code == 400
    assert environment.json == {
        "type": PROBLEMS + "unknown-environment",
        "title": "No such environment",
        "status": 400,
        "detail": "There is no environment 'qa'.",
    }
    application = get(client, "/api/v1/flags", application="tv")
    assert application.status_code == 400
    assert application.json == {
        "type": PROBLEMS + "unknown-application",
        "title": "No such application",
        "status": 400,
        "detail": "There is no application 'tv'.",
    }


def test_one_flag_in_full(client: falcon.testing.TestClient) -> None:
    result = get(client, "/api/v1/flags/new-checkout")
    assert result.status_code == 200
    assert result.json == {
        "key": "new-checkout",
        "file": "checkout/new-checkout.yaml",
        "description": "Single-page checkout",
        "owner": "team-checkout",
        "tags": ["checkout", "q3"],
        "expires": None,
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "default": "off",
        "off": "off",
        "enabled": False,
        "rules": [],
        "applications": {"ios": True},
        "environments": {
            "staging": True, "production": {"enabled": False, "applications": {"web": True}}
        },
        "depends_on": ["pricing-engine"],
        "dependents": [],
        "resolved": {
            "development": {
                **off("default"),
                "rules": [],
                "applications": {
                    "web": off("default"), "ios": on("application"), "android": off("default")
                },
            },
            "staging": {
                **on("environment"),
                "rules": [],
                "applications": {
                    "web": on("environment"), "ios": on("environment"), "android": on("environment")
                },
            },
            "production": {
                **off("environment"),
                "rules": [],
                "applications": {
                    "web": on("environment-application"),
                    "ios": off("environment"),
                    "android": off("environment"),
                },
            },
        },
        "created_at": DATE,
        "created_by": ADA,
        "updated_at": DATE,
        "updated_by": ADA,
        "updated_reason": SECOND,
    }  # fmt: skip


def test_a_flag_is_as_the_snapshot_has_it(client: falcon.testing.TestClient, built: Built) -> None:
    # snapshot.json lists the applications whose cell is not the environment's; a flag's
    # answer lists every application (core.rows.expanded).
    snapshot = expanded(client.simulate_get("/api/v1/snapshot").json)
    for key in snapshot["flags"]:
        assert get(client, f"/api/v1/flags/{key}").json == snapshot["flags"][key]
    assert get(client, "/api/v1/flags/pricing-engine").json["dependents"] == ["new-checkout"]


def test_an_unknown_flag_is_404(client: falcon.testing.TestClient) -> None:
    result = get(client, "/api/v1/flags/no-such-flag")
    assert result.status_code == 404
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json == {
        "type": PROBLEMS + "unknown-flag",
        "title": "No such flag",
        "status": 404,
        "detail": "There is no flag 'no-such-flag'.",
    }
