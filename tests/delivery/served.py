"""The real application over a real build of this repository's flags, for checking that the
paths which deployment files name (probes, health checks, scrapes) are endpoints it serves."""

from __future__ import annotations

from pathlib import Path

import falcon.testing

from compiler.cli import main as flagc
from server.app import create_app
from server.store import Store

ROOT = Path(__file__).resolve().parents[2]


def client(out: Path) -> falcon.testing.TestClient:
    """flagserve's application (Falcon's test client) serving flags/ built into `out`."""
    assert flagc(["build", str(ROOT / "flags"), "-o", str(out)]) == 0
    store = Store(out)
    store.start()
    return falcon.testing.TestClient(create_app(store))


def port_of(bind: str) -> int:
    """The port of a FLAGSERVE_BIND value (HOST:PORT)."""
    return int(bind.rpartition(":")[2])
