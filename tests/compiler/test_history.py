"""compiler.history as a build uses it: loaded only where a history is read (a full build's
own process, with more than one CPU, leaves the history's and the audit log's modules to
its forked history process), and telling the revision before it reads the log. What the
history reads and writes is tested through the build (test_build.py, test_audit*.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from compiler import history, incremental, publish
from compiler.audit import read_version
from compiler.beside import can_fork
from compiler.build import HistorySummary, build
from compiler.load import PROJECT_FILE, blob_id
from compiler.pipeline import Compiled, compile_flags
from core.resolve import cell_values
from tests.compiler.helpers import documented
from tests.conftest import PROJECT, new_repository, write_tree

HISTORY_MODULES = ("compiler.git_repository", "compiler.audit", "compiler.history")
FLAG = "description: d\nowner: o@example.com\nenabled: true\n"

SCRIPT = """
import json, sys
from pathlib import Path
from compiler.build import build
result = build(Path(sys.argv[1]), Path(sys.argv[2]), reuse=False, fork={fork})
imported = [module for module in {modules!r} if module in sys.modules]
print(json.dumps([len(result.outputs), result.audit_entries, imported]))
"""


def built_with_modules(tmp_path: Path, *, fork: bool) -> list[object]:
    """Build a committed two-flag tree in a fresh interpreter: [outputs written, audit
    entries, the history modules that interpreter imported]."""
    folder = committed_tree(tmp_path)
    script = SCRIPT.format(fork=fork, modules=HISTORY_MODULES)
    command = [sys.executable, "-c", script, str(folder), str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    found: list[object] = json.loads(done.stdout)
    return found


@pytest.mark.skipif(not can_fork(), reason="a build forks its history process only with 2+ CPUs")
def test_a_full_build_reads_its_history_in_the_forked_process_only(tmp_path: Path) -> None:
    assert built_with_modules(tmp_path, fork=True) == [5, 3, []]


def test_a_build_that_does_not_fork_reads_its_history_itself(tmp_path: Path) -> None:
    assert built_with_modules(tmp_path, fork=False) == [5, 3, list(HISTORY_MODULES)]


def committed_tree(root: Path) -> Path:
    """A repository at root/repo whose one commit adds a project and two flags."""
    folder, git = new_repository(root)
    write_tree(folder, {"_project.yaml": PROJECT, "a.yaml": FLAG, "b.yaml": FLAG})
    git("add", "-A")
    git("commit", "--quiet", "-m", "Add a and b")
    return folder


@pytest.mark.parametrize("fork", [True, False])
@pytest.mark.parametrize("told_metadata", [False, True], ids=["revision", "and-metadata"])
def test_outputs_made_with_what_the_history_told_first_are_those_of_its_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool, told_metadata: bool
) -> None:
    """The history tells the revision before it reads the log, and each flag's history
    before it writes the log; flagd's files and the snapshot are made meanwhile. Were HEAD
    to move in between, what it told would not be what it answers: the outputs are then
    made again, so that every output names one revision and one history."""
    folder = committed_tree(tmp_path)
    build(folder, tmp_path / "told", fork=fork)
    summarize = history.summarize_history

    def telling_another(
        folder: Path,
        out: Path,
        allow_shallow: bool,
        tell: Callable[[Any], None],
        compiled: Compiled | None,
    ) -> HistorySummary:
        tell("0" * 40)
        if told_metadata:
            tell({"a": {"created_at": None, "created_by": "nobody"}})
        return summarize(folder, out, allow_shallow, compiled=compiled)

    monkeypatch.setattr(history, "summarize_history", telling_another)
    result = build(folder, tmp_path / "moved", fork=fork)  # a forked process inherits the patch
    assert result.outputs
    assert documented(tmp_path / "moved") == documented(tmp_path / "told")
    written = b"".join(documented(tmp_path / "moved").values())
    assert b"0" * 40 not in written and b"nobody" not in written


def test_the_versions_a_build_compiled_are_those_the_history_would_read() -> None:
    """A history read whole takes the compiled files' versions by blob id rather than read
    them again from git: each is what `read_version` makes of the same bytes (the bundled
    flags: variants, rules, rollouts, schedules, dependencies)."""
    folder = Path(__file__).resolve().parents[2] / "flags"
    compiled = compile_flags(folder)
    known = history.known_versions(compiled)
    assert len(known) == len(compiled.flags) + 1 > 6
    project = read_version((folder / PROJECT_FILE).read_bytes(), PROJECT_FILE)
    assert known[blob_id((folder / PROJECT_FILE).read_bytes()), True] == project
    for flag_file in compiled.flags.values():
        path = flag_file.document.path
        read = read_version((folder / path).read_bytes(), path)
        version = known[flag_file.document.blob, False]
        assert replace(version, resolved=None) == read, path
        assert version.resolved is not None and version.resolved[0] is compiled.grid
        assert read.flag is not None and project.grid is not None
        assert version.resolved[1] == cell_values(project.grid, read.flag), path


# An older flagc's audit.json (format 2: no tables of files, fields and cells)
FORMAT_2 = (
    b'{"format": 2, "head": null, "complete": true, "people": [{"name": "Mallory", "email": '
    b'"m@example.com"}], "grids": [], "commits": [{"commit": "HEAD", "author": 0, '
    b'"timestamp": "2026-01-01T00:00:00Z", "reason": "Forged", "entries": [{"change": '
    b'"created", "file": "forged.yaml"}]}]}\n'
)


def test_a_log_vouched_for_that_this_flagc_misreads_is_read_again_whole(tmp_path: Path) -> None:
    """The cache's seal guards against damage, not forgery: a log it vouches for that is
    not what this flagc writes (another format, say) is read whole, never a traceback."""
    folder = committed_tree(tmp_path)
    build(folder, tmp_path / "whole", fork=False)
    out = tmp_path / "forged"
    build(folder, out, fork=False)
    cache = incremental.read_cache(out, str(folder))
    assert cache is not None
    written = out / publish.CURRENT / publish.AUDIT  # the current build's file
    written.unlink()
    written.write_bytes(FORMAT_2)
    vouching = {**cache.outputs, publish.AUDIT: hashlib.sha256(FORMAT_2).hexdigest()}
    publish.cache_path(out).write_bytes(replace(cache, outputs=vouching).to_bytes())
    assert incremental.vouched_audit(out) is not None  # the forgery holds
    result = build(folder, out, fork=False, reuse=False)
    assert result.outputs and result.audit_entries == 3
    assert documented(tmp_path / "forged") == documented(tmp_path / "whole")
