"""What /proc says of running processes: a flagserve's workers, their memory, the
connections they hold, and the peak memory of a build. Used by the benches and by the tests
that watch real workers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SAMPLE_EVERY = 0.02


def children(master: int) -> list[int]:
    """The pids of the master's living child processes (its workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == master and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def rss_mb(pids: Sequence[int]) -> float:
    """The resident memory of `pids`, summed, in MB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def connections_held(pids: Sequence[int], port: int) -> int:
    """Established connections to `port` that the processes `pids` hold."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pids[0]}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            held += local_port == port and fields[3] == "01" and fields[9] in inodes
    return held


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, living."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children(current))
    return found


def peak_build_mb(tree: Path, out: Path, *, full: bool = True) -> float:
    """The peak of the summed RSS of `flagc build` and its forked processes, in MB, read
    every 20 ms; `full`: reusing nothing of OUT's previous build (else an incremental
    build)."""
    command = [sys.executable, "-m", "compiler", "build", str(tree), "-o", str(out)]
    command += ["--full"] if full else []
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while child.poll() is None:
        peak = max(peak, rss_mb(descendants(child.pid)))
        time.sleep(SAMPLE_EVERY)
    if child.returncode != 0:
        assert child.stderr is not None
        raise SystemExit(f"flagc build failed: {child.stderr.read().decode()[-2000:]}")
    return peak
