"""How much memory `flagc build` and a flagserve worker hold, against the data they hold.

    python bench/memory_bench.py [--sizes 10000,50000] [--seed 1] [--ruled 0]

For each size, the tree of bench/build_bench.py (generated once, committed, cached under
bench/out/) is built with `flagc build --full` as a subprocess (the audit log already there);
/proc is read every 20 ms for the resident memory (RSS) of flagc and every process it forked
(compiler.beside), summed: the peak of that sum is the build's peak. `incr peak` is the same
of the incremental build that follows (nothing changed: what reading the cache and the
previous outputs holds). Then flagserve (one worker) serves the build, every
environment's flat map, flagd file and an OFREP bulk evaluation are fetched once, and the
worker's RSS is read. Each is set against the size of what it holds: the YAML files
(read and parsed by the build) and snapshot.json (loaded and answered from by the worker).
Last, `flagc watch` (the resident builder) on a copy of the tree: its RSS once its first
build is published (`watch MB`), and the peak of its RSS (its forked processes' included)
over the incremental builds of --commits one-flag commits that follow, with its RSS after
the last of them (`after MB`): what a builder holds between builds, and whether it grows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import build_bench
import procfs
from serve_bench import free_port, gunicorn_env, process, wait_for


def worker_mb(out: Path, work: Path) -> float:
    """The RSS of flagserve's one worker, in MB, once it has answered each kind of request."""
    port, log = free_port(), work / "flagserve.log"
    env = gunicorn_env(port, FLAGSERVE_WORKERS="1")
    command = [sys.executable, "-m", "server", str(out)]
    with process(command, env, log) as master:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/readyz", log, timeout=300)
        environments = json.loads((out / "snapshot.json").read_bytes())["environments"]
        for environment in environments:
            for path in (
                f"/api/v1/environments/{environment}/flags",
                f"/api/v1/environments/{environment}/flagd.json",
            ):
                with urllib.request.urlopen(base + path, timeout=60) as answer:
                    answer.read()
        request = urllib.request.Request(
            f"{base}/ofrep/v1/evaluate/flags",
            data=json.dumps(
                {"context": {"targetingKey": "u-1", "environment": environment}}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
        [worker] = procfs.children(master)
        return procfs.rss_mb([worker])


def resident_mb(tree: Path, work: Path, commits: int) -> tuple[float, float, float]:
    """`flagc watch` on a copy of `tree`: its RSS once it has published its first build, the
    peak RSS (with its forked processes) over `commits` one-flag commits each built, and
    its RSS after the last, in MB."""
    copy, log = work / "watched", work / "watch.log"
    subprocess.run(["cp", "-a", str(tree), str(copy)], check=True)
    edits = build_bench.one_flag_commits(copy, build_bench.leaf_flag(copy))
    command = [sys.executable, "-m", "compiler", "watch", str(copy), "-o", str(work / "watch")]
    with log.open("wb") as written:
        watcher = subprocess.Popen(
            [*command, "--interval", "0.05"], stdout=subprocess.DEVNULL, stderr=written
        )
    try:
        _wait_built(watcher, log, 1)
        first = procfs.rss_mb([watcher.pid])
        peak = first
        for number in range(commits):
            next(edits)
            peak = max(peak, _wait_built(watcher, log, number + 2))
        return first, peak, procfs.rss_mb([watcher.pid])
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)


def _wait_built(watcher: subprocess.Popen[bytes], log: Path, builds: int) -> float:
    """Wait until `watcher` has published `builds` builds; the peak RSS meanwhile, in MB."""
    peak, deadline = 0.0, time.monotonic() + 600
    while log.read_text().count("flagc: built ") < builds:
        if watcher.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"flagc watch did not build: {log.read_text()[-2000:]}")
        peak = max(peak, procfs.rss_mb(procfs.descendants(watcher.pid)))
        time.sleep(procfs.SAMPLE_EVERY)
    return peak


def yaml_mb(tree: Path) -> float:
    total = sum(path.stat().st_size for path in tree.rglob("*.yaml"))
    return total / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=build_bench._sizes, default=[10_000, 50_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ruled", type=float, default=0.0, help="share of flags with rules")
    parser.add_argument("--cache", type=Path, default=build_bench.HERE / "out")
    parser.add_argument("--commits", type=int, default=20, help="builds flagc watch makes")
    args = parser.parse_args()
    os.environ["GIT_OPTIONAL_LOCKS"] = "0"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, seed {args.seed}")
    print(
        f"{'flags':>7} {'YAML MB':>8} {'snapshot MB':>11} {'build peak MB':>13} "
        f"{'build/YAML':>10} {'build/snapshot':>14} {'worker MB':>9} {'worker/snapshot':>15} "
        f"{'incr peak MB':>12} {'watch MB':>8} {'watch peak MB':>13} {'after MB':>8}"
    )
    for count in args.sizes:
        tree = build_bench.tree_for(count, args.seed, args.cache, args.ruled)
        with tempfile.TemporaryDirectory(prefix="memory-bench-") as scratch:
            work = Path(scratch)
            procfs.peak_build_mb(tree, work / "out")  # the audit log now exists, as in CI
            build = procfs.peak_build_mb(tree, work / "out")
            incremental = procfs.peak_build_mb(tree, work / "out", full=False)
            snapshot = (work / "out" / "snapshot.json").stat().st_size / 1e6
            worker = worker_mb(work / "out", work)
            watch, watch_peak, after = resident_mb(tree, work, args.commits)
        source = yaml_mb(tree)
        print(
            f"{count:>7} {source:>8.1f} {snapshot:>11.1f} {build:>13.0f} "
            f"{build / source:>10.1f} {build / snapshot:>14.1f} {worker:>9.0f} "
            f"{worker / snapshot:>15.1f} {incremental:>12.0f} {watch:>8.0f} "
            f"{watch_peak:>13.0f} {after:>8.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
