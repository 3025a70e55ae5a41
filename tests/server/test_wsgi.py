"""`server.wsgi`: what gunicorn's workers load. `build(settings)` wires the store, access
control, metrics and the default environment into the app (and rereads the keys on
demand, keeping them when the file is bad); importing the module starts nothing."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from server import wsgi
from server.auth import digest
from server.settings import Settings, SettingsError
from tests.server.conftest import Built
from tests.server.helpers import FLAT, SECRET, keys_file


def test_build_wires_access_control_metrics_and_the_default_environment(
    built: Built, tmp_path: Path
) -> None:
    keys = keys_file(tmp_path / "keys.yaml")
    settings = Settings(
        built.out, api_keys=keys, default_environment="development", reload_interval=3600
    )
    service = wsgi.build(settings)
    client = falcon.testing.TestClient(service.app)
    assert client.simulate_get(FLAT).status_code == 401
    assert (
        client.simulate_get(FLAT, headers={"Authorization": f"Bearer {SECRET}"}).status_code == 200
    )
    assert client.simulate_get("/metrics").status_code == 200
    keys.write_text(f"- {{name: new, sha256: {digest(b'new-key')}, environments: [staging]}}\n")
    service.reread_keys()
    assert (
        client.simulate_get(FLAT, headers={"Authorization": f"Bearer {SECRET}"}).status_code == 401
    )
    staging = client.simulate_get(
        "/api/v1/environments/staging/flags", headers={"Authorization": "Bearer new-key"}
    )
    assert staging.status_code == 200
    keys.write_text("not: a list\n")
    service.reread_keys()  # refused: the keys in use stay
    again = client.simulate_get(
        "/api/v1/environments/staging/flags", headers={"Authorization": "Bearer new-key"}
    )
    assert again.status_code == 200
    separate = wsgi.build(Settings(built.out, metrics_bind="127.0.0.1:9", reload_interval=3600))
    assert falcon.testing.TestClient(separate.app).simulate_get("/metrics").status_code == 404


def test_build_refuses_an_unknown_default_environment(built: Built) -> None:
    with pytest.raises(SettingsError, match="'qa' is not an environment of the build"):
        wsgi.build(Settings(built.out, default_environment="qa"))


def test_the_wsgi_module_starts_nothing_until_asked() -> None:
    assert wsgi.started.cache_info().currsize == 0  # imported above: nothing started
    with pytest.raises(AttributeError):
        _ = wsgi.nothing
