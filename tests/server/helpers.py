"""What the server's tests share beyond fixtures: flagserve started as operators start it
(`flagserve` with options, plain gunicorn with FLAGSERVE_* variables) and waited on, what its
logs say, the API keys file the access tests use, a metric's value in this process, the
hostile text the dashboard must show as text, flags whose value depends on the context
through a dependency, an OFREP event stream read as EventSource reads it, and an OpenFeature
client of flagd's own provider reading a file. Test modules import these from here, never
from one another."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import requests
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from prometheus_client import REGISTRY

from bench.procfs import children
from server import metrics
from server.auth import digest
from tests.conftest import GIT_ENV
from tests.server.conftest import ROOT, Live, free_port, stop_server

HOSTILE = "<script>document.title='pwned'</script>"  # flag text that must stay text on a page

# For the dashboard's marks: search-results has no rules, but search-ranking, which it needs,
# has one in production; so search-results depends on the context there, except on ios,
# where it is off whatever it needs.
GATED = {
    "search/search-ranking.yaml": (
        "description: Ranking\nowner: team-search\nenabled: true\n"
        "environments:\n  production:\n    rules:\n      - when: {country: [NL]}\n"
        "        serve: on\n"
    ),
    "search/search-results.yaml": (
        "description: Results\nowner: team-search\nenabled: true\n"
        "applications:\n  ios: false\ndepends_on: [search-ranking]\n"
    ),
}

FLAT = "/api/v1/environments/production/flags"
SECRET = "s3cret-key-for-ops-0123456789"
STAGING_SECRET = "staging-only-key-abcdefghij"
GUNICORN = ("-m", "gunicorn", "-c", "python:server.gunicorn_conf", "server.wsgi:app")


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without FLAGSERVE_* (tests set what they test), quick
    reloads, and `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGSERVE_", "PROMETHEUS"))}
    return {**base, **GIT_ENV, "FLAGSERVE_RELOAD_INTERVAL": "0.2", **(extra or {})}


def keys_file(path: Path) -> Path:
    """An API keys file: `ops` may read everything, `staging` only staging."""
    path.write_text(
        f"- name: ops\n  sha256: {digest(SECRET.encode())}\n  environments: ['*']\n"
        f"- name: staging\n  sha256: {digest(STAGING_SECRET.encode())}\n"
        "  environments: [staging]\n",
        encoding="utf-8",
    )
    return path


def launch(
    arguments: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    port: int | None = None,
    command: tuple[str, ...] = ("-m", "server"),
) -> Live:
    """Start `python COMMAND ARGUMENTS` (flagserve by default) and wait until /readyz
    answers on `port` (FLAGSERVE_BIND's unless given)."""
    variables = environment(env)
    if port is None:
        port = free_port()
        variables.setdefault("FLAGSERVE_BIND", f"127.0.0.1:{port}")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, *command, *arguments],
            cwd=ROOT,
            env=variables,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    live = Live(f"http://127.0.0.1:{port}", process, log)
    wait_until(lambda: _ready(live), timeout=30, what=f"flagserve ready on {port}", live=live)
    return live


@contextmanager
def running(
    arguments: list[str], log: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[Live]:
    live = launch(arguments, log, env, **kwargs)
    try:
        yield live
    finally:
        stop_server(live)


def _ready(live: Live) -> bool:
    if live.process.poll() is not None:
        raise AssertionError(f"exited {live.process.returncode}: {live.log.read_text()}")
    try:
        return live.get("/readyz").status_code == 200
    except requests.ConnectionError:
        return False


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10, what: str = "", live: Live | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    if live is not None:
        stop_server(live)
    raise AssertionError(
        f"timed out waiting for {what}" + (f": {live.log.read_text()}" if live else "")
    )


def finish(
    arguments: list[str], env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run `python -m server ARGUMENTS` to its end (a start-up that must fail)."""
    command: tuple[str, ...] = kwargs.pop("command", ("-m", "server"))
    variables = environment({"FLAGSERVE_BIND": f"127.0.0.1:{free_port()}", **(env or {})})
    return subprocess.run(
        [sys.executable, *command, *arguments],
        cwd=ROOT,
        env=variables,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        **kwargs,
    )


def workers(master: int) -> list[int]:
    """The pids of the master's child processes (its workers)."""
    return children(master)


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of a JSON log, parsed (an AssertionError names a line that is not JSON)."""
    lines = []
    for line in log.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return lines


def access_lines(log: Path) -> list[dict[str, Any]]:
    return [line for line in json_lines(log) if line["logger"] == "flagserve.access"]


BANNER_ON = "description: Free shipping banner\nowner: team-growth\nenabled: true\n"


def evaluate(live: Live, key: str, context: dict[str, str]) -> Any:
    answer = live.post(
        f"/ofrep/v1/evaluate/flags/{key}",
        json={"context": context},
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["value"]


def check_configured(
    live: Live, metrics_port: int, workers_expected: int, threads_expected: int
) -> None:
    """What test_plain_gunicorn_reads_every_variable and test_cli's options test set."""
    wait_until(lambda: len(workers(live.process.pid)) == workers_expected, what="the workers")
    started = [
        line["message"] for line in json_lines(live.log) if "flagserve: serving" in line["message"]
    ]
    assert f"with {workers_expected} workers x {threads_expected} threads" in started[0]
    assert live.get(FLAT).status_code == 401  # API keys
    assert live.get(FLAT, headers={"Authorization": f"Bearer {SECRET}"}).status_code == 200
    assert evaluate(live, "banner", {}) is True  # the default environment: development
    assert live.get("/metrics").status_code == 404  # /metrics has its own port
    scraped = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert scraped.status_code == 200

    def counted() -> bool:  # workers record requests within FLUSH_EVERY seconds
        found = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        return "flagserve_requests_total{" in found

    wait_until(counted, what="the workers' requests in the master's /metrics")


def sample(name: str, **labels: str) -> float:
    """A metric's value in this process's registry (0 when it has no such sample yet)."""
    metrics.flush()  # as a scrape does first: requests are recorded in batches
    return REGISTRY.get_sample_value(name, labels) or 0.0


def split(path: str) -> tuple[str, str]:
    """A path with a query: (the route, the query)."""
    route, _, query = path.partition("?")
    return route, query


def request(
    client: falcon.testing.TestClient, method: str, path: str, **headers: str
) -> falcon.testing.Result:
    """`client` asked `method path?query`, with headers named as keywords (`If_None_Match`
    for If-None-Match)."""
    route, query = split(path)
    return client.simulate_request(
        method,
        route,
        query_string=query,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


@dataclass
class Listener:
    """A stream read the way EventSource reads it (HTTP/1.1, chunked): events as dicts,
    comments counted, over a plain socket so that each wait is bounded."""

    live: Live
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, str]] = field(default_factory=list)
    comments: int = 0

    def __post_init__(self) -> None:
        port = urlsplit(self.live.url).port
        self.sock = socket.create_connection(("127.0.0.1", port or 80), timeout=10)
        lines = [f"GET {self.path} HTTP/1.1", "Host: flagserve", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._raw = b""
        self._text = b""  # the content, unchunked, not yet parsed into events
        self._fields: dict[str, str] = {}
        while b"\r\n\r\n" not in self._raw:
            assert self._receive(time.monotonic() + 10), "no answer"
        head, _, self._raw = self._raw.partition(b"\r\n\r\n")
        status, *fields = head.decode("latin-1").split("\r\n")
        self.status = int(status.split()[1])
        self.head = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}

    def _receive(self, deadline: float) -> bool:
        """Bytes from the connection until `deadline`: False when none came; AssertionError
        when the connection ended."""
        ready, _, _ = select.select([self.sock], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("the stream ended")
        self._raw += data
        return True

    def _unchunk(self) -> None:
        while b"\r\n" in self._raw:
            size_line, _, rest = self._raw.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                raise AssertionError("the stream ended (its last chunk)")
            if len(rest) < size + 2:
                return
            self._text += rest[:size]
            self._raw = rest[size + 2 :]

    def read_until(self, seconds: float, *, events: int = 1) -> float:
        """Read until `events` events in all have come (or `seconds` have passed); returns
        when the last one came (time.monotonic())."""
        deadline = time.monotonic() + seconds
        came = 0.0
        while len(self.events) < events:
            self._unchunk()
            while b"\n" in self._text and len(self.events) < events:
                line, _, self._text = self._text.partition(b"\n")
                if self._line(line.decode()):
                    came = time.monotonic()
            if len(self.events) >= events or not self._receive(deadline):
                break
        return came

    def _line(self, line: str) -> bool:
        """One line of the stream; True when it ended an event."""
        if not line:  # an event is dispatched only when it has data (as EventSource does)
            found, self._fields = self._fields, {}
            if "data" in found:
                self.events.append(found)
            return "data" in found
        if line.startswith(":"):
            self.comments += 1
        else:
            name, _, value = line.partition(": ")
            self._fields[name] = value
        return False

    def close(self) -> None:
        self.sock.close()


@contextmanager
def flagd_client(path: Path, poll_ms: int = 100) -> Iterator[OpenFeatureClient]:
    """An OpenFeature client whose provider is flagd's, reading `path` in file mode (it
    looks at the file's modification time every `poll_ms`), in a domain of its own."""
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(path), deadline_ms=poll_ms
    )
    domain = f"flagd-{uuid.uuid4().hex}"
    api.set_provider_and_wait(provider, domain)
    try:
        yield api.get_client(domain)
    finally:
        api.clear_providers()  # shuts the provider down: its watcher stops after one more look
        watcher = getattr(getattr(provider.resolver, "connector", None), "thread", None)
        if isinstance(watcher, threading.Thread):  # wait for that look, before a test
            watcher.join(timeout=30)  # removes the file and the look would log its absence
