"""How long `flagc build` takes, against merely parsing the same YAML files.

    python bench/build_bench.py [--sizes 1000,10000,50000] [--seed 1] [--runs 3] [--ruled 0.25]

For each size, a synthetic tree (bench/gen_tree.py) is generated once, committed as its
own git repository (flags live in git), and cached under bench/out/ (git-ignored); with
--ruled S, a share S of its flags has rules and rollouts (gen_tree.add_rules). Then,
on the same files:

- build: the whole `python -m compiler build DIR -o OUT --full` as a subprocess, Python
  start-up and imports included, into the OUT of its previous run (the audit log is then
  continued, not read from git again); `startup` is that start-up alone (`python -c
  "import compiler.cli"`, ended as `flagc` ends: at once, without the interpreter's
  teardown);
- first: the same into an empty OUT, as a new user or a CI job on a fresh checkout runs
  it: the whole git history read for the audit log, beside the compile;
- in-process: `compiler.cli.main(["build", ...])` in this process: the build without start-up;
- stages: `compiler.build.build` in this process, the function `flagc build` calls, and
  the seconds of each stage it reports (in the order it runs them);
- parse-only: reading every file and `yaml.load(text, Loader=yaml.CSafeLoader)`, the floor;
- incremental: a copy of the tree (`cp -a`, a git repository of its own) built once into an
  OUT; then, before each run, one flag's file is edited (its `enabled` flipped, so that
  every run is a real change: true, false, true...) and committed, and `python -m compiler
  build TREE -o OUT` rebuilds it as a subprocess (`incr`, start-up included), or
  `compiler.build.build(TREE, OUT)` in this process (`incr in-proc`, after its own fresh
  commit), which also says how many flags it `reused`, or as `flagc watch` builds
  (`resident`: in this process, each build given the last one's `published` build, held in
  memory, the collector run between builds untimed). The flag edited is the first leaf
  (no dependencies, no dependents) in file order, so every edit keeps the tree valid. The
  incremental OUT is then checked against a full build of the same commit into a fresh OUT:
  the same bytes (snapshot digest, audit log and flagd files).

Then the floor of an incremental build as a process: what any `flagc build` process pays
after a one-flag commit before git, the previous build or the flag itself is looked at,
measured in the same run: `start+model`, Python's start-up and the imports without which
no process can validate the changed flag (`python -c "import core.model, yaml, orjson"`:
pydantic builds the flag's models as it imports them; ended as `flagc` ends), and
`write`, publishing a build of the same bytes into an OUT as `flagc build` does
(`compiler.publish.publish`: each file written and flushed to disk, the build before the
last removed beside), best of --runs.

Times are the best of --runs runs (2 for sizes above 10,000). Stage times come from the
library run with the best total of its stages. Then the size of the audit log the builds
wrote, and the peak memory (RSS) of one more full build as a process, with the processes
it forks, summed (bench/procfs.py; bench/memory_bench.py has the worker's too).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import gen_tree
import installed
import procfs
import yaml

from compiler import cli, publish
from compiler.build import build
from compiler.incremental import Kept

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


@dataclass(slots=True)
class Result:
    count: int
    build: float
    first: float  # into an empty OUT: the history read whole
    in_process: float
    startup: float
    parse_only: float
    stages: dict[str, float]
    snapshot_bytes: int
    incremental: float
    incremental_in_process: float
    resident: float  # as flagc watch builds: in process, its last build held in memory
    reused: int
    audit_bytes: int  # OUT/audit.json after the builds
    peak_mb: float  # the full build's peak RSS, its forked processes' included
    floor_start: float  # a process's start-up with the imports validating a flag needs
    floor_write: float  # publishing a build of the same bytes


def tree_for(count: int, seed: int, cache: Path, ruled: float = 0.0) -> Path:
    """The generated tree of `count` flags (a share `ruled` of them with rules), made once
    per generator version, seed and share."""
    version = hashlib.sha256((HERE / "gen_tree.py").read_bytes()).hexdigest()[:12]
    name = f"tree-{count}-seed{seed}" + (f"-ruled{ruled:g}" if ruled else "")
    tree = cache / f"{name}-{version}"
    if not tree.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        for stale in cache.glob(f"{name}-*"):
            if stale.name.count("-") == tree.name.count("-"):
                shutil.rmtree(stale)
        started = time.perf_counter()
        partial = Path(tempfile.mkdtemp(prefix=f".tree-{count}-", dir=cache))
        gen_tree.generate(count, partial, seed)
        if ruled:
            given = len(gen_tree.add_rules(partial, round(count * ruled)))
            print(f"rules on {given} of {count} flags", file=sys.stderr)
        _commit(partial)
        partial.rename(tree)
        took = time.perf_counter() - started
        print(f"generated {count} flags into {tree} in {took:.1f} s", file=sys.stderr)
    return tree


GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def _git(tree: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=tree, env={**os.environ, **GIT_ENV}, check=True)


def _commit(tree: Path) -> None:
    """Make the tree its own committed repository, as flags live in git: the build's
    history stage then does what it does in CI (the audit log and a clean `git status`)."""
    if shutil.which("git") is None:
        return
    _git(tree, "init", "--quiet", "--initial-branch=main")
    _git(tree, "add", "--all")
    _git(tree, "commit", "--quiet", "--message", "generated flags")


def best(runs: int, measure: Callable[[], T]) -> tuple[float, T]:
    """The shortest of `runs` timings of `measure`, and what that run returned."""
    timings: list[tuple[float, T]] = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        value = measure()
        timings.append((time.perf_counter() - started, value))
    return min(timings, key=lambda timing: timing[0])


def subprocess_build(tree: Path, out: Path, *, full: bool = True) -> None:
    """`flagc build` as a process; `full`: reusing nothing of OUT's previous build (the
    audit log is still continued, as in CI)."""
    command = [sys.executable, "-m", "compiler", "build", str(tree), "-o", str(out)]
    command += ["--full"] if full else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"build failed ({done.returncode}):\n{done.stdout}{done.stderr}")


# What a process imports, for its start-up alone: flagc's (what `flagc build` runs first),
# and what no process can validate a flag file without (the floor of an incremental build).
FLAGC = "compiler.cli"
MODEL = "core.model, yaml, orjson"


def startup(modules: str = FLAGC) -> None:
    """A Python process that imports `modules` and does nothing else, ended as `flagc`
    ends (`compiler.cli.run`): at once, without the interpreter's teardown, which took
    about 0.017 s of the floor's start-up (its modules' objects freed one by one)."""
    code = f"import {modules}; import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True)


def publishing(built: Path, out: Path, runs: int) -> float:
    """The best time of publishing the outputs of the build in `built` anew into `out`, as
    `flagc build` publishes its own: two publishes first, untimed, so that each timed one
    replaces a current build and removes the one before it, as an incremental build does."""
    outputs = [(built / name).read_bytes() for name in (publish.SNAPSHOT, publish.AUDIT)]
    flagd = {
        path.stem: path.read_bytes() for path in sorted((built / publish.FLAGD).glob("*.json"))
    }

    def publish_once() -> None:
        with publish.locked(out):
            publish.publish(out, outputs[0], outputs[1], flagd)

    publish_once()
    publish_once()
    return best(runs, publish_once)[0]


def in_process_build(tree: Path, out: Path) -> None:
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        code = cli.main(["build", str(tree), "-o", str(out), "--full"])
    if code != 0:
        raise SystemExit(f"in-process build failed ({code}): {stderr.getvalue()}")


def parse_only(tree: Path) -> int:
    """The floor: read every file the compiler reads and parse it with libyaml."""
    parsed = 0
    for folder, subfolders, files in os.walk(tree):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in files:
            if name.endswith(".yaml") and not name.startswith("."):
                with Path(folder, name).open(encoding="utf-8") as stream:
                    text = stream.read()
                yaml.load(text, Loader=yaml.CSafeLoader)
                parsed += 1
    return parsed


def staged_build(tree: Path, out: Path) -> dict[str, float]:
    """The build `flagc build` runs, called as a function, with the collector paused as
    flagc pauses it; the seconds of each stage, in the order the build ran them."""
    gc.disable()
    try:
        result = build(tree, out, display_root=str(tree), reuse=False)
    finally:
        gc.enable()
    if not result.outputs:  # errors in the flags, or a refused history
        problem = result.refused or result.diagnostics[:3]
        raise SystemExit(f"the generated tree did not build: {problem}")
    return dict(result.timings)


def measure(count: int, tree: Path, work: Path, runs: int) -> Result:
    out = work / f"out-{count}"
    build_time, _ = best(runs, lambda: subprocess_build(tree, out / "subprocess"))
    first_time = first_build(tree, out / "first", runs)
    startup_time, _ = best(3, startup)
    in_process_time, _ = best(runs, lambda: in_process_build(tree, out / "in-process"))
    staged: list[dict[str, float]] = []
    for _ in range(runs):
        gc.collect()
        staged.append(staged_build(tree, out / "staged"))
    stages = min(staged, key=lambda s: sum(s.values()))
    parse_time, parsed = best(runs, lambda: parse_only(tree))
    assert parsed == count + 1, parsed  # the flags and _project.yaml
    written = [(out / kind / "snapshot.json").read_bytes() for kind in ("subprocess", "staged")]
    digests = [_digest(data) for data in written]
    assert digests[0] == digests[1], "the staged build differs from flagc build"
    incremental, incremental_in_process, resident, reused = measure_incremental(
        tree, work / f"incremental-{count}", runs
    )
    # one more full build, its memory read from /proc every 20 ms (not timed: sampling costs)
    peak_mb = procfs.peak_build_mb(tree, out / "subprocess")
    floor_start, _ = best(3, lambda: startup(MODEL))
    floor_write = publishing(out / "subprocess", work / f"publish-{count}", runs)
    audit_bytes = (out / "subprocess" / "audit.json").stat().st_size
    return Result(
        count,
        build_time,
        first_time,
        in_process_time,
        startup_time,
        parse_time,
        stages,
        len(written[0]),
        incremental,
        incremental_in_process,
        resident,
        reused,
        audit_bytes,
        peak_mb,
        floor_start,
        floor_write,
    )


def first_build(tree: Path, work: Path, runs: int) -> float:
    """The best time of `flagc build` as a process into a new, empty OUT each run."""
    timings = []
    for run in range(runs):
        gc.collect()
        started = time.perf_counter()
        subprocess_build(tree, work / f"out-{run}")
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure_incremental(tree: Path, work: Path, runs: int) -> tuple[float, float, float, int]:
    """The incremental build after a one-flag commit: the best subprocess time, the best
    in-process time, the best resident time (as `flagc watch` builds) and the flags the
    in-process build reused; then OUT is checked against a full build of the same commit."""
    copy, out = work / "tree", work / "out"
    work.mkdir()
    subprocess.run(["cp", "-a", str(tree), str(copy)], check=True)
    subprocess_build(copy, out)  # the previous build, made in full
    edits = one_flag_commits(copy, leaf_flag(copy))
    subprocess_time, _ = best_after(runs, edits, lambda: subprocess_build(copy, out, full=False))
    in_process_time, reused = best_after(runs, edits, lambda: reusing_build(copy, out))
    resident = Resident(copy, out)
    next(edits)
    resident.build()  # the build it will hold: as a watch's first
    resident_time, _ = best_after(runs, collected(edits), resident.build)
    full = build(copy, work / "full")  # a fresh OUT: nothing to reuse
    if not full.outputs:
        raise SystemExit(f"the edited tree did not build: {full.diagnostics[:3]}")
    assert written(out) == written(work / "full"), "the incremental build differs from a full one"
    return subprocess_time, in_process_time, resident_time, reused


class Resident:
    """Builds as `flagc watch` does: in one process, each build given the last one's
    `published` (compiler.incremental.Kept), the collector paused while it builds."""

    def __init__(self, tree: Path, out: Path) -> None:
        self.tree, self.out = tree, out
        self.kept: Kept | None = None

    def build(self) -> int:
        gc.disable()
        try:
            result = build(self.tree, self.out, kept=self.kept)
        finally:
            gc.enable()
        if not result.outputs or result.published is None:
            raise SystemExit(f"the edited tree did not build: {result.diagnostics[:3]}")
        self.kept = result.published
        return result.reused


def collected(steps: Iterator[None]) -> Iterator[None]:
    """Each of `steps`, after a collection of what the last build left (as `flagc watch`
    collects between builds: not timed)."""
    for step in steps:
        gc.collect()
        yield step


def best_after(runs: int, before: Iterator[None], measure: Callable[[], T]) -> tuple[float, T]:
    """As `best`, with a step of `before`, not timed, before each run."""
    timings: list[tuple[float, T]] = []
    for _ in range(runs):
        next(before)
        timings.append(best(1, measure))
    return min(timings, key=lambda timing: timing[0])


LEAF_ENABLED = re.compile(rb"^enabled: (true|false)$", re.MULTILINE)


def flag_texts(tree: Path) -> tuple[dict[Path, bytes], set[bytes]]:
    """Every flag file's bytes, in path order, and the keys some flag depends on (as
    gen_tree writes `depends_on`: last, one `  - key` a line)."""
    files = sorted(path for path in tree.rglob("*.yaml") if path.name != "_project.yaml")
    texts = {path: path.read_bytes() for path in files}
    needed = {
        name
        for text in texts.values()
        if b"depends_on:" in text
        for name in re.findall(rb"^  - ([a-z0-9-]+)$", text.split(b"depends_on:")[-1], re.M)
    }
    return texts, needed


def leaf_flag(tree: Path) -> Path:
    """The first flag file (in path order) that depends on nothing and that nothing depends
    on, with a top-level `enabled`: flipping it keeps the tree valid."""
    texts, needed = flag_texts(tree)
    for path, text in texts.items():
        leaf = b"depends_on:" not in text and path.stem.encode() not in needed
        if leaf and LEAF_ENABLED.search(text):
            return path
    raise SystemExit(f"no flag in {tree} can be flipped alone")


def one_flag_commits(tree: Path, flag: Path) -> Iterator[None]:
    """Each step flips `flag`'s `enabled` and commits it."""
    number = 0
    while True:
        number += 1
        text = flag.read_bytes()
        enabled = LEAF_ENABLED.search(text)
        assert enabled is not None
        flipped = b"false" if enabled.group(1) == b"true" else b"true"
        flag.write_bytes(LEAF_ENABLED.sub(b"enabled: " + flipped, text, count=1))
        relative = str(flag.relative_to(tree))
        _git(tree, "add", "--", relative)
        _git(tree, "commit", "--quiet", "--message", f"Flip {flag.stem} (bench run {number})")
        yield


def reusing_build(tree: Path, out: Path) -> int:
    """`compiler.build.build`, reusing OUT's previous build (the default), as `staged_build`
    runs it; how many flags it reused."""
    gc.disable()
    try:
        result = build(tree, out)
    finally:
        gc.enable()
    if not result.outputs:
        raise SystemExit(f"the edited tree did not build: {result.diagnostics[:3]}")
    return result.reused


def written(out: Path) -> dict[str, str]:
    """What a reader of OUT sees: the snapshot's digest and every other file's SHA-256."""
    found = {"snapshot.json": _digest((out / "snapshot.json").read_bytes())}
    for path in [out / "audit.json", *sorted((out / "flagd").glob("*.json"))]:
        found[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _digest(data: bytes) -> str:
    digest: str = json.loads(data)["digest"]
    return digest


def table(results: list[Result]) -> str:
    head = (
        f"{'flags':>7} {'build s':>8} {'startup s':>9} {'in-proc s':>9} {'parse s':>8} "
        f"{'build/parse':>11} {'in-proc/parse':>13} {'first s':>7} {'first/parse':>11} "
        f"{'snapshot MB':>11} "
        f"{'incr s':>7} {'incr/parse':>10} {'incr in-proc s':>14} {'incr in-proc/parse':>18} "
        f"{'resident s':>10} {'resident/parse':>14} "
        f"{'reused':>7} {'audit MB':>8} {'peak MB':>7}"
    )
    lines = [head]
    lines.extend(
        f"{r.count:>7} {r.build:>8.3f} {r.startup:>9.3f} {r.in_process:>9.3f} "
        f"{r.parse_only:>8.3f} {r.build / r.parse_only:>11.2f} "
        f"{r.in_process / r.parse_only:>13.2f} {r.first:>7.3f} {r.first / r.parse_only:>11.2f} "
        f"{r.snapshot_bytes / 1e6:>11.1f} "
        f"{r.incremental:>7.3f} {r.incremental / r.parse_only:>10.2f} "
        f"{r.incremental_in_process:>14.3f} {r.incremental_in_process / r.parse_only:>18.2f} "
        f"{r.resident:>10.3f} {r.resident / r.parse_only:>14.2f} "
        f"{r.reused:>7} {r.audit_bytes / 1e6:>8.1f} {r.peak_mb:>7.0f}"
        for r in results
    )
    lines.append("")
    lines.append(
        "the floor of an incremental build as a process (start-up with the imports that "
        "validating a flag needs, and publishing the outputs; nothing read, nothing built):"
    )
    lines.append(
        f"{'flags':>7} {'start+model s':>13} {'write s':>8} {'floor s':>8} {'floor/parse':>11}"
    )
    for r in results:
        floor = r.floor_start + r.floor_write
        lines.append(
            f"{r.count:>7} {r.floor_start:>13.3f} {r.floor_write:>8.3f} {floor:>8.3f} "
            f"{floor / r.parse_only:>11.2f}"
        )
    lines.append("")
    lines.append("in-process stages, seconds (compiler.build's own stages, same files):")
    stages = list(results[0].stages) if results else []  # every build runs the same stages
    lines.append(f"{'flags':>7} " + " ".join(f"{name:>10}" for name in (*stages, "total")))
    for r in results:
        cells = [r.stages[name] for name in stages]
        lines.append(
            f"{r.count:>7} " + " ".join(f"{value:>10.3f}" for value in (*cells, sum(cells)))
        )
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=[1_000, 10_000, 50_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="runs per measure (default 3)")
    parser.add_argument("--cache", type=Path, default=HERE / "out", help="default: bench/out")
    parser.add_argument(
        "--ruled", type=float, default=0.0, help="share of the flags with rules (default 0)"
    )
    args = parser.parse_args()
    # `git status` may refresh the index of the repository holding the cache: do not lock it.
    os.environ["GIT_OPTIONAL_LOCKS"] = "0"
    installed.compile_packages()
    results = []
    with tempfile.TemporaryDirectory(prefix="flagc-bench-") as work:
        for count in args.sizes:
            tree = tree_for(count, args.seed, args.cache, args.ruled)
            runs = args.runs if count <= 10_000 else min(args.runs, 2)
            results.append(measure(count, tree, Path(work), runs))
            print(f"measured {count} flags", file=sys.stderr)
    ruled = f", rules on {args.ruled:.0%} of the flags" if args.ruled else ""
    cpus = len(os.sched_getaffinity(0))  # the CPUs this run may use (taskset)
    print(f"python {sys.version.split()[0]}, {cpus} CPUs, seed {args.seed}{ruled}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
