"""How long the audit log takes to extract, against git's bare plumbing over the same history.

    python bench/audit_bench.py [--flags 2000] [--commits 10000] [--append 100] [--seed 1]
                                [--runs 3] [--cache bench/out]

A repository of --flags flags and --commits changes (bench/gen_history.py) is generated once
per generator version and cached under bench/out/ (git-ignored). Then, on that history:

- full: `extract(repository)` in this process (opening the repository included, the
  garbage collector paused as flagc pauses it), and the whole `python -m compiler build`
  as a subprocess (start-up, compile and snapshot included), from an empty output folder so
  that it has no earlier audit.json to continue from;
- incremental: on a copy of the repository with --append more changes,
  `extract(repository, previous=<the full document before them>)`, and `flagc build` with
  that document as OUT/audit.json;
- plumbing, the floor: `git log --first-parent --raw -z --no-abbrev -M --root` over the
  flags folder, then one `git cat-file --batch` fed every blob SHA that log names (old and
  new, deduplicated) in one go and read to the end; both processes, and picking the SHAs
  out of the log, timed together;
- the history as a user meets it: `build, history` is `python -m compiler build
  REPO/flags -o OUT --full` as a subprocess into an empty OUT (--full: nothing of a previous
  build reused); `build, no git` the same, of a copy of the flags folder alone (no .git)
  in a temporary folder outside any git work tree (checked), so that it has no history and
  no revision. `history cost` is the first minus the second, and `history cost / plumbing`
  its ratio to the plumbing's time (the audit issue's target: at most 2x). The two builds
  and the plumbing alternate, run by run, so that a slower moment of a shared machine falls
  on all three: the ratio is taken against the best plumbing time of those runs (printed
  with it), not the table's, which was timed earlier.

Times are the best of --runs runs (each measure its own best).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gen_history
import installed
from build_bench import best

from compiler.audit import extract
from compiler.git_log import LOG_FORMAT
from compiler.git_repository import GitRepository
from core import audit_format, canonical

HERE = Path(__file__).resolve().parent
ZERO = b"0" * 40
RAW_BLOBS = re.compile(rb":[0-7]{6} [0-7]{6} ([0-9a-f]{40}) ([0-9a-f]{40}) ")


@dataclass(slots=True)
class Row:
    name: str
    seconds: float | None
    commits: int | None = None
    entries: int | None = None
    blobs: int | None = None
    note: str = ""


def history_for(flags: int, commits: int, seed: int, cache: Path) -> Path:
    """The generated repository, made once per size, seed and generator version."""
    sources = (HERE / "gen_history.py", HERE / "gen_tree.py")
    version = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:12]
    name = f"history-{flags}x{commits}-seed{seed}"
    repo = cache / f"{name}-{version}"
    if not repo.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        for stale in cache.glob(f"{name}-*"):
            shutil.rmtree(stale)
        started = time.perf_counter()
        partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
        gen_history.generate(partial, flags, commits, seed)
        partial.rename(repo)
        took = time.perf_counter() - started
        print(
            f"generated {flags} flags, {commits} changes into {repo} in {took:.1f} s",
            file=sys.stderr,
        )
    return repo


def extract_in_process(repo: Path, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Open the repository and extract, with the collector paused as flagc does."""
    repository = GitRepository.open(repo / gen_history.FLAGS)
    if repository is None:
        raise SystemExit(f"{repo} is not a git work tree")
    gc.disable()
    try:
        with repository:
            return extract(repository, previous)
    finally:
        gc.enable()


def build(repo: Path, out: Path, previous: bytes | None = None) -> None:
    """`python -m compiler build` into a fresh `out`, holding `previous` as its audit.json."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if previous is not None:
        (out / "audit.json").write_bytes(previous)
    build_folder(repo / gen_history.FLAGS, out)


def build_folder(flags: Path, out: Path, *options: str) -> str:
    """`python -m compiler build FLAGS -o OUT [options]` into `out` as it is; returns the
    line on stderr that says what was built."""
    command = [sys.executable, "-m", "compiler", "build", str(flags), "-o", str(out), *options]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"build failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return next((line for line in done.stderr.splitlines() if "flagc: built" in line), "")


AUDIT_ENTRIES = re.compile(r"\((\d+) audit entries")


def full_builds(repo: Path, work: Path, runs: int) -> tuple[float, float, float, int, str]:
    """`flagc build --full` of the repository's flags folder and of a copy of it outside
    git, each into an empty OUT, and the plumbing, alternating; the best time of each, the
    audit entries the first build wrote, and what the second wrote as its audit log."""
    copy = work / "no-git" / gen_history.FLAGS
    shutil.copytree(repo / gen_history.FLAGS, copy, symlinks=True)
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=copy, capture_output=True, check=False
    )
    if inside.returncode == 0 or GitRepository.open(copy) is not None:
        raise SystemExit(f"{copy} is inside a git work tree: cannot build it without git")

    def fresh(flags: Path, out: Path) -> tuple[float, str]:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        return best(1, lambda: build_folder(flags, out, "--full"))

    with_git: list[tuple[float, str]] = []
    without: list[tuple[float, str]] = []
    floor: list[float] = []
    for _ in range(runs):
        with_git.append(fresh(repo / gen_history.FLAGS, work / "build-history"))
        without.append(fresh(copy, work / "build-no-git"))
        floor.append(best(1, lambda: plumbing(repo))[0])
    (history_time, line), (bare_time, bare_line) = min(with_git), min(without)
    found, bare_found = AUDIT_ENTRIES.search(line), AUDIT_ENTRIES.search(bare_line)
    if found is None or bare_found is None or int(bare_found.group(1)) != 0:
        raise SystemExit(f"unexpected build lines:\n{line}\n{bare_line}")
    audit = audit_format.expand(json.loads((work / "build-no-git" / "audit.json").read_bytes()))
    bare_note = f"{len(audit['entries'])} entries, head {audit['head']}"
    return history_time, bare_time, min(floor), int(found.group(1)), bare_note


def plumbing(repo: Path) -> tuple[int, int, int]:
    """git log over the flags folder, then one cat-file --batch over every blob it names;
    returns (commits, blobs, bytes read from cat-file)."""
    log = subprocess.run(
        [
            "git", "log", "--first-parent", "--diff-merges=first-parent", "--raw", "-z",
            "--no-abbrev", "-M", "--root", f"--format={LOG_FORMAT}", "HEAD", "--",
            gen_history.FLAGS,
        ],
        cwd=repo, capture_output=True, check=True,
    ).stdout  # fmt: skip
    shas = dict.fromkeys(sha for pair in RAW_BLOBS.findall(log) for sha in pair if sha != ZERO)
    batch = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input=b"".join(sha + b"\n" for sha in shas),
        capture_output=True,
        check=True,
    ).stdout
    return log.count(b"\x1e"), len(shas), len(batch)


def first_parent_commits(repo: Path, revisions: str) -> int:
    command = ["git", "rev-list", "--count", "--first-parent", revisions, "--", "flags"]
    return int(subprocess.run(command, cwd=repo, capture_output=True, check=True).stdout)


def measure(repo: Path, work: Path, appended: int, runs: int) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    plumbing_time, (commits, blobs, read) = best(runs, lambda: plumbing(repo))
    full_time, full = best(runs, lambda: extract_in_process(repo))
    entries = len(full["entries"])
    rows.append(Row("full: extract()", full_time, commits, entries, blobs))
    build_time, _ = best(runs, lambda: build(repo, work / "build-full"))
    written = (work / "build-full" / "audit.json").is_file()
    if written:
        rows.append(Row("full: flagc build (subprocess)", build_time, commits, entries, blobs))
        size = (work / "build-full" / "audit.json").stat().st_size
        expanded = len(canonical.serialize(full)) + 1
        notes.append(
            f"audit.json: {size / 1e6:.2f} MB (the log it holds, one entry per commit and "
            f"file as the API serves it: {expanded / 1e6:.2f} MB, {size / expanded:.3f}x)"
        )
    else:
        rows.append(Row("full: flagc build", None, note="writes no audit.json"))
    rows.append(Row("plumbing: git log + cat-file", plumbing_time, commits, None, blobs))
    notes.append(f"cat-file read {read / 1e6:.1f} MB; flagc build includes start-up and compile")

    copy = work / "appended"
    shutil.copytree(repo, copy, symlinks=True)
    gen_history.append(copy, appended)
    new_commits = first_parent_commits(copy, f"{full['head']}..HEAD")
    incremental_time, incremental = best(runs, lambda: extract_in_process(copy, full))
    added = len(incremental["entries"]) - len(full["entries"])
    rows.append(Row(f"incremental (+{appended}): extract()", incremental_time, new_commits, added))
    if written:
        previous = canonical.serialize(audit_format.compact(full)) + b"\n"
        timing, _ = best(runs, lambda: build(copy, work / "build-incremental", previous))
        rows.append(Row(f"incremental (+{appended}): flagc build", timing, new_commits, added))
    same = incremental == extract_in_process(copy)
    notes.append(
        f"incremental document == full extraction of the new HEAD: {'yes' if same else 'NO'}"
    )

    history_time, bare_time, floor, built_entries, bare_note = full_builds(repo, work, runs)
    cost = history_time - bare_time
    rows.append(
        Row("build, history (--full, subprocess)", history_time, commits, built_entries, blobs)
    )
    rows.append(Row("build, no git (--full, subprocess)", bare_time, note=f"audit: {bare_note}"))
    rows.append(Row("history cost (history - no git)", cost, commits, built_entries, blobs))
    ratios = [
        f"full extract / plumbing: {full_time / plumbing_time:.2f}x (target <= 2x)",
        f"history cost / plumbing: {cost / floor:.2f}x (target <= 2x; {history_time:.3f} - "
        f"{bare_time:.3f} s against {floor:.3f} s of plumbing, timed between them)",
        f"incremental / full extract: {incremental_time / full_time:.3f}x",
    ]
    return rows, [*ratios, *notes]


def table(rows: list[Row]) -> str:
    def cell(value: float | int | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"{'':<36} {'seconds':>8} {'commits':>8} {'entries':>8} {'blobs':>7}"]
    lines.extend(
        f"{row.name:<36} {cell(row.seconds, '.3f'):>8} {cell(row.commits, 'd'):>8} "
        f"{cell(row.entries, 'd'):>8} {cell(row.blobs, 'd'):>7}"
        + (f"  ({row.note})" if row.note else "")
        for row in rows
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=2000)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--append", type=int, default=100, help="changes for the incremental run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="runs per measure (default 3)")
    parser.add_argument("--cache", type=Path, default=HERE / "out", help="default: bench/out")
    args = parser.parse_args()
    # `git status` may refresh the index of the repository holding the cache: do not lock it.
    os.environ["GIT_OPTIONAL_LOCKS"] = "0"
    installed.compile_packages()
    repo = history_for(args.flags, args.commits, args.seed, args.cache)
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as work:
        rows, notes = measure(repo, Path(work), args.append, args.runs)
    print(
        f"python {sys.version.split()[0]}, {len(os.sched_getaffinity(0))} CPUs, seed {args.seed}: "
        f"{args.flags} flags, {args.commits} changes, best of {args.runs}"
    )
    print(table(rows))
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
