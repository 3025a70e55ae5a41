"""What idle OFREP event streams cost flagserve, and how long a build takes to reach them all.

    python bench/stream_bench.py [--streams 10000] [--flags 0] [--seed 1] [--rounds 4]
                                 [--duration 6] [--warmup 2] [--connections 64] [--threads 2]
                                 [--fanout-rounds 5] [--cache bench/out]

The bundled flags/ (with --flags N, a generated tree of N flags, bench/gen_tree.py, cached as
build_bench.py caches it) is copied into a git repository of its own and built into OUT
(bench/push_bench.py), and `python -m server OUT` serves it on loopback with flagserve's
defaults (2 workers x 4 threads, each worker holding up to 10,000 connections). A separate
client process (this script with --client: asyncio, raw non-blocking sockets the event loop
watches, its file limit raised) opens --streams event streams,
`GET /ofrep/v1/events?environment=<env>[&application=<app>]`, at most 256 being opened at
once, and reads every byte of each (so the server never has a stream that does not drain).
It notes when each stream's event arrived: the kernel's receive timestamp (SO_TIMESTAMPNS),
taken as the server's bytes reach the socket, whatever the client is busy with then; and
when the client read it. Both on the monotonic clock, one clock for every process on Linux
(a receive timestamp is on time.time()'s clock, and is moved over at once). In one run:

1. Idle streams: the flat map `GET /api/v1/environments/production/flags?application=web`
   measured with wrk as bench/serve_bench.py measures it (--threads, --connections,
   --duration seconds after a --warmup run, keep-alive), with the streams open (spread over
   every environment, and over every application and none) and with none, against the same
   server, --rounds times each; the order alternates every round (without, with; with,
   without; ...) so both see the same machine state, and the streams are opened or closed
   between. Per round: requests per second and p99 of each, the ratios (target: the streams
   cost at most 1.2x in both) and the server's CPU time per request.
2. Memory: the server's resident memory (master and workers, bench/procfs.py) before and
   after each opening of the streams, the difference per 1,000 streams. The first opening
   is the figure: the workers keep what closed streams freed and the next openings reuse
   it. The RSS after each wrk run is shown too.
3. Fan-out: all the streams reopened on one environment (production, when flipping the
   flag changes what it serves). Each of --fanout-rounds rounds flips one flag that
   nothing depends on and commits it, runs `flagc build` as the builder loop does (a
   process), and times, from the build's publish moment (the `.current` link's time, as
   push_bench.py takes it) to each stream's event arriving: the first, p50, p99 and last
   stream; and to the client reading the last one.

The client runs on the same machine (2 cores here) as the server and wrk: its CPU, reading
the streams' keep-alive comments and events, competes with the server's, as wrk's does; its
CPU share during the wrk runs with streams is printed. The streams' keep-alive comments come
every 15 s (FLAGSERVE_STREAM_KEEPALIVE's default): a wrk run and its warm-up (8 s by
default) see one round of them at most.

Needs wrk (the Debian package): installed with apt-get when running as root, otherwise the
script says so and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from build_bench import leaf_flag, one_flag_commits, tree_for
from procfs import children, connections_held, rss_mb
from push_bench import landed, repository
from serve_bench import (
    ENVIRONMENT,
    HERE,
    ROOT,
    THREADS,
    WORKERS,
    Measure,
    Server,
    build,
    cpu_seconds,
    free_port,
    gunicorn_env,
    measure,
    process,
    require_tools,
    scenarios,
    wait_for,
)

from core.process import raise_file_limit
from core.snapshot import load

EVENTS = "/ofrep/v1/events"
OPENING = 256  # streams being opened at once by the client
OPEN_TIMEOUT = 30.0  # seconds for one stream's first bytes
FANOUT_TIMEOUT = 30.0  # seconds for every stream's event
RECEIVE = 65536  # bytes read at once from a stream
SO_TIMESTAMPNS = 35  # Linux (asm-generic/socket.h); Python's socket module names it not
TIMESPEC = struct.Struct("@ll")  # SCM_TIMESTAMPNS's struct timespec
ANCILLARY = socket.CMSG_SPACE(TIMESPEC.size)
TARGET_RATIO = 1.2  # the flat map with the streams open against without: req/s and p99
LOUD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")  # the server log's worth reading

Cell = tuple[str, str | None]  # a stream's environment and application (None: none)


# The client process: `stream_bench.py --client PORT`, told what to do on its standard input
# (a JSON object a line), answering each on its standard output (one a line).


class Follower:
    """One stream, on a raw non-blocking socket the event loop watches: reads every byte
    as it comes and notes when the first event since armed came (`event`): when it arrived
    (the kernel's receive timestamp, SO_TIMESTAMPNS, taken as the server's bytes reach the
    socket, whatever the client is doing then) and when the client read it, both on the
    monotonic clock, and its id."""

    def __init__(self, sock: socket.socket, opened: asyncio.Future[None]) -> None:
        self.sock = sock
        self.opened = opened
        self.partial = b""
        self.in_head = True
        self.alive = True
        self.keepalives = 0
        self.event: tuple[float, float, str] | None = None

    def readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(RECEIVE, ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.end(f"{type(exc).__name__}: {exc}")
            return
        read, wall = time.monotonic(), time.time()
        if not data:
            self.end("closed by the server")
            return
        arrived = read - (wall - kernel_time(ancillary, wall))
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if self.in_head:
                self._head(line)
            elif line.startswith(b"id: ") and self.event is None:
                self.event = (arrived, read, line[4:].decode())
            elif line == b": keep-alive":
                self.keepalives += 1
            elif line.startswith(b"retry: ") and not self.opened.done():
                self.opened.set_result(None)

    def _head(self, line: bytes) -> None:
        """A line of the answer's head (chunk sizes and SSE lines come after it)."""
        if line.startswith(b"HTTP/") and line.split()[1:2] != [b"200"]:
            self.end(f"answered {line.decode().strip()}")
        self.in_head = line not in (b"\r", b"")

    def end(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        if not self.opened.done():
            self.opened.set_exception(OSError(f"before its first bytes: {why}"))


def kernel_time(ancillary: list[tuple[int, int, bytes]], otherwise: float) -> float:
    """The receive timestamp (time.time()'s clock) in recvmsg's ancillary data, if any."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds / 1e9)
    return otherwise


class Followers:
    """The client's streams."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: list[Follower] = []

    async def open(self, cells: list[Cell]) -> dict[str, Any]:
        """Opens a stream for each cell; how many are held and why others are not."""
        started = time.monotonic()
        gate = asyncio.Semaphore(OPENING)
        errors: Counter[str] = Counter()

        async def one(cell: Cell) -> None:
            async with gate:
                try:
                    self.streams.append(await self._connect(cell))
                except (OSError, TimeoutError) as exc:
                    errors[f"{type(exc).__name__}: {exc}"] += 1

        await asyncio.gather(*(one(cell) for cell in cells))
        held = sum(stream.alive for stream in self.streams)
        took = time.monotonic() - started
        return {"held": held, "seconds": took, "errors": dict(errors)}

    async def _connect(self, cell: Cell) -> Follower:
        loop = asyncio.get_running_loop()
        environment, application = cell
        query = {"environment": environment}
        if application is not None:
            query["application"] = application
        request = (
            f"GET {EVENTS}?{urllib.parse.urlencode(query)} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", self.port))
            await loop.sock_sendall(sock, request)
        except BaseException:
            sock.close()
            raise
        follower = Follower(sock, loop.create_future())
        loop.add_reader(sock.fileno(), follower.readable)
        try:
            await asyncio.wait_for(asyncio.shield(follower.opened), OPEN_TIMEOUT)
        except BaseException:
            follower.end("given up")
            raise
        return follower

    def arm(self) -> dict[str, Any]:
        """Forget the events so far: the next one of each stream is timed."""
        for stream in self.streams:
            stream.event = None
        return self.count()

    async def collect(self, timeout: float) -> dict[str, Any]:
        """Wait until every live stream has had an event since armed (or `timeout`): when
        each arrived and was read, and its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(stream.event is not None for stream in self.streams if stream.alive):
                break
            await asyncio.sleep(0.005)
        arrivals = [stream.event for stream in self.streams if stream.event is not None]
        return {"arrivals": arrivals, **self.count()}

    def count(self) -> dict[str, Any]:
        alive = [stream for stream in self.streams if stream.alive]
        return {"alive": len(alive), "keepalives": sum(stream.keepalives for stream in alive)}

    def close(self) -> dict[str, Any]:
        """Closes every stream (the client first, as a browser leaving a page)."""
        streams, self.streams = self.streams, []
        for stream in streams:
            stream.end("closed by the client")
        return {"closed": len(streams)}

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        match command["do"]:
            case "open":
                return await self.open([(e, a) for e, a in command["cells"]])
            case "arm":
                return self.arm()
            case "collect":
                return await self.collect(command["timeout"])
            case "count":
                return self.count()
            case "close":
                return self.close()
        raise ValueError(f"unknown command {command!r}")


async def client(port: int) -> None:
    """Runs the commands on standard input until it ends."""
    raise_file_limit(1 << 20)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    followers = Followers(port)
    while line := await reader.readline():
        reply = await followers.handle(json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    followers.close()


# The bench: the server, the client process, wrk.


class Client:
    """The client process, seen from the bench."""

    def __init__(self, child: subprocess.Popen[bytes], log: Path) -> None:
        self.child = child
        self.log = log
        self.group = child.pid
        assert child.stdin is not None and child.stdout is not None
        self._input: IO[bytes] = child.stdin
        self._output: IO[bytes] = child.stdout

    def ask(self, **command: Any) -> dict[str, Any]:
        self._input.write(json.dumps(command).encode() + b"\n")
        self._input.flush()
        line = self._output.readline()
        if not line:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"the stream client stopped ({self.child.poll()}):\n{tail}")
        reply: dict[str, Any] = json.loads(line)
        return reply


@contextmanager
def client_process(port: int, work: Path) -> Iterator[Client]:
    """The client in a process group of its own, ended (the group, by its id) on the way
    out; it also ends by itself when its standard input closes (the bench died)."""
    log = work / "client.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--client", str(port)]
    with log.open("wb") as errors:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,
        )
    try:
        yield Client(child, log)
    finally:
        with contextlib.suppress(OSError):
            assert child.stdin is not None
            child.stdin.close()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        finally:
            assert child.stdout is not None
            child.stdout.close()
            with contextlib.suppress(ProcessLookupError):  # anything it left behind
                os.killpg(child.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Opened:
    what: str  # which streams
    asked: int
    held: int  # by the client, its first bytes received
    in_workers: list[int]  # established connections each worker holds (bench/procfs.py)
    seconds: float
    errors: dict[str, int]
    rss_mb: tuple[float, float]  # the server's (master and workers): before, after

    @property
    def mb_per_1000(self) -> float:
        return (self.rss_mb[1] - self.rss_mb[0]) * 1000 / max(self.held, 1)


@dataclass(frozen=True)
class Phase:
    streams: int  # open during the wrk run (client side, at its end)
    measure: Measure
    rss_mb: float  # master and workers, after the run
    client_cpu: float  # the client's share of a core over the run (warm-up included)
    keepalives: int  # keep-alive comments the open streams had read by the run's end


@dataclass(frozen=True)
class Round:
    without: Phase
    with_streams: Phase
    streams_first: bool

    @property
    def throughput(self) -> float:
        """How many times more requests per second without the streams."""
        return (
            self.without.measure.requests_per_second / self.with_streams.measure.requests_per_second
        )

    @property
    def p99(self) -> float:
        return self.with_streams.measure.p99_ms / self.without.measure.p99_ms


@dataclass(frozen=True)
class Fanout:
    build_ms: float  # commit to published
    arrived_ms: list[float]  # published to each stream's event reaching its socket, sorted
    read_ms: list[float]  # published to the client reading it, sorted
    missing: int  # live streams with no event within FANOUT_TIMEOUT
    wrong: int  # events naming another tag than the build's


class Bench:
    def __init__(self, args: argparse.Namespace, stack: ExitStack, work: Path) -> None:
        self.args = args
        self.work = work
        self.repo, self.out = repository(args.tree, work), work / "out"
        build(self.repo, self.out)
        self.commits = one_flag_commits(self.repo, leaf_flag(self.repo))
        self.port, self.log = free_port(), work / "flagserve.log"
        command = [sys.executable, "-m", "server", str(self.out)]
        group = stack.enter_context(process(command, gunicorn_env(self.port), self.log))
        self.server = Server("flagserve", f"http://127.0.0.1:{self.port}", group)
        wait_for(self.server.url + "/readyz", self.log)
        self.client = stack.enter_context(client_process(self.port, work))
        snapshot = load(self.out, answers=False)
        self.flat = scenarios(snapshot.document)[0]
        environments, applications = snapshot.environments, [None, *snapshot.applications]
        self.spread: list[Cell] = [
            (
                environments[n % len(environments)],
                applications[n // len(environments) % len(applications)],
            )
            for n in range(args.streams)
        ]
        self.spread_over = (
            f"over {len(environments)} environments x {len(applications) - 1} applications or none"
        )
        self.opened: list[Opened] = []

    def rss_mb(self) -> float:
        return rss_mb([self.server.group, *children(self.server.group)])

    def open(self, what: str, cells: list[Cell]) -> Opened:
        before = self.rss_mb()
        reply = self.client.ask(do="open", cells=cells)
        time.sleep(0.5)  # the last streams' requests are done with
        workers = children(self.server.group)
        held = [connections_held([pid], self.port) for pid in workers]
        memory = (before, self.rss_mb())
        opened = Opened(
            what, len(cells), reply["held"], held, reply["seconds"], reply["errors"], memory
        )
        self.opened.append(opened)
        return opened

    def close(self) -> None:
        self.client.ask(do="close")
        time.sleep(1.0)  # the workers see each end and drop the stream (well within this)

    def phase(self) -> Phase:
        client_before = cpu_seconds(self.client.group)
        started = time.monotonic()
        measured, _ = measure(self.server, self.flat, self.work, self.args)
        client_cpu = (cpu_seconds(self.client.group) - client_before) / (time.monotonic() - started)
        count = self.client.ask(do="count")
        return Phase(count["alive"], measured, self.rss_mb(), client_cpu, count["keepalives"])

    def idle(self) -> list[Round]:
        """--rounds rounds of the flat map without and with the streams, the order
        alternating, the streams opened or closed between."""
        rounds: list[Round] = []
        streaming = False
        for number in range(self.args.rounds):
            phases: dict[bool, Phase] = {}
            order = (False, True) if number % 2 == 0 else (True, False)
            for wanted in order:
                if wanted and not streaming:
                    self.open(self.spread_over, self.spread)
                elif streaming and not wanted:
                    self.close()
                streaming = wanted
                phases[wanted] = self.phase()
                print(
                    f"round {number + 1}: measured {'with' if wanted else 'without'} streams",
                    file=sys.stderr,
                )
            rounds.append(Round(phases[False], phases[True], order[0]))
        if streaming:
            self.close()
        return rounds

    def flip(self) -> tuple[float, float]:
        """A flag flipped, committed and built: the monotonic times of the commit's start
        and of the build's publishing."""
        started = time.monotonic()
        next(self.commits)
        build(self.repo, self.out)
        return started, landed(self.out)

    def fanout(self) -> tuple[str, list[Fanout]]:
        """The streams on one environment that the flip changes; --fanout-rounds flips."""
        before = load(self.out, answers=False).definition_tags
        self.flip()  # which environments it changes (and flagc's caches warm)
        after = load(self.out, answers=False).definition_tags
        changed = [name for name in after if after[name] != before.get(name)]
        if not changed:
            raise SystemExit("flipping the flag changes what no environment serves")
        environment = ENVIRONMENT if ENVIRONMENT in changed else changed[0]
        applications = [None, *load(self.out, answers=False).applications]
        cells = [
            (environment, applications[n % len(applications)]) for n in range(self.args.streams)
        ]
        self.open(f"all on {environment}", cells)
        results = []
        for number in range(self.args.fanout_rounds):
            time.sleep(1.0)  # apart: every worker idle, the last round's traffic settled
            self.client.ask(do="arm")
            started, published = self.flip()
            reply = self.client.ask(do="collect", timeout=FANOUT_TIMEOUT)
            tag = load(self.out, answers=False).definition_tags[environment]
            arrivals = reply["arrivals"]
            arrived = sorted((at - published) * 1000 for at, _, _ in arrivals)
            read = sorted((at - published) * 1000 for _, at, _ in arrivals)
            missing = reply["alive"] - len(arrivals)
            wrong = sum(found != tag for _, _, found in arrivals)
            build_ms = (published - started) * 1000
            results.append(Fanout(build_ms, arrived, read, missing, wrong))
            print(f"fan-out round {number + 1}: {len(arrivals)} events", file=sys.stderr)
        self.close()
        return environment, results


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank."""
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


def opened_report(opened: list[Opened]) -> list[str]:
    lines = ["streams opened (the client's count; the workers' established connections, /proc):"]
    for number, item in enumerate(opened, start=1):
        workers = " + ".join(str(count) for count in item.in_workers)
        lines.append(
            f"{number}. {item.what}: {item.asked} asked, {item.held} held (in the workers: "
            f"{workers}), in {item.seconds:.1f} s ({item.held / max(item.seconds, 1e-9):.0f}/s); "
            f"RSS {item.rss_mb[0]:.1f} -> {item.rss_mb[1]:.1f} MB, "
            f"{item.mb_per_1000:.2f} MB per 1,000"
        )
        if item.errors:
            lines += [f"   not held: {count} x {why}" for why, count in item.errors.items()]
    lines.append(
        f"RSS per 1,000 streams: {opened[0].mb_per_1000:.2f} MB (master + workers, the first "
        "opening, on workers that never held a stream; later openings reuse some of what the "
        "closed streams freed, which the workers keep)"
    )
    return lines


def idle_report(rounds: list[Round], args: argparse.Namespace) -> list[str]:
    lines = [
        f"flat map, wrk -t{args.threads} -c{args.connections} -d{args.duration}s (warm-up "
        f"{args.warmup}s), without and with the streams, round by round:",
        f"{'round':<7}{'first':<9}{'req/s w/o':>10}{'req/s with':>11}{'slower':>8}"
        f"{'p99 w/o':>9}{'p99 with':>9}{'p99 x':>7}{'us/req w/o':>11}{'us/req with':>12}"
        f"{'RSS w/o':>9}{'RSS with':>9}{'streams':>8}{'client':>7}",
    ]
    for number, item in enumerate(rounds, start=1):
        a, b = item.without, item.with_streams
        lines.append(
            f"{number:<7}{'with' if item.streams_first else 'without':<9}"
            f"{a.measure.requests_per_second:>10.0f}{b.measure.requests_per_second:>11.0f}"
            f"{item.throughput:>7.2f}x{a.measure.p99_ms:>9.2f}{b.measure.p99_ms:>9.2f}"
            f"{item.p99:>6.2f}x{a.measure.cpu_us:>11.0f}{b.measure.cpu_us:>12.0f}"
            f"{a.rss_mb:>9.1f}{b.rss_mb:>9.1f}{b.streams:>8}"
            f"{b.client_cpu:>6.0%}"
            + "".join(f"  ({m.errors})" for m in (a.measure, b.measure) if m.errors)
        )
    throughput = statistics.median(item.throughput for item in rounds)
    p99 = statistics.median(item.p99 for item in rounds)
    met = throughput <= TARGET_RATIO and p99 <= TARGET_RATIO
    return [
        *lines,
        "slower: req/s without over req/s with; p99 x: p99 with over p99 without (ms); us/req: "
        "the server's CPU time per request; RSS: master + workers, MB, after the run; "
        "streams: held by the client after the run; client: its CPU, share of one core, "
        "during the run with streams",
        f"median over {len(rounds)} rounds: {throughput:.2f}x fewer req/s and p99 {p99:.2f}x "
        f"with the streams (target <= {TARGET_RATIO}x both: {'met' if met else 'NOT met'})",
        f"keep-alive comments the streams had read by the end of a run: up to "
        f"{max(item.with_streams.keepalives for item in rounds)}",
    ]


def fanout_report(environment: str, rounds: list[Fanout], streams: int) -> list[str]:
    lines = [
        f"fan-out: {streams} streams on {environment}; a flag flipped, committed, `flagc build`; "
        "ms from the build's publishing to each stream's event arriving (and read by the client)",
        f"{'round':<7}{'build':>7}{'events':>8}{'first':>8}{'p50':>8}{'p99':>8}{'last':>8}"
        f"{'read p50':>10}{'read last':>10}{'missing':>8}{'wrong':>6}",
    ]
    for number, item in enumerate(rounds, start=1):
        d, r = item.arrived_ms, item.read_ms
        lines.append(
            f"{number:<7}{item.build_ms:>7.0f}{len(d):>8}{quantile(d, 0):>8.1f}"
            f"{quantile(d, 0.5):>8.1f}{quantile(d, 0.99):>8.1f}{quantile(d, 1):>8.1f}"
            f"{quantile(r, 0.5):>10.1f}{quantile(r, 1):>10.1f}{item.missing:>8}{item.wrong:>6}"
        )
    columns = [[quantile(item.arrived_ms, q) for item in rounds] for q in (0.0, 0.5, 0.99, 1.0)]
    first, p50, p99, last = (statistics.median(column) for column in columns)
    read_last = statistics.median(quantile(item.read_ms, 1) for item in rounds)
    return [
        *lines,
        "build: from the commit's start to the build's publishing (`.current`'s time, which the "
        "file system takes from a clock a tick coarse: up to a few ms early), ms; first .. last: "
        "the event reaching each stream's socket (kernel receive timestamp); read: the client "
        "process reading it (its own CPU, one core for all the streams, comes on top); "
        "missing: streams with no event within 30 s; wrong: events naming another tag",
        f"median over {len(rounds)} rounds: first {first:.1f}, p50 {p50:.1f}, p99 {p99:.1f}, "
        f"last {last:.1f} ms (read by the client: last {read_last:.1f} ms); the slowest last "
        f"{max(columns[3]):.1f} ms",
    ]


def server_warnings(log: Path) -> list[str]:
    """The server's log lines of level WARNING and above (the first 10 distinct ones)."""
    lines = log.read_text(errors="replace").splitlines()
    found = [line.strip() for line in lines if LOUD.search(line)]
    return list(dict.fromkeys(found))[:10]


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--flags", type=int, default=0, help="0: the bundled flags/")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4, help="wrk runs each, with and without")
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run (0: none)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fanout-rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=HERE / "out", help="default: bench/out")
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds as Ctrl-C does: the server and the client are ended, OUT removed."""

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    if args.client is not None:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(client(args.client))
        return 0
    require_tools(["wrk"])
    stop_on_sigterm()
    args.tree = tree_for(args.flags, args.seed, args.cache) if args.flags else ROOT / "flags"
    load_before = os.getloadavg()[0]
    os.environ["GIT_OPTIONAL_LOCKS"] = "0"
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stream-bench-")))
        bench = Bench(args, stack, work)
        rounds = bench.idle()
        environment, fanouts = bench.fanout()
        warnings = server_warnings(bench.log)
        opened = bench.opened
    flags = f"{args.flags} flags" if args.flags else "the bundled flags/"
    lines = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {flags}; flagserve {WORKERS} "
        f"workers x {THREADS} threads; {args.streams} streams; client, server and wrk on one "
        f"machine; load average before {load_before:.2f}",
        *opened_report(opened),
        "",
        *idle_report(rounds, args),
        "",
        *fanout_report(environment, fanouts, args.streams),
        "",
        f"load average after {os.getloadavg()[0]:.2f}",
        *(f"server log: {line}" for line in warnings),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
