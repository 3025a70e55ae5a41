"""What verifying a build costs flagserve on each reload, against the whole reload.

    python bench/verify_bench.py [--sizes 2000,10000] [--entries 5] [--runs 3]

For each size N, a synthetic tree of N flags (bench/gen_tree.py: 5 environments x 20
applications, about three dependencies a flag) is built by `flagc build`, and its audit log
replaced by a synthetic one of N x --entries well-formed entries (one commit per five
entries). Then, best of --runs: `core.snapshot.load` (read, parse, verify, precompute every
answer: a whole reload), and each check of `core.verify` on its own (the snapshot, the
audit log, flagd's files), on the same bytes. Verification runs in the reload thread, never
on the request path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import build_bench  # noqa: E402
import gen_tree  # noqa: E402

from compiler import publish  # noqa: E402
from compiler.cli import main as flagc  # noqa: E402
from core import audit_format, canonical, flagd, verify  # noqa: E402
from core import snapshot as store  # noqa: E402


def best(runs: int, work: Callable[[], object]) -> float:
    """The shortest of `runs` timings of `work` (build_bench's, without the result)."""
    return build_bench.best(runs, work)[0]


def synthetic_audit(flags: list[str], per_flag: int) -> dict[str, Any]:
    """Well-formed entries, newest first, five to a commit (one author and message each),
    as the file holds them (format 2, `core.audit_format.compact`)."""
    entries = []
    for index in range(len(flags) * per_flag):
        key, commit = flags[index % len(flags)], index // 5
        entries.append(
            {
                "commit": f"{commit:040x}",
                "author": {"name": f"Author {commit % 50}", "email": "a@example.com"},
                "committer": {"name": "CI", "email": "ci@example.com"},
                "timestamp": "2026-01-02T03:04:05+01:00",
                "committed_at": "2026-01-02T03:04:05+01:00",
                "subject": f"Change five flags ({commit})",
                "reason": f"Change five flags ({commit})\n\nBecause.",
                "change": "modified",
                "flag": key,
                "file": f"team/{key}.yaml",
                "previous_file": None,
                "fields": [{"field": "enabled", "from": False, "to": True}],
                "values": [{"cell": "production/web", "from": False, "to": True}],
                "invalid": None,
            }
        )
    log = {"format": 1, "head": None, "complete": False, "entries": entries}
    return audit_format.compact(log)


def measure(count: int, work: Path, per_flag: int, runs: int) -> dict[str, float]:
    tree, out = work / f"tree-{count}", work / f"out-{count}"
    gen_tree.main([str(count), str(tree)])
    assert flagc(["build", str(tree), "-o", str(out)]) == 0
    raw = (out / "snapshot.json").read_bytes()
    document = orjson.loads(raw)
    audit = synthetic_audit(sorted(document["flags"]), per_flag)
    expected = flagd.definitions(document)
    with publish.locked(out):
        publish.publish(out, raw, canonical.serialize(audit), expected)
    found = {name: (out / "flagd" / f"{name}.json").read_bytes() for name in expected}
    assert verify.snapshot_problems(document) == []
    assert verify.audit_problems(audit, document["revision"]) == []
    return {
        "reload": best(runs, lambda: store.load(out)),
        "snapshot": best(runs, lambda: verify.snapshot_problems(document)),
        "audit": best(runs, lambda: verify.audit_problems(audit, document["revision"])),
        "flagd": best(runs, lambda: verify.flagd_problems(expected, found)),
        "entries": sum(len(commit["entries"]) for commit in audit["commits"]),
        "megabytes": len(raw) / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--entries", type=int, default=5, help="audit entries per flag")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        "| flags | snapshot | audit entries | reload | verify: snapshot | audit | flagd | share |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(part) for part in args.sizes.split(",")):
            found = measure(size, Path(folder), args.entries, args.runs)
            checks = found["snapshot"] + found["audit"] + found["flagd"]
            print(
                f"| {size:,} | {found['megabytes']:.0f} MB | {found['entries']:,.0f} "
                f"| {found['reload']:.2f} s | {found['snapshot']:.2f} s | {found['audit']:.2f} s "
                f"| {found['flagd']:.3f} s | {checks / found['reload']:.0%} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
