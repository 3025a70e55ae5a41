"""Server fixtures: real builds made by flagc in real git repositories, a Falcon test
client over a real Store, and a real gunicorn process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests

from compiler.cli import main as flagc
from core.snapshot import Snapshot
from server.app import create_app
from server.store import Store
from tests.conftest import git_in, write_tree

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "environments: [development, staging, production]\napplications: [web, ios, android]\n"
FLAGS = {
    "_project.yaml": PROJECT,
    "platform/pricing-engine.yaml": (
        "description: New pricing engine\nowner: team-pricing\nenabled: true\ntags: [platform]\n"
    ),
    "checkout/new-checkout.yaml": (
        "description: Single-page checkout\nowner: team-checkout\nenabled: false\n"
        "tags: [checkout, q3]\n"
        "applications:\n  ios: true\n"
        "environments:\n  staging: true\n"
        "  production:\n    enabled: false\n    applications:\n      web: true\n"
        "depends_on: [pricing-engine]\n"
    ),
    "growth/banner.yaml": (
        "description: Free shipping banner\nowner: team-growth\nenabled: false\n"
        "environments:\n  development: true\n"
    ),
}


@dataclass
class Built:
    """A flags repository and its build directory (OUT)."""

    repo: Path
    flags: Path
    out: Path
    git: Callable[..., str]

    def build(self) -> None:
        assert flagc(["build", str(self.flags), "-o", str(self.out)]) == 0

    def commit(self, message: str, files: dict[str, str | None]) -> None:
        """Write (or, for None, delete) files under flags/, commit them, and rebuild."""
        for relative, text in files.items():
            path = self.flags / relative
            if text is None:
                path.unlink()
            else:
                write_tree(self.flags, {relative: text})
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)
        self.build()


def built_in_git(root: Path, files: dict[str, str], message: str = "Add the flags") -> Path:
    """`files` committed under flags/ in a new git repository below `root`, built into
    root/out (the server refuses the empty audit log of a build outside git)."""
    out = built_if_accepted(root, files, message)
    assert out is not None, "flagc refused the flags"
    return out


def built_if_accepted(
    root: Path, files: dict[str, str], message: str = "Add the flags"
) -> Path | None:
    """As `built_in_git`, or None when flagc refuses the flags (exit 1: it found errors),
    for generated trees that only sometimes pass its checks."""
    repo = root / "repo"
    repo.mkdir()
    git = git_in(repo)
    git("init", "--quiet", "--initial-branch=main")
    write_tree(repo / "flags", files)
    git("add", "--all")
    git("commit", "--quiet", "--message", message)
    code = flagc(["build", str(repo / "flags"), "-o", str(root / "out")])
    assert code in (0, 1), f"flagc build exited {code}"
    return root / "out" if code == 0 else None


@pytest.fixture
def built(git_repo: tuple[Path, Callable[..., str]], tmp_path: Path) -> Built:
    """The example above, committed in two steps (so the audit log has history), built."""
    repo, git = git_repo
    result = Built(repo, repo / "flags", tmp_path / "out", git)
    first = {name: text for name, text in FLAGS.items() if "new-checkout" not in name}
    write_tree(result.flags, first)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Add the pricing engine and the banner")
    result.commit(
        "Launch the new checkout on web in production\n\nApproved in CHG-1234.",
        {"checkout/new-checkout.yaml": FLAGS["checkout/new-checkout.yaml"]},
    )
    return result


@pytest.fixture
def store(built: Built) -> Store:
    store = Store(built.out)
    store.start()
    return store


@pytest.fixture
def client(store: Store) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(store))


def is_kept(snapshot: Snapshot, key: tuple[Any, ...]) -> bool:
    """Whether `snapshot.memo` keeps a body for `key` (asked without making one)."""
    return key in snapshot._kept.bodies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_ports() -> tuple[int, int]:
    """Two free ports, apart: each socket is held while the other is found (two calls of
    `free_port` can give the same port twice, as the kernel hands a closed one out again)."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return first.getsockname()[1], second.getsockname()[1]


@dataclass
class Live:
    """A running flagserve (gunicorn) process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def wait_until_served(live: Live, revision: str, seconds: float = 60) -> None:
    """Until every worker serves `revision`: each polls the build on its own, so one answer
    from one worker says nothing of the others (20 in a row, each on a new connection, do)."""
    deadline, in_a_row = time.monotonic() + seconds, 0
    while in_a_row < 20:
        if time.monotonic() > deadline:
            raise AssertionError(f"flagserve never served {revision}:\n{live.log.read_text()}")
        served = live.get("/readyz").json().get("revision") == revision
        in_a_row = in_a_row + 1 if served else 0
        if not served:
            time.sleep(0.1)


def start_server(out: Path, log: Path, env: dict[str, str] | None = None) -> Live:
    """Start `python -m server OUT` (2 workers x 4 threads) on a free port and wait until
    that port answers ready."""
    from tests.server.helpers import launch  # noqa: PLC0415 - helpers imports this module

    workers = {"FLAGSERVE_WORKERS": "2", "FLAGSERVE_THREADS": "4"}
    return launch([str(out)], log, {**workers, **(env or {})})


def stop_server(live: Live) -> None:
    if live.process.poll() is None:
        os.killpg(live.process.pid, signal.SIGTERM)
        try:
            live.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(live.process.pid, signal.SIGKILL)
            live.process.wait()


@pytest.fixture
def live(built: Built, tmp_path: Path) -> Iterator[Live]:
    """flagserve serving `built` with 2 workers on a free loopback port."""
    server = start_server(built.out, tmp_path / "flagserve.log")
    yield server
    stop_server(server)


@pytest.fixture
def keyed_live(built: Built, tmp_path: Path) -> Iterator[Live]:
    """flagserve checking API keys: `ops` may read everything, `staging` only staging."""
    from tests.server.helpers import keys_file  # noqa: PLC0415 - helpers imports this module

    env = {"FLAGSERVE_API_KEYS": str(keys_file(tmp_path / "keys.yaml"))}
    server = start_server(built.out, tmp_path / "flagserve.log", env)
    yield server
    stop_server(server)
