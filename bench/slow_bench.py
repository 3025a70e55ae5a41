"""How flagserve answers a normal client while many others send their requests slowly.

    python bench/slow_bench.py [--flags 2000] [--seed 1] [--connections 1000]
                               [--duration 30] [--interval 2] [--cache bench/out]

A synthetic tree of --flags flags (bench/gen_tree.py, as serve_bench.py) is built with
`flagc build` and served by `python -m server OUT` with its defaults (2 workers x 4
threads, header timeout 10 s) on loopback. Then, in one run:

- baseline: for --duration seconds a normal client asks, one request at a time each on a
  new connection, for `/healthz` and the flat map
  `GET /api/v1/environments/production/flags?application=web`, in turns;
- slow clients: the same normal client while --connections other connections stay open:
  half send a request a byte every --interval seconds and never finish it, half send
  nothing. The server closes each once its header timeout passes; the attacker opens
  another at once, so about --connections are held throughout.

It prints, for both phases, the normal client's requests, failures (no answer within 5 s,
or not 200), p50, p99 and max latency; the slow connections held (on the attacker's side,
and in the workers, read from /proc); the workers' RSS; and the ratio of the attacked p99 to
the baseline's. Target (issue 12): p99 under 1 s while 1,000 slow connections are held.
"""

from __future__ import annotations

import argparse
import http.client
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from build_bench import tree_for
from procfs import children, connections_held, rss_mb
from serve_bench import HERE, build, free_port, gunicorn_env, process, wait_for

PATHS = ("/healthz", "/api/v1/environments/production/flags?application=web")
TARGET_P99 = 1.0  # seconds
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 4000


@dataclass(frozen=True)
class Phase:
    name: str
    latencies: list[float]  # seconds, answered requests
    failures: int
    held: tuple[int, int]  # slow connections held: by the attacker, by the workers (mean)
    rss_mb: float  # the workers' resident memory, summed, at the end


def normal_client(port: int, stop: threading.Event) -> tuple[list[float], int]:
    """Requests one at a time until `stop`: latencies of the 200s, and the failures."""
    latencies, failures, turn = [], 0, 0
    while not stop.is_set():
        path = PATHS[turn % len(PATHS)]
        turn += 1
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            answer = connection.getresponse()
            answer.read()
            connection.close()
            ok = answer.status == 200
        except OSError:
            ok = False
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            failures += 1
        time.sleep(0.02)
    return latencies, failures


class Attacker:
    """About `count` connections that never finish a request: half send a byte every
    `interval` seconds, half nothing; one the server closes is opened again."""

    def __init__(self, port: int, count: int, interval: float) -> None:
        self.port, self.count, self.interval = port, count, interval
        self.selector = selectors.DefaultSelector()
        self.sent: dict[socket.socket, int] = {}  # bytes sent (-1: a silent one)
        self.next_send = 0.0
        self.reopened = 0

    def open(self, silent: bool) -> None:
        try:
            client = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        client.setblocking(False)
        self.sent[client] = -1 if silent else 0
        self.selector.register(client, selectors.EVENT_READ)

    def close(self, client: socket.socket) -> None:
        self.selector.unregister(client)
        silent = self.sent.pop(client) < 0
        client.close()
        self.reopened += 1
        self.open(silent)

    def run(self, stop: threading.Event) -> None:
        for number in range(self.count):
            self.open(silent=number % 2 == 1)
        while not stop.is_set():
            for key, _ in self.selector.select(0.1):  # an answer (408) or a close
                client = key.fileobj
                assert isinstance(client, socket.socket)
                self.close(client)
            if time.monotonic() >= self.next_send:
                self.next_send = time.monotonic() + self.interval
                self.dribble()
        for client in list(self.sent):
            self.selector.unregister(client)
            client.close()
        self.sent.clear()

    def dribble(self) -> None:
        for client, sent in list(self.sent.items()):
            if sent < 0 or client not in self.sent:
                continue
            try:
                client.send(PARTIAL[sent % len(PARTIAL) : sent % len(PARTIAL) + 1])
                self.sent[client] = sent + 1
            except OSError:
                self.close(client)


def phase(name: str, port: int, master: int, args: argparse.Namespace, slow: int) -> Phase:
    stop = threading.Event()
    attacker = Attacker(port, slow, args.interval)
    attack = threading.Thread(target=attacker.run, args=(stop,), daemon=True)
    if slow:
        attack.start()
        time.sleep(3)  # the connections are open
    result: list[tuple[list[float], int]] = []
    client = threading.Thread(target=lambda: result.append(normal_client(port, stop)))
    client.start()
    held_samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        time.sleep(1)
        pids = children(master)
        held_samples.append((len(attacker.sent), connections_held(pids, port) if pids else 0))
    memory = rss_mb(children(master))
    stop.set()
    client.join()
    if slow:
        attack.join()
    latencies, failures = result[0]
    held = tuple(round(statistics.mean(sample[i] for sample in held_samples)) for i in (0, 1))
    return Phase(name, latencies, failures, (held[0], held[1]), memory)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(phases: list[Phase], args: argparse.Namespace) -> str:
    lines = [
        f"slow_bench: {args.flags} flags, flagserve 2 workers x 4 threads, header timeout 10 s; "
        f"--connections {args.connections} slow (a byte every {args.interval:g} s, or none), "
        f"{args.duration} s a phase; load average {os.getloadavg()[0]:.1f}",
        f"{'phase':<14}{'requests':>9}{'failed':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'held (client/server)':>22}{'RSS MB':>8}",
    ]
    for item in phases:
        ms = [1000 * quantile(item.latencies, q) for q in (0.5, 0.99, 1.0)]
        lines.append(
            f"{item.name:<14}{len(item.latencies):>9}{item.failures:>7}"
            f"{ms[0]:>9.1f}{ms[1]:>9.1f}{ms[2]:>9.1f}"
            f"{f'{item.held[0]}/{item.held[1]}':>22}{item.rss_mb:>8.0f}"
        )
    base, attacked = phases
    p99 = quantile(attacked.latencies, 0.99)
    ratio = p99 / quantile(base.latencies, 0.99)
    met = p99 < TARGET_P99 and attacked.failures == 0
    lines.append(
        f"p99 under slow clients: {1000 * p99:.1f} ms ({ratio:.2f}x the baseline's); "
        f"target p99 < {TARGET_P99:g} s and no failure: {'met' if met else 'NOT met'}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=30, help="seconds a phase")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between bytes")
    parser.add_argument("--cache", type=Path, default=HERE / "out", help="default: bench/out")
    args = parser.parse_args(argv)
    os.environ["GIT_OPTIONAL_LOCKS"] = "0"
    with tempfile.TemporaryDirectory(prefix="slow-bench-") as work, ExitStack() as stack:
        out = Path(work) / "out"
        build(tree_for(args.flags, args.seed, args.cache), out)
        port, log = free_port(), Path(work) / "flagserve.log"
        command = [sys.executable, "-m", "server", str(out)]
        master = stack.enter_context(process(command, gunicorn_env(port), log))
        wait_for(f"http://127.0.0.1:{port}/readyz", log)
        phases = [
            phase("baseline", port, master, args, slow=0),
            phase("slow clients", port, master, args, slow=args.connections),
        ]
    print(report(phases, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
