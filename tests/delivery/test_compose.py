"""docker-compose.yml and deploy/prometheus.yml: valid against the Compose specification,
the server built from the Dockerfile on the port it binds, read-only with a tmpfs where it
writes, and Prometheus (profile `monitoring`) scraping a /metrics the server really has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import yaml

from tests.delivery import served

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> falcon.testing.TestClient:
    return served.client(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    found: dict[str, Any] = load(COMPOSE)["services"]
    return found


def test_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_server_is_built_from_the_dockerfile_and_published_on_its_port(
    services: dict[str, Any],
) -> None:
    server = services["flagserve"]
    assert server["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    port = served.port_of(server["environment"]["FLAGSERVE_BIND"])
    assert server["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert "profiles" not in server  # always started


def test_the_server_runs_read_only_with_a_tmpfs_for_its_temporary_files(
    services: dict[str, Any],
) -> None:
    server = services["flagserve"]
    assert server["read_only"] is True
    assert server["tmpfs"] == ["/tmp"]  # the image's TMPDIR
    assert server["cap_drop"] == ["ALL"]


def test_the_healthcheck_asks_a_real_endpoint_on_the_bound_port(
    services: dict[str, Any], app: falcon.testing.TestClient
) -> None:
    server = services["flagserve"]
    test = server["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    port = served.port_of(server["environment"]["FLAGSERVE_BIND"])
    url = f"http://127.0.0.1:{port}/healthz"
    assert f"'{url}'" in test[3]
    assert app.simulate_get("/healthz").json == {"status": "ok"}


def test_prometheus_is_optional_and_scrapes_the_servers_metrics(
    services: dict[str, Any], app: falcon.testing.TestClient
) -> None:
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    source, target, mode = prometheus["volumes"][0].split(":")
    assert (ROOT / source).resolve() == ROOT / "deploy" / "prometheus.yml"
    assert f"--config.file={target}" in prometheus["command"]
    assert mode == "ro"
    (job,) = load(ROOT / "deploy" / "prometheus.yml")["scrape_configs"]
    port = served.port_of(services["flagserve"]["environment"]["FLAGSERVE_BIND"])
    assert job["static_configs"] == [{"targets": [f"flagserve:{port}"]}]
    answer = app.simulate_get(job["metrics_path"])
    assert answer.status_code == 200
    assert "flagserve_snapshot_info" in answer.text
