"""Hot reload, and never a bad snapshot: a new build changes every answer and its ETag; under
load, through SIGHUP, and in a worker that replaces one killed while the build on disk is
broken (real gunicorn processes)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import falcon.testing
import orjson
import requests

from compiler import emit, publish
from core import canonical, flagd
from server.auth import digest
from server.store import Store
from tests.server.conftest import FLAGS, Built, Live
from tests.server.helpers import FLAT, SECRET, keys_file, running, wait_until, workers


class Builds:
    """Builds derived from a real one, published into OUT as flagc publishes them (one
    complete set, swapped in whole): good ones (a new revision, valid, consistent and with a
    matching digest) and broken ones (each with a revision of its own, never served)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.base = orjson.loads((out / "snapshot.json").read_bytes())
        self.audit = (out / "audit.json").read_bytes()
        self.initial = str(self.base["revision"])

    def render(self, revision: str, description: str) -> bytes:
        content = {k: v for k, v in self.base.items() if k not in ("digest", "revision")}
        flags = dict(content["flags"])
        flags["banner"] = {**flags["banner"], "description": description}
        return emit.render({**content, "flags": flags}, revision).data

    def good(self, number: int) -> str:
        revision = f"{number:040x}"
        data = self.render(revision, f"build {number}")
        self.write(data, flagd.definitions(orjson.loads(data)))
        return revision

    def write(self, snapshot: bytes, definitions: dict[str, bytes] | None = None) -> None:
        """Publish a build of `snapshot`, with an audit log whose head is its revision (when
        it has one) and flagd's files (the base build's, unless given)."""
        try:
            revision = orjson.loads(snapshot).get("revision")
        except orjson.JSONDecodeError:
            revision = None
        audit = {**orjson.loads(self.audit), "head": revision or self.initial}
        base = flagd.definitions(self.base)
        with publish.locked(self.out):
            publish.publish(self.out, snapshot, canonical.serialize(audit), definitions or base)

    def broken(self, number: int, description: str) -> bytes:
        return self.render(f"f{number:039x}", description)

    # each breaks the build in one way, and returns what the server says about it
    def truncated(self, number: int) -> str:
        data = self.broken(number, "truncated")
        self.write(data[: len(data) * 2 // 3])
        return "snapshot.json is not valid JSON"

    def not_json(self, number: int) -> str:
        self.write(b"<html>502 Bad Gateway</html>\n")
        return "snapshot.json is not valid JSON"

    def wrong_schema(self, number: int) -> str:
        document = orjson.loads(self.broken(number, "no applications"))
        del document["applications"]
        self.write(orjson.dumps(document))
        return "snapshot.json: lacks 'applications'"

    def stale_digest(self, number: int) -> str:
        document = orjson.loads(self.broken(number, "stale digest"))
        document["flags"]["banner"]["enabled"] = not document["flags"]["banner"]["enabled"]
        self.write(orjson.dumps(document))
        return "the snapshot's content does not match its digest"

    def broken_audit(self, number: int) -> str:
        data = self.broken(number, "broken audit")
        with publish.locked(self.out):
            publish.publish(self.out, data, self.audit[: len(self.audit) // 2], {})
        return "audit.json is not valid JSON"

    def missing(self, number: int) -> str:
        (self.out / "snapshot.json").resolve().unlink()  # from the current build
        return "snapshot.json does not exist"

    def breakers(self) -> list[Callable[[int], str]]:
        return [
            self.truncated,
            self.not_json,
            self.wrong_schema,
            self.stale_digest,
            self.broken_audit,
            self.missing,
        ]


@dataclass
class Load:
    """Clients asking for the flat map in a loop, each answer's revision recorded."""

    live: Live
    revisions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, keep_alive: bool) -> None:
        get = requests.Session().get if keep_alive else requests.get
        while not self.stop.is_set():
            try:
                answer = get(self.live.url + FLAT, timeout=10)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status_code != 200:
                self.failures.append(f"{answer.status_code}: {answer.text}")
            else:
                self.revisions.append(answer.json()["revision"])


@contextmanager
def load(live: Live, clients: int = 4) -> Iterator[Load]:
    running_load = Load(live)
    threads = [
        threading.Thread(target=running_load.client, args=(number % 2 == 0,), daemon=True)
        for number in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        yield running_load
    finally:
        running_load.stop.set()
        for thread in threads:
            thread.join(timeout=15)


def serving(live: Live, revision: str, times: int = 12) -> bool:
    """Whether `times` requests, each on a new connection, all get `revision`."""
    return all(live.get(FLAT).json()["revision"] == revision for _ in range(times))


def test_reload_under_load_never_serves_a_broken_build(built: Built, tmp_path: Path) -> None:
    builds = Builds(built.out)
    good, expected_errors = {builds.initial}, set()
    log = tmp_path / "flagserve.log"
    with running([str(built.out)], log, {"FLAGSERVE_RELOAD_INTERVAL": "0.1"}) as live:
        with load(live) as client:
            breakers = builds.breakers()
            for number in range(50):
                if number % 4 == 3:
                    expected_errors.add(breakers[number // 4 % len(breakers)](number))
                    time.sleep(0.3)  # long enough for every worker to look at it
                else:
                    good.add(builds.good(number))
                    time.sleep(0.05)
            last = builds.good(50)
            good.add(last)
            wait_until(lambda: serving(live, last), what="the last build")
        ready = live.get("/readyz").json()
    assert client.failures == []
    served = set(client.revisions)
    assert served <= good, served - good
    assert len(served) >= 10, "the builds were not reloaded under load"
    assert len(client.revisions) > 200
    assert ready["revision"] == last
    text = log.read_text()
    for error in expected_errors:
        assert error in text, error


def test_sighup_brings_up_workers_with_the_newest_good_build(built: Built, tmp_path: Path) -> None:
    builds = Builds(built.out)
    log = tmp_path / "flagserve.log"
    # only SIGHUP reloads here
    no_polling = {"FLAGSERVE_RELOAD_INTERVAL": "3600", "FLAGSERVE_RELOAD_NOTIFY": "off"}
    with running([str(built.out)], log, no_polling) as live, load(live) as client:
        # both workers forked: a later fork would take the new build (as it should)
        wait_until(lambda: len(workers(live.process.pid)) == 2, what="both workers")
        newer = builds.good(1)
        time.sleep(0.3)
        assert serving(live, builds.initial)
        old_workers = set(workers(live.process.pid))
        os.kill(live.process.pid, signal.SIGHUP)
        wait_until(lambda: serving(live, newer), what="workers with the new build")
        wait_until(
            lambda: not old_workers & set(workers(live.process.pid)), what="old workers gone"
        )

        builds.truncated(2)
        hupped = set(workers(live.process.pid))
        os.kill(live.process.pid, signal.SIGHUP)
        wait_until(lambda: not hupped & set(workers(live.process.pid)), what="a second restart")
        assert len(workers(live.process.pid)) == 2
        assert serving(live, newer)
        assert live.get("/readyz").json()["revision"] == newer
    assert client.failures == []
    assert set(client.revisions) <= {builds.initial, newer}
    assert "snapshot.json is not valid JSON" in log.read_text()


def test_sighup_rereads_the_api_keys_and_keeps_them_when_the_file_is_bad(
    built: Built, tmp_path: Path
) -> None:
    keys = keys_file(tmp_path / "keys.yaml")
    log = tmp_path / "flagserve.log"
    old, new = {"Authorization": f"Bearer {SECRET}"}, {"Authorization": "Bearer rotated-key"}
    with running([str(built.out), "--api-keys", str(keys)], log) as live:
        assert live.get(FLAT, headers=old).status_code == 200
        assert live.get(FLAT, headers=new).status_code == 401
        keys.write_text(f"- {{name: ops, sha256: {digest(b'rotated-key')}, environments: ['*']}}\n")
        os.kill(live.process.pid, signal.SIGHUP)
        wait_until(lambda: _answers(live, new, 200) and _answers(live, old, 401), what="new keys")

        keys.write_text("- {name: ops, sha256: nope, environments: ['*']}\n")
        hupped = set(workers(live.process.pid))
        os.kill(live.process.pid, signal.SIGHUP)
        wait_until(lambda: not hupped & set(workers(live.process.pid)), what="new workers")
        assert _answers(live, new, 200)
    assert "kept the API keys in use" in log.read_text()


def _answers(live: Live, headers: dict[str, str], status: int, times: int = 6) -> bool:
    return all(live.get(FLAT, headers=headers).status_code == status for _ in range(times))


def test_a_worker_replaced_while_the_build_is_broken_serves_the_last_good_one(
    built: Built, tmp_path: Path
) -> None:
    builds = Builds(built.out)
    log = tmp_path / "flagserve.log"
    with running([str(built.out), "--workers", "1"], log) as live:
        newer = builds.good(1)
        wait_until(lambda: serving(live, newer, times=2), what="the new build")
        time.sleep(0.5)  # the master polls too: it has taken the new build
        builds.stale_digest(2)
        wait_until(lambda: _refusals(log) >= 2, what="worker and master refusing the build")
        [worker] = workers(live.process.pid)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: _replaced(live, worker), what="a new worker")
        assert serving(live, newer)
        ready = live.get("/readyz").json()
        assert ready["revision"] == newer

        good = builds.good(3)  # and the new worker polls the directory
        wait_until(lambda: serving(live, good, times=2), what="the newest build")


def _refusals(log: Path) -> int:
    return log.read_text().count("does not match its digest")


def _replaced(live: Live, killed: int) -> bool:
    found = workers(live.process.pid)
    return len(found) == 1 and found[0] != killed


def test_a_build_is_served_as_it_lands_with_no_poll_to_wait_for(
    built: Built, tmp_path: Path
) -> None:
    builds = Builds(built.out)
    no_polling = {"FLAGSERVE_RELOAD_INTERVAL": "3600"}  # inotify alone (server.watch)
    with running([str(built.out)], tmp_path / "flagserve.log", no_polling) as live:
        wait_until(lambda: len(workers(live.process.pid)) == 2, what="both workers")
        newer = builds.good(1)
        wait_until(lambda: serving(live, newer, times=6), what="every worker with it", live=live)
        assert "reload as each build lands (inotify)" in live.log.read_text()


def test_a_store_reloads_when_a_build_lands(built: Built, store: Store) -> None:
    store.watch(3600)
    assert store.notifying
    banner = FLAGS["growth/banner.yaml"].replace("development: true", "development: false")
    before = store.current.revision
    built.commit("Hide the banner in development", {"growth/banner.yaml": banner})
    wait_until(lambda: store.current.revision != before, what="the store's reload")


def test_a_store_that_polls_only_stops_watching(store: Store) -> None:
    store.watch(0.05)
    assert store.notifying
    store.poll_only()  # as gunicorn's master does
    assert not store.notifying
    watch = store._watch
    assert watch is not None
    wait_until(lambda: not watch.notifying, what="the watcher closing its watch")


def test_a_forked_store_gets_a_fresh_lock_and_one_poller_per_process(store: Store) -> None:
    assert store.last_load_seconds > 0
    first = store.watch(3600)
    assert store.watch(3600) is first  # one poller per process
    store._lock.acquire()  # as a thread that does not survive fork() might hold it
    store.after_fork()
    assert store.reload() is False  # not blocked: the lock is new; nothing changed on disk
    second = store.watch(3600)
    assert second is not first
    assert second.is_alive()
    assert store.notifying  # with an inotify instance of its own: the parent's is closed


def test_a_reload_changes_the_answers_and_their_etags(
    client: falcon.testing.TestClient, built: Built, store: Store
) -> None:
    paths = [
        "/api/v1/snapshot",
        "/api/v1/environments/development/flags",
        "/api/v1/flags",
        "/api/v1/flags/banner",
        "/api/v1/flags/banner/audit",
        "/api/v1/audit",
    ]
    before = {path: client.simulate_get(path) for path in paths}
    banner = FLAGS["growth/banner.yaml"].replace("development: true", "development: false")
    built.commit("Hide the banner in development", {"growth/banner.yaml": banner})
    assert store.reload()
    after = {path: client.simulate_get(path) for path in paths}
    for path in paths:
        assert after[path].status_code == 200
        assert after[path].headers["ETag"] != before[path].headers["ETag"], path
        stale = client.simulate_get(path, headers={"If-None-Match": before[path].headers["ETag"]})
        assert stale.status_code == 200
    flat = after["/api/v1/environments/development/flags"].json
    assert flat["flags"]["banner"] is False
    assert flat["revision"] == built.git("rev-parse", "HEAD").strip()
    assert after["/api/v1/flags/banner"].json["resolved"]["development"]["value"] is False
    assert after["/api/v1/flags/banner"].json["updated_reason"] == "Hide the banner in development"
    assert after["/api/v1/audit"].json["items"][0]["subject"] == "Hide the banner in development"
    assert after["/api/v1/flags"].json["items"][0]["values"]["development"] == {
        "variant": "off",
        "value": False,
        "source": "environment",
    }
