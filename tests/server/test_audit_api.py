"""`/api/v1/audit` and `/api/v1/flags/{key}/audit` over real builds of real repositories."""

from __future__ import annotations

import json
from typing import Any

import falcon.testing
import pytest

from core import audit_format
from server.app import create_app
from server.store import Store
from tests.conftest import write_tree
from tests.server.conftest import FLAGS, Built

PROBLEMS = "https://gitflags.dev/problems/"
GRACE = {
    "GIT_AUTHOR_NAME": "Grace Hopper",
    "GIT_AUTHOR_EMAIL": "grace@example.com",
    "GIT_AUTHOR_DATE": "2026-03-01T10:00:00-05:00",
    "GIT_COMMITTER_DATE": "2026-03-01T10:00:00-05:00",
}
BANNER_ON_IN_STAGING = FLAGS["growth/banner.yaml"] + "  staging: true\n"


def audit_entries(built: Built) -> list[dict[str, Any]]:
    document = json.loads((built.out / "audit.json").read_text())
    entries: list[dict[str, Any]] = audit_format.expand(document)["entries"]
    return entries


def head(built: Built) -> str:
    return built.git("rev-parse", "HEAD").strip()


@pytest.fixture
def later(built: Built, store: Store) -> Built:
    """The fixture build, then Grace turns the banner on in staging two months later."""
    write_tree(built.flags, {"growth/banner.yaml": BANNER_ON_IN_STAGING})
    built.git("add", "--all")
    built.git("commit", "--quiet", "--message", "Show the banner in staging", env=GRACE)
    built.build()
    assert store.reload()
    return built


def keys(result: falcon.testing.Result) -> list[str | None]:
    return [entry["flag"] for entry in result.json["items"]]


def test_the_whole_log_is_audit_json_newest_first(
    client: falcon.testing.TestClient, built: Built
) -> None:
    result = client.simulate_get("/api/v1/audit")
    assert result.status_code == 200
    assert result.json == {
        "revision": head(built),
        "complete": True,
        "total": 4,
        "limit": 100,
        "offset": 0,
        "items": audit_entries(built),
    }
    assert keys(result) == ["new-checkout", "pricing-engine", "banner", None]
    first = result.json["items"][0]
    assert (first["commit"], first["change"], first["subject"]) == (
        head(built),
        "created",
        "Launch the new checkout on web in production",
    )
    assert first["reason"] == (
        "Launch the new checkout on web in production\n\nApproved in CHG-1234."
    )
    assert {"cell": "production/web", "from": None, "to": True} in first["values"]


def test_one_flags_log(client: falcon.testing.TestClient, built: Built) -> None:
    result = client.simulate_get("/api/v1/flags/new-checkout/audit")
    assert result.status_code == 200
    assert result.json == {
        "revision": head(built),
        "complete": True,
        "total": 1,
        "limit": 100,
        "offset": 0,
        "items": [audit_entries(built)[0]],
    }


def test_a_later_change_comes_first(client: falcon.testing.TestClient, later: Built) -> None:
    result = client.simulate_get("/api/v1/flags/banner/audit")
    assert [entry["subject"] for entry in result.json["items"]] == [
        "Show the banner in staging",
        "Add the pricing engine and the banner",
    ]
    newest = result.json["items"][0]
    assert newest["author"] == {"name": "Grace Hopper", "email": "grace@example.com"}
    assert newest["timestamp"] == "2026-03-01T10:00:00-05:00"
    assert newest["fields"] == [{"field": "environments.staging", "from": None, "to": True}]
    assert keys(client.simulate_get("/api/v1/audit")) == [
        "banner", "new-checkout", "pricing-engine", "banner", None,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2026-03-01", ["banner"]),
        ("2026-03-01T15:00:00Z", ["banner"]),  # inclusive: that is 10:00 at -05:00
        ("2026-03-01T10:00:00-05:00", ["banner"]),
        ("2026-03-01T15:00:00", ["banner"]),  # no offset: UTC
        ("2026-03-01T15:00:01+00:00", []),
        ("2026-03-02", []),
        ("2026-01-02T02:04:05Z", ["banner", "new-checkout", "pricing-engine", "banner", None]),
        ("2026-01-02T02:04:06Z", ["banner"]),
        ("2026-01-02", ["banner", "new-checkout", "pricing-engine", "banner", None]),
        ("1970-01-01", ["banner", "new-checkout", "pricing-engine", "banner", None]),
    ],
)
def test_since(
    client: falcon.testing.TestClient, later: Built, since: str, expected: list[str | None]
) -> None:
    result = client.simulate_get("/api/v1/audit", params={"since": since})
    assert result.status_code == 200
    assert keys(result) == expected
    assert result.json["total"] == len(expected)


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "2026-02-30", "", "2026-01-02T25:00"])
def test_a_bad_since_is_400(client: falcon.testing.TestClient, since: str) -> None:
    for path in ("/api/v1/audit", "/api/v1/flags/banner/audit"):
        result = client.simulate_get(path, params={"since": since})
        assert result.status_code == 400
        assert result.headers["Content-Type"] == "application/problem+json"
        assert result.json["type"] == PROBLEMS + "invalid-parameter"
        assert "ISO 8601" in result.json["detail"]


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("Grace Hopper", ["banner"]),
        ("grace hopper", ["banner"]),
        ("GRACE@EXAMPLE.COM", ["banner"]),
        ("ada@example.com", ["new-checkout", "pricing-engine", "banner", None]),
        ("ADA LOVELACE", ["new-checkout", "pricing-engine", "banner", None]),
        ("grace", []),
        ("nobody@example.com", []),
    ],
)
def test_actor(
    client: falcon.testing.TestClient, later: Built, actor: str, expected: list[str | None]
) -> None:
    result = client.simulate_get("/api/v1/audit", params={"actor": actor})
    assert keys(result) == expected
    assert result.json["total"] == len(expected)


def test_filters_combine(client: falcon.testing.TestClient, later: Built) -> None:
    def subjects(**params: str) -> list[str]:
        result = client.simulate_get("/api/v1/audit", params=params)
        return [entry["subject"] for entry in result.json["items"]]

    assert subjects(flag="banner") == [
        "Show the banner in staging",
        "Add the pricing engine and the banner",
    ]
    assert subjects(flag="banner", actor="ada lovelace") == [
        "Add the pricing engine and the banner"
    ]
    assert subjects(flag="banner", since="2026-02-01") == ["Show the banner in staging"]
    assert subjects(flag="new-checkout", since="2026-02-01") == []
    assert subjects(flag="no-such-flag") == []
    banner = client.simulate_get(
        "/api/v1/flags/banner/audit", params={"actor": "grace@example.com"}
    )
    assert [entry["subject"] for entry in banner.json["items"]] == ["Show the banner in staging"]


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        ("2", "0", ["banner", "new-checkout"]),
        ("2", "2", ["pricing-engine", "banner"]),
        ("2", "4", [None]),
        ("2", "5", []),
        ("1000", "0", ["banner", "new-checkout", "pricing-engine", "banner", None]),
        ("1", "99999", []),
    ],
)
def test_audit_pagination(
    client: falcon.testing.TestClient,
    later: Built,
    limit: str,
    offset: str,
    expected: list[str | None],
) -> None:
    result = client.simulate_get("/api/v1/audit", params={"limit": limit, "offset": offset})
    assert keys(result) == expected
    assert (result.json["total"], result.json["limit"], result.json["offset"]) == (
        5,
        int(limit),
        int(offset),
    )


def test_an_unknown_flags_log_is_404(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/api/v1/flags/no-such-flag/audit")
    assert result.status_code == 404
    assert result.json["type"] == PROBLEMS + "unknown-flag"


def test_a_deleted_flag_keeps_its_log(
    client: falcon.testing.TestClient, built: Built, store: Store
) -> None:
    built.commit("Retire the banner: the campaign is over", {"growth/banner.yaml": None})
    assert store.reload()
    assert client.simulate_get("/api/v1/flags/banner").status_code == 404
    result = client.simulate_get("/api/v1/flags/banner/audit")
    assert result.status_code == 200
    assert [(entry["change"], entry["subject"]) for entry in result.json["items"]] == [
        ("deleted", "Retire the banner: the campaign is over"),
        ("created", "Add the pricing engine and the banner"),
    ]


def test_without_audit_json_the_log_is_empty(built: Built) -> None:
    plain = built.out.parent / "plain"  # a build made by hand: a folder of plain files
    plain.mkdir()
    (plain / "snapshot.json").write_bytes((built.out / "snapshot.json").read_bytes())
    store = Store(plain)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    for path in ("/api/v1/audit", "/api/v1/flags/banner/audit"):
        result = client.simulate_get(path, params={"since": "2026-01-01", "actor": "ada"})
        assert result.status_code == 200
        assert result.json == {
            "revision": head(built),
            "complete": False,
            "total": 0,
            "limit": 100,
            "offset": 0,
            "items": [],
        }
