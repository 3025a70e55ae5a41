"""The whole path of a change, measured: a commit in a flags repository -> `flagc build` ->
flagserve -> its clients, each segment and the total, pushed against polled.

    python bench/push_bench.py [--flags 0] [--seed 1] [--rounds 20] [--poll-rounds 10]
                               [--connections 8] [--pause 1] [--cache bench/out]
                               [--resident SECONDS]

The bundled flags/ (with --flags N, a generated tree, bench/gen_tree.py) is copied into a
git repository of its own, each of its commits checked out into a work tree of its own
behind a link swapped in by one rename, as git-sync serves the Kubernetes builder (a
builder never sees a change's files before its commit), and built into OUT. flagserve
serves OUT (`python -m server OUT`, default workers and threads) with flagd's sync protocol
on (FLAGSERVE_SYNC_BIND), and a flagd sync stream (`SyncFlags`, the stubs flagd's provider
ships) and --connections kept-alive HTTP clients of the flat map follow it
(bench/notice_bench.py). Each round flips one flag that nothing depends on and commits it,
then runs `flagc build` (a process, reusing OUT's last build); or, with --resident, `flagc
watch --interval SECONDS` builds it, as the Kubernetes builder does (one process that looks
at the flags folder every SECONDS and holds its last build). It times:

- commit: `git commit` of the change, and its checkout behind the link;
- build: `flagc build`, the build's own time, until it has published (the `.current`
  link's time: the process still tears down after that); with --resident, from the commit
  until `flagc watch` has published the commit's build (its wait for its next look at the
  repository included);
- served: from then until every HTTP connection answers the flat map with the new revision;
- pushed: from then until the flagd sync stream has the new definitions;
- OFREP: from then until an OFREP client as the web provider behaves (a bulk answer per
  environment, its event stream held, and on each event the bulk fetched again with
  `flagConfigEtag`) has the new revision;
- total: from the commit to served (and to pushed).

Then the same with the server that polls as flagserve did before (FLAGSERVE_RELOAD_NOTIFY
off, every 2 s) and no stream. The target (the push issue): total under 1 s plus the
build's own time, for the last of the three clients.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import installed
from build_bench import GIT_ENV, leaf_flag, one_flag_commits
from notice_bench import Arrivals, Clients, Stream, arguments, p99, server
from serve_bench import build, free_port


@dataclass
class Segments:
    """Milliseconds per round of each segment."""

    commit: list[float] = field(default_factory=list)
    build: list[float] = field(default_factory=list)
    served: list[float] = field(default_factory=list)
    pushed: list[float] = field(default_factory=list)
    ofrep: list[float] = field(default_factory=list)

    def totals(self, after: list[float]) -> list[float]:
        return [c + b + a for c, b, a in zip(self.commit, self.build, after, strict=True)]


class OfrepStreams(Arrivals):
    """OFREP clients that behave as the web provider does, one per environment, each in a
    thread: a bulk answer, its event stream held, and on each `refetchEvaluation` the bulk
    fetched again with `flagConfigEtag`; when each revision first arrived (whichever
    environment the change was in)."""

    client = "the OFREP client"

    def __init__(self, port: int, environments: list[str]) -> None:
        super().__init__()
        self.port = port
        self.sockets: list[socket.socket] = []
        for environment in environments:
            threading.Thread(target=self._follow, args=(environment,), daemon=True).start()

    def _bulk(self, connection: http.client.HTTPConnection, environment: str, query: str) -> Any:
        body = json.dumps({"context": {"environment": environment}})
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/ofrep/v1/evaluate/flags" + query, body, headers)
        return json.loads(connection.getresponse().read())

    def _follow(self, environment: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        first = self._bulk(connection, environment, "")
        uri = first["eventStreams"][0]["endpoint"]["requestUri"]
        stream = socket.create_connection(("127.0.0.1", self.port))
        self.sockets.append(stream)
        stream.sendall(f"GET {uri} HTTP/1.1\r\nHost: flagserve\r\n\r\n".encode())
        received = b""
        try:
            while data := stream.recv(65536):
                received += data
                # Each event is one chunk: its data line arrives whole.
                for found in EVENT_DATA.finditer(received):
                    tag = json.loads(found.group(1))["etag"]
                    again = self._bulk(connection, environment, f"?flagConfigEtag={tag}")
                    self.arrived.setdefault(again["metadata"]["revision"], time.monotonic())
                received = received[received.rfind(b"\n") + 1 :]
        except OSError:  # closed at the end
            pass

    def close(self) -> None:
        for stream in self.sockets:
            stream.close()


EVENT_DATA = re.compile(rb"\ndata: (\{[^\n]*\})\n")


def repository(tree: Path, work: Path) -> Path:
    """`tree` copied into a git repository of its own, committed."""
    copy = work / "repo"
    shutil.copytree(tree, copy, ignore=shutil.ignore_patterns(".git"))
    for command in (["init", "--quiet", "--initial-branch=main"], ["add", "--all"]):
        git(copy, *command)
    git(copy, "commit", "--quiet", "--message", "The flags, to measure changes to")
    return copy


class Synced:
    """The repository as git-sync serves it: each commit checked out into a work tree of its
    own, then `link` (the flags folder the builders are given) swapped to it by one rename.
    A repository edited in place lets a resident builder see a change's files before their
    commit and build them under the last commit's revision: then the commit's build serves
    the same flags, and no OFREP event tells of it."""

    def __init__(self, repo: Path, work: Path) -> None:
        self.repo, self.link, self.trees = repo, work / "current", work / "checkouts"
        self.trees.mkdir()
        self.check_out()

    def check_out(self) -> None:
        revision = git(self.repo, "rev-parse", "HEAD")
        tree = self.trees / revision
        git(self.repo, "worktree", "add", "--quiet", "--detach", str(tree), revision)
        swapping = self.link.with_name(f"{self.link.name}.new")
        swapping.symlink_to(tree)
        swapping.replace(self.link)

    def commits(self, commits: Iterator[None]) -> Iterator[None]:
        """Each of `commits`, then checked out behind the link."""
        for _ in commits:
            self.check_out()
            yield


def git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", **GIT_ENV}
    command = ["git", *args]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def landed(out: Path) -> float:
    """When the build in OUT landed, on the monotonic clock: when `.current`, the link whose
    rename publishes a build, was made (flagc's process still tears down after that)."""
    made = os.lstat(out / ".current").st_mtime_ns / 1e9
    return time.monotonic() - (time.time() - made)


class Watching:
    """`flagc watch` building the flags folder into OUT, its log read to know each build."""

    def __init__(self, folder: Path, out: Path, interval: float, log: Path) -> None:
        command = [sys.executable, "-m", "compiler", "watch", str(folder), "-o", str(out)]
        with log.open("wb") as written:
            self.process = subprocess.Popen(
                [*command, "--interval", str(interval)],
                stdout=subprocess.DEVNULL,
                stderr=written,
            )
        self.log = log

    def built(self, revision: str) -> None:
        """Wait until the build of `revision` is published."""
        deadline = time.monotonic() + 120
        while f"at revision {revision} " not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"flagc watch did not build: {self.log.read_text()[-2000:]}")
            time.sleep(0.002)


@contextmanager
def watching(folder: Path, repo: Path, out: Path, interval: float, log: Path) -> Iterator[Watching]:
    """`flagc watch` running on `folder` (`repo`'s) once it has published its first build."""
    watcher = Watching(folder, out, interval, log)
    try:
        watcher.built(git(repo, "rev-parse", "HEAD"))
        yield watcher
    finally:
        watcher.process.terminate()
        watcher.process.wait(timeout=60)


def rounds(
    repo: Path,
    builds: Callable[[str], None],
    out: Path,
    commits: Iterator[None],
    clients: Clients,
    count: int,
    stream: Stream | None,
    ofrep: OfrepStreams | None = None,
) -> Segments:
    """`count` rounds of a commit, its build (`builds` given the commit) and its clients."""
    segments = Segments()
    for _ in range(count):
        time.sleep(0.2)  # apart: each round starts with every worker idle
        started = time.monotonic()
        next(commits)
        committed = time.monotonic()
        revision = git(repo, "rev-parse", "HEAD")
        builds(revision)
        published = landed(out)
        segments.commit.append((committed - started) * 1000)
        segments.build.append((published - committed) * 1000)
        segments.served.append(clients.served(revision, published) * 1000)
        if stream is not None:
            segments.pushed.append(stream.pushed(revision, published) * 1000)
        if ofrep is not None:
            segments.ofrep.append(ofrep.pushed(revision, published) * 1000)
    return segments


def line(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    return f"  {name:<22}{ordered[len(ordered) // 2]:>10.1f}{p99(timings):>10.1f}"


def build_commit(repo: Path, out: Path, _revision: str) -> None:
    """`flagc build` of the commit just made, as a process."""
    build(repo, out)


def resident(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resident",
        type=float,
        default=None,
        metavar="SECONDS",
        help="build with flagc watch --interval SECONDS instead of a flagc build a commit",
    )


def main() -> int:
    args, tree = arguments(__doc__ or "", resident)
    installed.compile_packages()
    pause = args.pause / 1000
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="push-bench-")))
        repo, out = repository(tree, work), work / "out"
        synced = Synced(repo, work)
        builds: Callable[[str], None]
        if args.resident is None:
            build(synced.link, out)
            builds = functools.partial(build_commit, synced.link, out)
        else:
            log = work / "watch.log"
            watcher = watching(synced.link, repo, out, args.resident, log)
            builds = stack.enter_context(watcher).built
        commits = synced.commits(one_flag_commits(repo, leaf_flag(repo)))
        address = f"127.0.0.1:{free_port()}"
        syncing = {"FLAGSERVE_SYNC_BIND": address}
        environments = json.loads((out / "snapshot.json").read_bytes())["environments"]
        with server(out, work, "push", args.connections, pause, **syncing) as clients:
            stream = Stream(address)
            ofrep = OfrepStreams(clients.port, environments)
            try:
                pushing = rounds(repo, builds, out, commits, clients, args.rounds, stream, ofrep)
            finally:
                stream.close()
                ofrep.close()
        polling = {"FLAGSERVE_RELOAD_NOTIFY": "off"}
        with server(out, work, "poll", args.connections, pause, **polling) as clients:
            polled = rounds(repo, builds, out, commits, clients, args.poll_rounds, None)
    flags = f"{args.flags} flags" if args.flags else "the bundled flags/"
    builder = "flagc build" if args.resident is None else f"flagc watch --interval {args.resident}"
    print(f"a commit -> {builder} -> flagserve -> its clients, {flags}, ms")
    print(f"  {'segment':<22}{'p50':>10}{'p99':>10}")
    print(f"pushed ({args.rounds} commits)")
    for name, timings in [
        ("commit", pushing.commit),
        ("build", pushing.build),
        ("served (HTTP)", pushing.served),
        ("pushed (flagd sync)", pushing.pushed),
        ("pushed (OFREP stream)", pushing.ofrep),
        ("total to served", pushing.totals(pushing.served)),
        ("total to pushed", pushing.totals(pushing.pushed)),
        ("total to OFREP", pushing.totals(pushing.ofrep)),
    ]:
        print(line(name, timings))
    print(f"polled ({args.poll_rounds} commits)")
    for name, timings in [
        ("build", polled.build),
        ("served (HTTP)", polled.served),
        ("total to served", polled.totals(polled.served)),
    ]:
        print(line(name, timings))
    # the last of the three clients, each round
    each = zip(pushing.served, pushing.pushed, pushing.ofrep, strict=True)
    last = [max(times) for times in each]
    beyond = [t - b for t, b in zip(pushing.totals(last), pushing.build, strict=True)]
    verdict = "met" if p99(beyond) < 1000 else "not met"
    print(f"total beyond the build's own time, p99: {p99(beyond):.1f} ms (target < 1 s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
