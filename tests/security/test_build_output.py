"""Issue 12, part 3: a killed build leaves OUT holding the previous complete build or the new
one, never parts of two, and a server watching OUT never serves an audit log newer than its
snapshot.

A real `flagc build` (a subprocess, on a real git repository of a few hundred flags) is
killed with SIGKILL at random instants of its run, drawn with a fixed seed; after each kill
every documented path of OUT (snapshot.json, audit.json, flagd/*.json) is read and must be,
all together, exactly the old build or exactly the new one. The next run must remove what
the killed one left. Before compiler/publish.py, the build replaced audit.json, then flagd/,
then snapshot.json, one at a time: a kill between two of them left a mixed OUT.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from compiler.cli import main as flagc
from compiler.publish import BUILDS, CURRENT
from tests.conftest import GIT_ENV, Git, git_in, write_tree
from tests.server.conftest import ROOT, start_server, stop_server

ENVIRONMENTS = ["development", "staging", "canary", "production", "eu"]
APPLICATIONS = [f"app{number}" for number in range(20)]
PROJECT = f"environments: [{', '.join(ENVIRONMENTS)}]\napplications: [{', '.join(APPLICATIONS)}]\n"
FLAGS = 400
KILLS = 16
State = tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]


def flag_file(number: int, enabled: bool, note: str = "") -> str:
    """One flag; every seventh depends on the one before and stays off, so that turning any
    multiple of seven on or off keeps the tree valid."""
    head = f"description: Flag number {number}{note}\nowner: team-{number % 9}\n"
    if number % 7 == 1:
        return f"{head}enabled: false\ndepends_on: [flag-{number - 1}]\n"
    return (
        f"{head}enabled: {'true' if enabled else 'false'}\n"
        "environments:\n  staging: true\n  production:\n    applications:\n      app3: true\n"
    )


@dataclass
class Repository:
    """A flags repository whose every commit turns one flag on or off."""

    root: Path
    git: Git
    commits: int = 0
    shas: list[str] = field(default_factory=list)

    @property
    def flags(self) -> Path:
        return self.root / "flags"

    def commit(self) -> str:
        """Turn one flag over (a multiple of seven) and commit; returns the commit."""
        self.commits += 1
        number = 7 * (self.commits % (FLAGS // 7))
        text = flag_file(number, self.commits % 2 == 0, f", change {self.commits}")
        write_tree(self.flags, {f"team/flag-{number}.yaml": text})
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", f"Turn flag-{number} over ({self.commits})")
        sha = self.git("rev-parse", "HEAD").strip()
        self.shas.append(sha)
        return sha

    def build(self, out: Path | None = None) -> Path:
        out = out or self.root.parent / "out"
        assert flagc(["build", str(self.flags), "-o", str(out)]) == 0
        return out

    def command(self, out: Path) -> list[str]:
        return [sys.executable, "-m", "compiler", "build", str(self.flags), "-o", str(out)]


def make_repository(folder: Path, commits: int = 1) -> Repository:
    root = folder / "repo"
    root.mkdir()
    git = git_in(root)
    git("init", "--quiet", "--initial-branch=main")
    files = {f"team/flag-{n}.yaml": flag_file(n, n % 3 == 0) for n in range(FLAGS)}
    write_tree(root / "flags", {"_project.yaml": PROJECT, **files})
    git("add", "--all")
    git("commit", "--quiet", "--message", "Add the first four hundred flags")
    repository = Repository(root, git)
    for _ in range(commits - 1):
        repository.commit()
    return repository


def state(out: Path) -> State:
    """What a reader of OUT sees through the documented paths."""

    def read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    folder = out / "flagd"
    names = sorted(folder.glob("*.json")) if folder.is_dir() else []
    flagd = tuple((path.name, path.read_bytes()) for path in names)
    return read(out / "snapshot.json"), read(out / "audit.json"), flagd


def leftovers(out: Path) -> list[str]:
    """Temporary files, and build directories other than the current one and the one it
    replaced (which the run that replaced it keeps for readers still on it)."""
    found = [path.name for path in out.glob(".*.tmp")]
    current = (out / CURRENT).resolve().name
    builds = sorted((out / BUILDS).iterdir(), key=lambda path: path.stat().st_mtime_ns)
    found += [path.name for path in builds[:-2] if path.name != current]
    return found


def run_killed(command: list[str], delay: float, watched: Path | None = None) -> bool:
    """Run `command` and SIGKILL it after `delay` seconds or, with `watched`, as soon as
    that file (links followed) changes: the instant that left OUT mixed before. True when
    it was killed before it ended."""
    before = _identity(watched) if watched is not None else None
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **GIT_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and process.poll() is None:
        if watched is not None and _identity(watched) != before:
            break
        time.sleep(0.0005)
    process.send_signal(signal.SIGKILL)
    return process.wait() == -signal.SIGKILL


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def timed_run(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(
        command, cwd=ROOT, env={**os.environ, **GIT_ENV}, check=True, capture_output=True
    )
    return time.monotonic() - started


def as_earlier_flagc_left_it(out: Path) -> None:
    """OUT as flagc wrote it before builds were swapped whole: plain files (and the
    temporary files a killed run of it left behind)."""
    snapshot, audit, flagd = state(out)
    for path in list(out.iterdir()):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    assert snapshot is not None and audit is not None
    (out / "snapshot.json").write_bytes(snapshot)
    (out / "audit.json").write_bytes(audit)
    (out / "flagd").mkdir()
    for name, data in flagd:
        (out / "flagd" / name).write_bytes(data)
    (out / ".snapshot.json.k3j2l1.tmp").write_bytes(snapshot[: len(snapshot) // 2])
    (out / "flagd" / ".production.json.x8a7.tmp").write_bytes(b"{")


@pytest.mark.parametrize("layout", ["swapped", "plain files of an earlier flagc"])
def test_a_build_killed_at_any_instant_leaves_the_old_build_or_the_new_one(
    tmp_path: Path, layout: str
) -> None:
    repository = make_repository(tmp_path)
    old_out = repository.build(tmp_path / "old")
    if layout != "swapped":
        as_earlier_flagc_left_it(old_out)
    old = state(old_out)
    repository.commit()
    new = state(repository.build(tmp_path / "new"))
    assert old != new and None not in new[:2]
    duration = timed_run(repository.command(tmp_path / "timing"))

    chance = random.Random(12)
    outcomes = {"old": 0, "new": 0}
    for attempt in range(KILLS):
        out = tmp_path / f"out-{attempt}"
        shutil.copytree(old_out, out, symlinks=True)
        # every other kill lands as soon as audit.json changes, the rest at random
        watched = None if attempt % 2 else out / "audit.json"
        delay = 30 if watched else chance.uniform(0.2, 1.1) * duration
        killed = run_killed(repository.command(out), delay, watched)
        seen = state(out)
        assert seen in (old, new), f"a mixed OUT after a kill at attempt {attempt}"
        outcomes["old" if seen == old else "new"] += killed or seen == old

        assert flagc(["build", str(repository.flags), "-o", str(out)]) == 0
        assert state(out) == new
        assert leftovers(out) == [], f"attempt {attempt}"
        assert not list(out.glob("flagd/.*"))
        shutil.rmtree(out)
    assert outcomes["old"] > 0  # some kills came before the swap


def test_the_next_run_removes_what_killed_runs_left(tmp_path: Path) -> None:
    repository = make_repository(tmp_path)
    out = repository.build()
    (out / BUILDS / "build-killed").mkdir()
    (out / BUILDS / "build-killed" / "snapshot.json").write_bytes(b"x" * 1_000_000)
    (out / ".snapshot.json.abc123.tmp").write_bytes(b"x" * 1_000_000)
    (out / ".audit.json.def456.tmp").write_bytes(b"{")
    (out / ".current.0123.tmp").symlink_to(f"{BUILDS}/build-killed")
    repository.commit()
    repository.build(out)
    assert leftovers(out) == []
    assert not (out / BUILDS / "build-killed").exists()
    assert sorted(path.name for path in out.glob(".*.tmp")) == []


@dataclass
class Watcher:
    """Clients of a flagserve watching OUT, each answer of /api/v1/audit checked: its
    newest entry must be the commit of the snapshot it is served with."""

    url: str
    answers: int = 0
    mixed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                answer = session.get(f"{self.url}/api/v1/audit?limit=1", timeout=10)
            except requests.RequestException as exc:
                self.errors.append(repr(exc))
                continue
            if answer.status_code != 200:
                self.errors.append(f"{answer.status_code} {answer.text[:200]}")
                continue
            body = answer.json()
            self.answers += 1
            if body["items"][0]["commit"] != body["revision"]:
                self.mixed.append(
                    f"audit at {body['items'][0]['commit']}, flags at {body['revision']}"
                )


def test_a_watching_server_never_serves_an_audit_newer_than_its_snapshot(tmp_path: Path) -> None:
    repository = make_repository(tmp_path, commits=2)
    out = repository.build()
    duration = timed_run(repository.command(tmp_path / "timing"))
    live = start_server(out, tmp_path / "flagserve.log", {"FLAGSERVE_RELOAD_INTERVAL": "0.05"})
    watcher = Watcher(live.url)
    threads = [threading.Thread(target=watcher.poll, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    chance = random.Random(7)
    try:
        for _ in range(5):
            repository.commit()
            run_killed(repository.command(out), 30, out / "audit.json")
            time.sleep(0.3)
            repository.commit()
            run_killed(repository.command(out), chance.uniform(0.3, 1.1) * duration)
            time.sleep(0.3)
        repository.commit()
        assert flagc(["build", str(repository.flags), "-o", str(out)]) == 0
        deadline = time.monotonic() + 30
        while live.get("/readyz").json()["revision"] != repository.shas[-1]:
            assert time.monotonic() < deadline, live.log.read_text()
            time.sleep(0.1)
        ready = live.get("/readyz").json()
    finally:
        watcher.stop.set()
        for thread in threads:
            thread.join(timeout=15)
        stop_server(live)
    assert watcher.mixed == []
    assert watcher.errors == []
    assert watcher.answers > 50
    assert ready["reload_failures"] == 0, ready["last_error"]


@pytest.mark.parametrize("place", ["audit.json", "current audit.json"])
def test_a_fifo_in_place_of_the_previous_audit_log_is_not_waited_on(
    tmp_path: Path, place: str
) -> None:
    """flagc build reads the previous audit.json to continue it: a FIFO there (planted in a
    plain OUT, or in the current build) is ignored at once, and the build is complete."""
    repository = make_repository(tmp_path)
    out = repository.build()
    if place == "audit.json":
        as_earlier_flagc_left_it(out)
    path = out / "audit.json" if place == "audit.json" else (out / "audit.json").resolve()
    path.unlink()
    os.mkfifo(path)
    repository.commit()
    done = subprocess.run(
        repository.command(out), cwd=ROOT, env={**os.environ, **GIT_ENV}, timeout=60, check=False
    )
    assert done.returncode == 0
    assert state(out) == state(repository.build(tmp_path / "fresh"))


def test_builds_into_one_out_take_turns(tmp_path: Path) -> None:
    """Three runs at once into one OUT (a builder loop and a person, say): they take turns
    (OUT's lock), so none removes another's build directory while it is being written."""
    repository = make_repository(tmp_path)
    out = repository.build()
    repository.commit()
    environment = {**os.environ, **GIT_ENV}
    runs = [subprocess.Popen(repository.command(out), cwd=ROOT, env=environment) for _ in range(3)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0]
    assert state(out) == state(repository.build(tmp_path / "fresh"))
    assert leftovers(out) == []
