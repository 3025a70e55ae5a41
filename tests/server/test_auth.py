"""Access control: the keys file and its checks, and who gets 401, 403 or an answer under
/api and /ofrep (through the Falcon test client over a real store; test_cli and test_live
cover it in real gunicorn processes)."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from server.app import create_app
from server.auth import AccessControl, KeyFileError, KeyRing, digest, load_keys
from server.errors import PROBLEM_JSON
from server.store import Store
from tests.server.helpers import SECRET, STAGING_SECRET, keys_file

FLAT = "/api/v1/environments/{}/flags"
OFREP = "/ofrep/v1/evaluate/flags/banner"
OPS = {"Authorization": f"Bearer {SECRET}"}
STAGING = {"Authorization": f"Bearer {STAGING_SECRET}"}


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return load_keys(keys_file(tmp_path / "keys.yaml"))


@pytest.fixture
def guarded(store: Store, ring: KeyRing) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(store, middleware=[AccessControl(ring)]))


def test_the_keys_file_is_read_into_digests_and_environments(ring: KeyRing) -> None:
    assert len(ring) == 2
    ops, staging = ring.find(SECRET), ring.find(STAGING_SECRET)
    assert ops is not None
    assert (ops.name, ops.environments) == ("ops", None)
    assert staging is not None
    assert (staging.name, staging.environments) == ("staging", frozenset({"staging"}))
    assert staging.digest.hex() == digest(STAGING_SECRET.encode())
    assert ring.find("not-a-key") is None
    assert ring.find(digest(SECRET.encode())) is None  # the digest is not the key


GOOD = "a" * 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must be a non-empty list of keys"),
        ("name: ops\n", "must be a non-empty list of keys"),
        ("[]\n", "must be a non-empty list of keys"),
        ("- [ops]\n", "key 1: must be a mapping with name, sha256 and environments"),
        (f"- {{name: ops, sha256: {GOOD}}}\n", "key 1 (ops): lacks environments"),
        (
            f"- {{name: ops, sha256: {GOOD}, environments: ['*'], key: x}}\n",
            "key 1 (ops): has unknown fields key",
        ),
        ("- {name: ops, sha256: abc, environments: ['*']}\n", "sha256 must be 64 lowercase"),
        (f"- {{name: ops, sha256: {'A' * 64}, environments: ['*']}}\n", "sha256 must be 64"),
        (f"- {{name: '', sha256: {GOOD}, environments: ['*']}}\n", "name must be a non-empty"),
        (f"- {{name: ops, sha256: {GOOD}, environments: []}}\n", "environments must be a non"),
        (f"- {{name: ops, sha256: {GOOD}, environments: [on]}}\n", "quote names YAML would"),
        (f"- {{name: ops, sha256: {GOOD}, environments: ['*', qa]}}\n", "'*' already means"),
        (
            f"- {{name: ops, sha256: {GOOD}, environments: ['*']}}\n"
            f"- {{name: ops, sha256: {'b' * 64}, environments: ['*']}}\n",
            "key 2: name repeats an earlier one (ops)",
        ),
        (
            f"- {{name: ops, sha256: {GOOD}, environments: ['*']}}\n"
            f"- {{name: web, sha256: {GOOD}, environments: [qa]}}\n",
            "key 2: sha256 repeats an earlier one (the same key)",
        ),
        ("- {name: ops\n", "not valid YAML"),
    ],
)
def test_a_bad_keys_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KeyFileError, match=r".*") as raised:
        load_keys(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_a_missing_keys_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="the API keys file does not exist"):
        load_keys(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {SECRET}"},
        {"Authorization": SECRET},
        {"X-API-Key": SECRET},  # only OFREP clients send their key this way
    ],
)
def test_api_without_a_known_bearer_key_is_401_problem(
    guarded: falcon.testing.TestClient, headers: dict[str, str]
) -> None:
    for path in (FLAT.format("production"), "/api/v1/snapshot", "/api/v1/flags/nope"):
        answer = guarded.simulate_get(path, headers=headers)
        assert answer.status_code == 401, path
        assert answer.headers["Content-Type"] == PROBLEM_JSON
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="flagserve"'
        assert answer.json["status"] == 401
        assert answer.json["type"].endswith("/unauthorized")
        assert "Bearer" in answer.json["detail"]
        assert SECRET not in answer.text
    assert guarded.simulate_post(FLAT.format("production"), headers=headers).status_code == 401
    # no route, no resource to protect: the routes are public (/openapi.json)
    assert guarded.simulate_get("/api/v1/nope", headers=headers).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}],
)
def test_ofrep_without_a_known_key_is_401_in_ofrep_shape(
    guarded: falcon.testing.TestClient, headers: dict[str, str]
) -> None:
    answer = guarded.simulate_post(
        OFREP, json={"context": {"environment": "staging"}}, headers=headers
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="flagserve"'
    assert answer.json["errorCode"] == "GENERAL"
    assert "Bearer" in answer.json["errorDetails"]
    bulk = guarded.simulate_post("/ofrep/v1/evaluate/flags", json={"context": {}}, headers=headers)
    assert bulk.status_code == 401
    assert set(bulk.json) == {"errorCode", "errorDetails"}


def test_a_key_reads_its_environments_and_gets_403_elsewhere(
    guarded: falcon.testing.TestClient,
) -> None:
    assert guarded.simulate_get(FLAT.format("staging"), headers=STAGING).status_code == 200
    denied = guarded.simulate_get(FLAT.format("production"), headers=STAGING)
    assert denied.status_code == 403
    assert denied.headers["Content-Type"] == PROBLEM_JSON
    assert denied.json["type"].endswith("/forbidden")
    assert guarded.simulate_get("/api/v1/snapshot", headers=STAGING).status_code == 403
    context = {"context": {"environment": "staging"}}
    assert guarded.simulate_post(OFREP, json=context, headers=STAGING).status_code == 200
    ofrep_key = {"X-API-Key": STAGING_SECRET}
    assert guarded.simulate_post(OFREP, json=context, headers=ofrep_key).status_code == 200
    production = {"context": {"environment": "production"}}
    forbidden = guarded.simulate_post(OFREP, json=production, headers=STAGING)
    assert forbidden.status_code == 403
    assert forbidden.json["errorCode"] == "GENERAL"
    # a key for one environment needs no environment in the context
    assert guarded.simulate_post(OFREP, json={"context": {}}, headers=STAGING).status_code == 200


def test_a_star_key_reads_everything(guarded: falcon.testing.TestClient) -> None:
    for environment in ("development", "staging", "production"):
        assert guarded.simulate_get(FLAT.format(environment), headers=OPS).status_code == 200
    assert guarded.simulate_get("/api/v1/snapshot", headers=OPS).status_code == 200
    assert guarded.simulate_get("/api/v1/flags/banner", headers=OPS).status_code == 200
    production = {"context": {"environment": "production"}}
    assert guarded.simulate_post(OFREP, json=production, headers=OPS).status_code == 200


def test_health_readiness_and_metrics_stay_open(guarded: falcon.testing.TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert guarded.simulate_get(path).status_code == 200, path


def test_without_keys_everything_is_open(store: Store) -> None:
    client = falcon.testing.TestClient(create_app(store, middleware=[AccessControl(None)]))
    assert client.simulate_get(FLAT.format("production")).status_code == 200
    assert client.simulate_get("/api/v1/snapshot").status_code == 200
    context = {"context": {"environment": "production"}}
    assert client.simulate_post(OFREP, json=context).status_code == 200
