"""From a build landing in OUT to every flagserve worker serving it: noticed by inotify
against the poll it replaced.

    python bench/notice_bench.py [--flags 0] [--seed 1] [--rounds 20] [--poll-rounds 10]
                                 [--connections 8] [--pause 1] [--cache bench/out]

The bundled flags/ (with --flags N, a generated tree of N flags, bench/gen_tree.py, cached
as build_bench.py caches it) is built once into OUT with `flagc build`. Builds derived from
it, each with a revision of its own, are rendered beforehand, so that only landing is timed:
each round publishes one into OUT as flagc does (`compiler.publish`: the complete set in a
build directory of its own, then the `.current` link renamed into place) and takes the time
from `publish` returning to the moment every one of --connections kept-alive connections
(spread over the workers by flagserve's worker class) has answered the flat map with the new
revision: the connections ask in turn, one pass after the other, --pause ms apart (asking
without a pause takes a core from the server, which reloads in a thread beside them).

Two servers in one run, both `python -m server OUT` with the default workers and threads,
on free loopback ports: `notify` (the default: inotify, server.watch) and `poll`
(FLAGSERVE_RELOAD_NOTIFY=off and the default 2 s interval: how flagserve noticed a build
before). The notify server also serves flagd's sync protocol (FLAGSERVE_SYNC_BIND), and
`grpc` is the time from landed to a `SyncFlags` stream's message with the new revision.
For each: p50, p99 and the slowest round, in milliseconds, and the ratio of the p99s.
`load` is what loading and verifying one build takes in this process (core.snapshot.load,
best of 3), the part of every round no notice can save.

The target (the push issue): landed -> served, p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import orjson
from build_bench import tree_for
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from serve_bench import ROOT, build, free_port, gunicorn_env, process, wait_for

from compiler import emit, publish
from core import canonical, flagd
from core.snapshot import load

ENVIRONMENT = "production"
FLAT = f"/api/v1/environments/{ENVIRONMENT}/flags"
TARGET_P99_MS = 100.0


class Builds:
    """Builds derived from the one in OUT, each a new revision with a complete, consistent
    set of outputs (the audit log's head is the revision, as flagserve verifies)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.base = orjson.loads((out / "snapshot.json").read_bytes())
        self.audit = orjson.loads((out / "audit.json").read_bytes())

    def render(self, number: int) -> tuple[str, bytes, bytes, dict[str, bytes]]:
        revision = f"{number:040x}"
        content = {k: v for k, v in self.base.items() if k not in ("digest", "revision")}
        key = sorted(content["flags"])[0]
        flags = dict(content["flags"])
        flags[key] = {**flags[key], "description": f"bench build {number}"}
        snapshot = emit.render({**content, "flags": flags}, revision).data
        audit = canonical.serialize({**self.audit, "head": revision})
        return revision, snapshot, audit, flagd.definitions(orjson.loads(snapshot))

    def land(self, made: tuple[str, bytes, bytes, dict[str, bytes]]) -> float:
        """Publish `made`; the monotonic time when it has landed."""
        _, snapshot, audit, definitions = made
        with publish.locked(self.out):
            publish.publish(self.out, snapshot, audit, definitions)
        return time.monotonic()


class Clients:
    """Kept-alive connections to one server, each asking for the flat map in turn."""

    def __init__(self, port: int, count: int, pause: float) -> None:
        self.port, self.pause = port, pause
        self.connections = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(count)]

    def revision(self, connection: http.client.HTTPConnection) -> str:
        connection.request("GET", FLAT)
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"the flat map answered {answer.status}: {body[:200]!r}")
        revision: str = orjson.loads(body)["revision"]
        return revision

    def served(self, revision: str, landed: float, timeout: float = 30) -> float:
        """Seconds from `landed` until every connection has answered `revision`."""
        waiting = list(self.connections)
        while waiting:
            waiting = [c for c in waiting if self.revision(c) != revision]
            time.sleep(self.pause)
            if time.monotonic() - landed > timeout:
                raise SystemExit(f"{revision} was not served within {timeout:.0f} s")
        return time.monotonic() - landed

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


class Arrivals:
    """A client that follows flagserve in a thread: when each revision first reached it
    (`arrived`, filled by the thread), and how long after a build landed."""

    client = "the stream"  # what the client is, in a timeout's message

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    def pushed(self, revision: str, landed: float, timeout: float = 30) -> float:
        """Seconds from `landed` until the client had `revision`."""
        while revision not in self.arrived:
            if time.monotonic() - landed > timeout:
                raise SystemExit(f"{revision} did not reach {self.client} in {timeout:.0f} s")
            time.sleep(0.001)
        return self.arrived[revision] - landed


class Stream(Arrivals):
    """A flagd sync stream (`SyncFlags`, the stubs flagd's provider ships), read in a
    thread: when each revision arrived."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        stub = sync_pb2_grpc.FlagSyncServiceStub(self.channel)
        selector = [("flagd-selector", ENVIRONMENT)]
        self.calls = stub.SyncFlags(sync_pb2.SyncFlagsRequest(), metadata=selector)
        super().__init__()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for message in self.calls:
                document = json.loads(message.flag_configuration)
                self.arrived[document["metadata"]["revision"]] = time.monotonic()
        except grpc.RpcError:  # cancelled at the end
            pass

    def close(self) -> None:
        self.calls.cancel()
        self.channel.close()


@contextmanager
def server(
    out: Path, work: Path, name: str, connections: int, pause: float, **env: str
) -> Iterator[Clients]:
    port = free_port()
    log = work / f"{name}.log"
    command = [sys.executable, "-m", "server", str(out)]
    with process(command, gunicorn_env(port, **env), log):
        wait_for(f"http://127.0.0.1:{port}/readyz", log)
        clients = Clients(port, connections, pause)
        try:
            yield clients
        finally:
            clients.close()


def rounds(
    builds: Builds, clients: Clients, count: int, first: int, stream: Stream | None = None
) -> tuple[list[float], list[float]]:
    """Milliseconds from landed to served, for `count` builds; and to pushed on `stream`."""
    made = [builds.render(number) for number in range(first, first + count)]
    served, pushed = [], []
    for build_ in made:
        time.sleep(0.2)  # apart: each round starts with every worker idle
        landed = builds.land(build_)
        served.append(clients.served(build_[0], landed) * 1000)
        if stream is not None:
            pushed.append(stream.pushed(build_[0], landed) * 1000)
    return served, pushed


def p99(timings: list[float]) -> float:
    """The 99th percentile, nearest rank (of 20 rounds: the slowest)."""
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def summary(name: str, timings: list[float]) -> str:
    return (
        f"{name:<8}{len(timings):>7}{statistics.median(timings):>10.1f}{p99(timings):>10.1f}"
        f"{max(timings):>10.1f}"
    )


def arguments(
    doc: str, more: Callable[[argparse.ArgumentParser], None] | None = None
) -> tuple[argparse.Namespace, Path]:
    """The options this bench and push_bench.py share (and `more` of the caller's own), and
    the flags tree they name."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    if more is not None:
        more(parser)
    parser.add_argument("--flags", type=int, default=0, help="0: the bundled flags/")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--poll-rounds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--pause", type=float, default=1.0, help="ms between the passes")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    tree = tree_for(args.flags, args.seed, args.cache) if args.flags else ROOT / "flags"
    return args, tree


def main() -> int:
    args, tree = arguments(__doc__ or "")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="notice-bench-")))
        out = work / "out"
        build(tree, out)
        builds = Builds(out)
        loads = []
        for _ in range(3):
            started = time.perf_counter()
            load(out)
            loads.append(time.perf_counter() - started)
        pause = args.pause / 1000
        address = f"127.0.0.1:{free_port()}"
        syncing = {"FLAGSERVE_SYNC_BIND": address}
        with server(out, work, "notify", args.connections, pause, **syncing) as clients:
            stream = Stream(address)
            try:
                notified, pushed = rounds(builds, clients, args.rounds, 1, stream)
            finally:
                stream.close()
        polling = {"FLAGSERVE_RELOAD_NOTIFY": "off"}
        with server(out, work, "poll", args.connections, pause, **polling) as clients:
            polled, _ = rounds(builds, clients, args.poll_rounds, 1000)
    flags = f"{args.flags} flags" if args.flags else "the bundled flags/"
    print(f"landed -> served by every connection ({args.connections}), {flags}, ms")
    print(f"{'server':<8}{'rounds':>7}{'p50':>10}{'p99':>10}{'max':>10}")
    print(summary("notify", notified))
    print(summary("poll", polled))
    print(summary("grpc", pushed) + "   (flagd sync: the SyncFlags stream's message)")
    print(f"load: {min(loads) * 1000:.1f} ms (core.snapshot.load, best of 3)")
    ratio = p99(polled) / p99(notified)
    verdict = "met" if p99(notified) < TARGET_P99_MS else "not met"
    print(f"p99 poll / notify: {ratio:.1f}x; target p99 < {TARGET_P99_MS:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
