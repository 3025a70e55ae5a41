"""bench/build_bench.py at a small scale: it runs, its stage table is the stages that
`compiler.build.build` reports, in the order it runs them (no copy of the order of its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from compiler.build import build

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "build_bench.py"
FLAGS = 40


def test_the_stage_table_is_the_builds_own(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", str(FLAGS), "--runs", "1", "--cache", str(cache)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    title = next(number for number, line in enumerate(lines) if "stages, seconds" in line)
    header, row = lines[title + 1].split(), lines[title + 2].split()
    [tree] = cache.glob(f"tree-{FLAGS}-*")  # the tree the bench generated and committed
    result = build(tree, tmp_path / "out")
    assert header == ["flags", *result.timings, "total"]
    assert (row[0], len(row)) == (str(FLAGS), len(header))
    # the first table ends with the audit log's size and the build's peak memory, in MB
    first = next(number for number, line in enumerate(lines) if "build/parse" in line)
    assert lines[first].split()[-4:] == ["audit", "MB", "peak", "MB"]
    values = lines[first + 1].split()
    # a first build into an empty OUT is timed too (a new user's, or CI's on a fresh checkout)
    assert "first s" in lines[first] and "first/parse" in lines[first]
    parse_s, first_s, first_ratio = float(values[4]), float(values[7]), float(values[8])
    # the ratio is of the unrounded times: within what rounding each to 3 decimals allows
    low, high = (first_s - 5e-4) / (parse_s + 5e-4), (first_s + 5e-4) / max(parse_s - 5e-4, 1e-6)
    assert first_s > 0 and low - 0.01 <= first_ratio <= high + 0.01
    # the incremental build as flagc watch makes it (its last build held) is timed too,
    # before the flags it reused, the audit log's size and the peak
    assert lines[first].split()[-8:-4] == ["resident", "s", "resident/parse", "reused"]
    resident_s, resident_ratio = float(values[-5]), float(values[-4])
    low, high = (resident_s - 5e-4) / (parse_s + 5e-4), (resident_s + 5e-4) / (parse_s - 5e-4)
    assert resident_s > 0 and low - 0.01 <= resident_ratio <= high + 0.01
    audit_mb, peak_mb = float(values[-2]), float(values[-1])
    written = (tmp_path / "out" / "audit.json").stat().st_size / 1e6
    assert abs(audit_mb - written) < 0.1
    assert 20 < peak_mb < 2000  # a Python process and its forks: more than nothing, not absurd
    # the floor of an incremental build as a process: its two parts, their sum, its ratio
    title = next(number for number, line in enumerate(lines) if line.startswith("the floor"))
    assert lines[title + 1].split() == [
        "flags",
        "start+model",
        "s",
        "write",
        "s",
        "floor",
        "s",
        "floor/parse",
    ]
    count, start_s, write_s, floor_s, floor_ratio = lines[title + 2].split()
    assert count == str(FLAGS) and float(start_s) > 0 and float(write_s) > 0
    assert abs(float(floor_s) - float(start_s) - float(write_s)) <= 1.5e-3 + 1e-9  # rounded
    floor, ratio = float(floor_s), float(floor_ratio)
    low, high = (floor - 5e-4) / (parse_s + 5e-4), (floor + 5e-4) / (parse_s - 5e-4)
    assert low - 0.01 <= ratio <= high + 0.01
