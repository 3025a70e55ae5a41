"""`compiler.build.build`, the build as a function: its result on real git repositories,
and the same OUT, byte for byte, as `flagc build`; then what a build writes of the history
(OUT/audit.json, each flag's created/updated fields) from scripted histories."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from compiler import audit, publish
from compiler.build import BuildResult, Note, build
from compiler.cli import main
from compiler.diagnostics import has_errors
from compiler.load import ReadAhead
from compiler.pipeline import compile_tree
from core import audit_format
from tests.compiler.helpers import documented, run
from tests.compiler.scripted import (
    ADA,
    BANNER,
    BANNER_FIELDS,
    CHECKOUT,
    DWAYNE,
    Made,
    Scripted,
    Story,
    appeared,
    cells,
    check_audit,
    clone,
    created_fields,
    entry,
    project_created,
)
from tests.compiler.snapshot_checks import check_snapshot
from tests.conftest import PROJECT, Git, git_in, write_tree

TODAY = datetime.date(2026, 1, 10)
RESOLVE_STAGES = ["load", "validate", "resolve"]
COMPILE_STAGES = [*RESOLVE_STAGES, "check"]
# With the flags resolved, the checks run beside the outputs' making: `check` is the wait.
# A history read whole tells git's revision first, so flagd's files are made before the
# snapshot is rendered, which waits for each flag's history (compiler.history).
STAGES = [*RESOLVE_STAGES, "history", "snapshot", "flagd", "render", "check", "write"]
ENVIRONMENTS = ("development", "production", "staging")  # PROJECT's, sorted
FLAGS = {
    "_project.yaml": PROJECT,
    "banner.yaml": "description: Banner\nowner: web\nenabled: false\n",
    "team/checkout.yaml": "description: Checkout\nowner: shop\nenabled: true\n",
}
EXPIRED = "description: Old\nowner: me\nenabled: false\nexpires: 2020-01-01\n"
BROKEN = {**FLAGS, "typo.yaml": "description: Typo\nowner: me\nenabeld: true\n"}


def commit(git: Git, message: str) -> str:
    """Commit everything in the repository; its full SHA."""
    git("add", "--all")
    git("commit", "--quiet", "--message", message)
    return git("rev-parse", "HEAD").strip()


def turn_the_banner_on(flags: Path, git: Git) -> None:
    write_tree(flags, {"banner.yaml": FLAGS["banner.yaml"].replace("false", "true")})
    commit(git, "Turn the banner on")


@pytest.fixture
def committed(git_repo: tuple[Path, Git]) -> tuple[Path, Git, str]:
    """A repository whose flags/ folder holds FLAGS, committed; and the commit's SHA."""
    repo, git = git_repo
    write_tree(repo / "flags", FLAGS)
    return repo / "flags", git, commit(git, "Add the banner and checkout")


def test_a_build_returns_what_it_wrote(committed: tuple[Path, Git, str], tmp_path: Path) -> None:
    flags, _, sha = committed
    out = tmp_path / "out"
    result = build(flags, out, today=TODAY)
    assert result.diagnostics == []
    assert result.outputs == (
        out / "snapshot.json",
        out / "audit.json",
        *(out / "flagd" / f"{environment}.json" for environment in ENVIRONMENTS),
    )
    assert all(path.is_file() for path in result.outputs)
    log = check_audit((out / "audit.json").read_bytes())
    assert (result.revision, log["head"]) == (sha, sha)
    assert result.audit_entries == len(log["entries"]) == 3  # the project, then each flag
    assert (result.notes, result.refused) == ((), None)
    assert list(result.timings) == STAGES
    assert all(seconds >= 0 for seconds in result.timings.values())


def test_the_cli_and_the_function_write_the_same_bytes(
    committed: tuple[Path, Git, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags, _, _ = committed
    result = build(flags, tmp_path / "function", today=TODAY)
    argv = ["build", str(flags), "-o", str(tmp_path / "cli"), "--today", TODAY.isoformat()]
    assert main(argv) == 0, capsys.readouterr().err
    written = documented(tmp_path / "function")
    assert written == documented(tmp_path / "cli")
    assert sorted(written) == sorted(
        str(path.relative_to(tmp_path / "function")) for path in result.outputs
    )


# A build in a fresh process (this one may still run another test's thread, and then
# never forks), its Beside watched: it says whether it forked.
BESIDE = """
import datetime, sys
from pathlib import Path
from compiler import beside, build

forked = []

class Watched(beside.Beside):
    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        forked.append(self.forked)

build.Beside = Watched
today = datetime.date.fromisoformat(sys.argv[3])
result = build.build(Path(sys.argv[1]), Path(sys.argv[2]), today=today)
assert result.outputs, result
print(forked)
"""


def processes_left() -> list[Any]:
    """The build's forked processes still running, once those that answered have had time
    to end: a build does not wait for their end (compiler.beside), only for their answers,
    and stops those whose answers it does not want."""
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    return multiprocessing.active_children()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: a build never forks")
def test_the_history_read_beside_the_compile_or_after_it_gives_the_same_bytes(
    committed: tuple[Path, Git, str], tmp_path: Path
) -> None:
    flags, git, _ = committed
    turn_the_banner_on(flags, git)
    command = [sys.executable, "-c", BESIDE, str(flags), str(tmp_path / "beside"), str(TODAY)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    # the history, the checks, and the flagd files (git's revision)
    assert done.stdout == "[True, True, True]\n"
    inline = build(flags, tmp_path / "inline", today=TODAY, fork=False)
    assert inline.outputs
    assert documented(tmp_path / "beside") == documented(tmp_path / "inline")
    assert processes_left() == []


def test_a_build_with_errors_writes_nothing(git_repo: tuple[Path, Git], tmp_path: Path) -> None:
    repo, _ = git_repo
    flags = write_tree(repo / "flags", BROKEN)
    out = tmp_path / "out"
    result = build(flags, out, today=TODAY)
    assert has_errors(result.diagnostics)
    assert {d.file for d in result.diagnostics} == {f"{flags}/typo.yaml"}
    assert (result.outputs, result.revision, result.refused) == ((), None, None)
    assert list(result.timings) == COMPILE_STAGES  # it stops before the history
    assert not out.exists()
    assert processes_left() == []  # the history's reading was stopped


CORPUS = Path(__file__).resolve().parent / "corpus"  # test_corpus.py's cases
CORPUS_TODAY = datetime.date(2026, 6, 1)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "inline"])
@pytest.mark.parametrize("case", sorted(path.name for path in CORPUS.iterdir() if path.is_dir()))
def test_a_build_finds_what_check_finds_and_writes_only_without_errors(
    tmp_path: Path, case: str, fork: bool
) -> None:
    """The checks run beside the outputs' making, which goes on as if they will pass, and
    with the files read ahead each is validated and resolved as it arrives: on every corpus
    case (cycles, a dependency off, broken files, a broken project...) the build finds
    exactly what `compile_tree` finds, writes nothing when one is an error, and leaves no
    process."""
    flags = tmp_path / "flags"  # outside git: the case alone, without this repository's log
    shutil.copytree(CORPUS / case / "flags", flags, symlinks=True)
    checked = compile_tree(flags, display_root="flags", today=CORPUS_TODAY).diagnostics
    ahead = ReadAhead(flags) if fork else None
    out = tmp_path / "out"
    result = build(flags, out, display_root="flags", today=CORPUS_TODAY, fork=fork, ahead=ahead)
    assert result.diagnostics == checked
    assert result.failed is None
    assert bool(result.outputs) is not has_errors(checked)
    assert (out / publish.SNAPSHOT).exists() is not has_errors(checked)
    assert processes_left() == []


def test_a_write_that_fails_comes_back_with_the_findings(
    committed: tuple[Path, Git, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file where OUT/.builds should be: the findings, the notes and the error are all
    reported, and flagc exits 2, as when it printed each before writing."""
    flags, _, sha = committed
    write_tree(flags, {"old.yaml": EXPIRED})  # a warning, and uncommitted: a note
    out = tmp_path / "out"
    write_tree(out, {publish.BUILDS: "in the way\n"})
    result = build(flags, out, today=TODAY)
    assert [d.code for d in result.diagnostics] == ["expired"]
    assert (result.outputs, result.refused) == ((), None)
    assert result.failed is not None and publish.BUILDS in result.failed
    assert [note.level for note in result.notes] == ["warning"]
    assert list(result.timings) == STAGES
    code = main(["build", str(flags), "-o", str(out), "--today", TODAY.isoformat()])
    stdout, stderr = capsys.readouterr()
    assert code == 2
    assert "warning[expired]" in stdout
    assert stderr.splitlines() == [
        f"flagc: warning: {flags} has uncommitted changes: the revision is {sha}-dirty, and "
        "the audit log covers committed changes only",
        f"flagc: error: {result.failed}",
    ]


def _no_commit(repo: Path, git: Git) -> str | None:
    write_tree(repo / "flags", FLAGS)
    return None


def _dirty(repo: Path, git: Git) -> str | None:
    write_tree(repo / "flags", FLAGS)
    sha = commit(git, "Add the flags")
    write_tree(repo / "flags", {"banner.yaml": FLAGS["banner.yaml"].replace("false", "true")})
    return f"{sha}-dirty"


@pytest.mark.parametrize(
    ("make", "level", "says"),
    [
        (_no_commit, "note", "is not in a repository with commits: the audit log is empty"),
        (_dirty, "warning", "has uncommitted changes: the revision is {revision}"),
    ],
)
def test_what_the_history_tells_comes_back_as_notes(
    git_repo: tuple[Path, Git],
    tmp_path: Path,
    make: Callable[[Path, Git], str | None],
    level: str,
    says: str,
) -> None:
    repo, git = git_repo
    revision = make(repo, git)
    result = build(repo / "flags", tmp_path / "out", today=TODAY)
    assert result.outputs, result
    [note] = result.notes
    assert isinstance(note, Note)
    assert note.level == level
    assert note.message.startswith(str(repo / "flags"))
    assert says.format(revision=revision) in note.message
    if revision is not None:
        assert result.revision == revision
    else:
        assert result.revision is not None and result.revision.startswith("content-")


def test_a_shallow_clone_is_refused_unless_allowed(
    committed: tuple[Path, Git, str], tmp_path: Path
) -> None:
    flags, git, _ = committed
    turn_the_banner_on(flags, git)
    clone = tmp_path / "clone"
    git_in(tmp_path)("clone", "--quiet", "--depth", "1", f"file://{flags.parent}", str(clone))
    out = tmp_path / "out"
    refused = build(clone / "flags", out, today=TODAY)
    assert refused.outputs == ()
    assert refused.refused is not None and "--allow-shallow" in refused.refused
    assert list(refused.timings) == [*RESOLVE_STAGES, "history", "check"]
    assert not out.exists()
    allowed = build(clone / "flags", out, today=TODAY, allow_shallow=True)
    assert allowed.outputs and allowed.refused is None


@pytest.mark.parametrize(
    ("flags_dir", "out", "error"),
    [
        ("flags", "a-file", publish.OutputError),  # OUT is not a folder
        ("flags", "taken", publish.OutputError),  # OUT/snapshot.json is a folder
        ("missing", "out", NotADirectoryError),
        ("a-file", "out", NotADirectoryError),
    ],
)
def test_what_was_asked_wrongly_is_raised_before_anything_is_written(
    tmp_path: Path, flags_dir: str, out: str, error: type[Exception]
) -> None:
    write_tree(tmp_path / "flags", FLAGS)
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")
    (tmp_path / "taken" / publish.SNAPSHOT).mkdir(parents=True)
    with pytest.raises(error):
        build(tmp_path / flags_dir, tmp_path / out, today=TODAY)
    assert not (tmp_path / "out").exists()
    assert [path.name for path in (tmp_path / "taken").iterdir()] == [publish.SNAPSHOT]


def test_the_result_is_frozen(committed: tuple[Path, Git, str], tmp_path: Path) -> None:
    flags, _, _ = committed
    result = build(flags, tmp_path / "out", today=TODAY)
    with pytest.raises(AttributeError):
        result.revision = "other"  # type: ignore[misc]
    assert isinstance(result, BuildResult)


# The history in OUT: audit.json and each flag's created/updated fields


def test_the_command_says_how_to_fetch_a_shallow_clone(
    shallow: tuple[Scripted, Made], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone, _ = shallow
    out = tmp_path / "out"
    code, stdout, err = run(["build", str(clone.flags), "-o", str(out)], capsys)
    assert (code, stdout) == (1, "")
    assert "shallow clone" in err
    assert "fetch the whole history" in err
    assert "git fetch --unshallow" in err
    assert "fetch-depth: 0" in err
    assert "--allow-shallow" in err


def test_build_allow_shallow_marks_the_audit_incomplete(
    shallow: tuple[Scripted, Made], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone, last = shallow
    out = tmp_path / "out"
    code, _, err = run(["build", str(clone.flags), "-o", str(out), "--allow-shallow"], capsys)
    assert code == 0, err
    document = check_audit((out / "audit.json").read_bytes())
    assert document == clone.extract()
    assert (document["head"], document["complete"]) == (last.sha, False)
    snapshot = check_snapshot((out / "snapshot.json").read_bytes(), clone.flags)
    assert snapshot["revision"] == last.sha
    assert snapshot["flags"]["banner"]["created_at"] == last.date  # as far as the clone knows


def test_a_shallow_clone_continues_the_log_in_out_that_holds_what_it_lacks(
    scripted: Scripted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log in OUT that no cache vouches for is read again from the history, but a shallow
    clone lacks the history: there the log is continued, and keeps the older commits."""
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER})
    scripted.commit("Banner on", {"growth/banner.yaml": BANNER.replace("false", "true")})
    out = tmp_path / "out"
    assert run(["build", str(scripted.flags), "-o", str(out)], capsys)[0] == 0
    scripted.commit("Add the checkout", {"checkout/new-checkout.yaml": CHECKOUT})
    shallow = clone(scripted.repo, tmp_path / "shallow", "--depth", "2")
    code, _, err = run(["build", str(shallow.flags), "-o", str(out), "--allow-shallow"], capsys)
    assert code == 0, err
    whole = scripted.extract()["entries"]
    assert check_audit((out / "audit.json").read_bytes())["entries"] == whole
    alone = tmp_path / "alone"  # the same clone, with no log to continue
    assert run(["build", str(shallow.flags), "-o", str(alone), "--allow-shallow"], capsys)[0] == 0
    assert len(check_audit((alone / "audit.json").read_bytes())["entries"]) < len(whole)


_HISTORY_NAMES = ("created_at", "created_by", "updated_at", "updated_by", "updated_reason")


def _history_fields(snapshot: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: {n: flag[n] for n in _HISTORY_NAMES} for key, flag in snapshot["flags"].items()}


def test_build_writes_the_audit_and_history_fields(
    story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted, made = story.scripted, story.made
    out, other = tmp_path / "out", tmp_path / "other"
    code, _, err = run(["build", str(scripted.flags), "-o", str(out)], capsys)
    assert code == 0, err
    assert f"({len(story.documents[-1]['entries'])} audit entries)" in err
    data = (out / "audit.json").read_bytes()
    document = check_audit(data)
    assert document == scripted.extract()
    assert document["head"] == made[-1].sha
    assert (
        run(["build", str(scripted.flags), "-o", str(out)], capsys)[0] == 0
    )  # reads the previous log
    assert run(["build", str(scripted.flags), "-o", str(other)], capsys)[0] == 0
    assert (out / "audit.json").read_bytes() == data == (other / "audit.json").read_bytes()
    snapshot_data = (out / "snapshot.json").read_bytes()
    assert snapshot_data == (other / "snapshot.json").read_bytes()
    snapshot = check_snapshot(snapshot_data, scripted.flags)

    expected: dict[str, dict[str, Any]] = {}
    for key in snapshot["flags"]:
        mine = [e for e in document["entries"] if e["flag"] == key]
        created = next(e for e in mine if e["change"] == "created")
        expected[key] = {
            "created_at": created["timestamp"],
            "created_by": created["author"]["name"],
            "updated_at": mine[0]["timestamp"],
            "updated_by": mine[0]["author"]["name"],
            "updated_reason": mine[0]["reason"],
        }
    assert _history_fields(snapshot) == expected
    assert expected == audit.flag_metadata(document)
    merge, bring_back, renamed = made[10], made[7], made[11]
    assert expected["banner"] == {
        "created_at": bring_back.date,
        "created_by": DWAYNE.name,
        "updated_at": bring_back.date,
        "updated_by": DWAYNE.name,
        "updated_reason": "Bring the banner back",
    }
    assert expected["dark-mode"] == {
        "created_at": "2026-03-01T00:00:00+00:00",
        "created_by": ADA.name,
        "updated_at": "2026-03-01T00:00:00+00:00",
        "updated_by": ADA.name,
        "updated_reason": merge.message,
    }
    assert expected["checkout"]["created_at"] == renamed.date
    assert sorted(expected) == ["banner", "checkout", "dark-mode"]


def test_build_after_new_commits_equals_a_fresh_build(
    scripted: Scripted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    out = tmp_path / "out"
    assert run(["build", str(scripted.flags), "-o", str(out)], capsys)[0] == 0
    scripted.commit(
        "Banner on in staging", {"banner.yaml": BANNER + "environments:\n  staging: true\n"}
    )
    assert run(["build", str(scripted.flags), "-o", str(out)], capsys)[0] == 0  # incremental
    assert run(["build", str(scripted.flags), "-o", str(tmp_path / "fresh")], capsys)[0] == 0
    incremental = check_audit((out / "audit.json").read_bytes())
    fresh = check_audit((tmp_path / "fresh" / "audit.json").read_bytes())
    assert incremental == fresh


@pytest.mark.parametrize(
    "previous",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param("[]", id="a-list"),
        pytest.param('{"format": 2, "head": "HEAD", "entries": []}', id="other-format"),
        pytest.param(
            '{"format": 1, "head": "HEAD", "complete": true, "entries": [{"commit": "HEAD", '
            '"author": {"name": "Mallory", "email": "m@example.com"}, "committer": {"name": '
            '"Mallory", "email": "m@example.com"}, "timestamp": "2026-01-01T00:00:00Z", '
            '"committed_at": "2026-01-01T00:00:00Z", "subject": "Forged", "reason": "Forged", '
            '"change": "created", "flag": "forged", "file": "forged.yaml", "previous_file": '
            'null, "fields": [], "values": [], "invalid": null}]}',
            id="format-1",
        ),
        pytest.param(
            '{"format": 2, "head": "HEAD", "complete": true, "people": [], "grids": [], '
            '"commits": [{"commit": "HEAD", "author": 3, "timestamp": "2026-01-01T00:00:00Z", '
            '"reason": "Forged", "entries": [{"file": "forged.yaml"}]}]}',
            id="format-2-damaged",
        ),
        pytest.param(  # as an older flagc wrote it, its cache (if any) not trusted
            '{"format": 2, "head": "HEAD", "complete": true, "people": [{"name": "Mallory", '
            '"email": "m@example.com"}], "grids": [], "commits": [{"commit": "HEAD", '
            '"author": 0, "timestamp": "2026-01-01T00:00:00Z", "reason": "Forged", "entries": '
            '[{"change": "created", "file": "forged.yaml"}]}]}',
            id="format-2",
        ),
        pytest.param(
            '{"format": 3, "head": "HEAD", "complete": true, "people": [], "grids": [], '
            '"files": [], "fields": [], "cells": [], "commits": [{"commit": "HEAD", "author": 0, '
            '"timestamp": "2026-01-01T00:00:00Z", "reason": "Forged", "entries": [{"file": 0}]}]}',
            id="format-3-damaged",
        ),
    ],
)
def test_build_ignores_an_unusable_previous_audit(
    scripted: Scripted, tmp_path: Path, capsys: pytest.CaptureFixture[str], previous: str
) -> None:
    """OUT/audit.json that is not JSON, or not a log this version continues (a format-1 or
    format-2 log of an earlier flagc, a damaged file), is never trusted: the whole history
    is read again, and written as this flagc writes it (format 3; the shapes `audit.usable`
    refuses are in test_audit.py)."""
    first = scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    out = tmp_path / "out"
    out.mkdir()
    (out / "audit.json").write_text(previous.replace('"HEAD"', f'"{first.sha}"'), "utf-8")
    code, _, err = run(["build", str(scripted.flags), "-o", str(out)], capsys)
    assert code == 0, err
    assert check_audit((out / "audit.json").read_bytes()) == scripted.extract()
    assert json.loads((out / "audit.json").read_bytes())["format"] == audit_format.FILE_FORMAT


def _outside_any_repository(path: Path) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=path, capture_output=True, check=False
    )
    return found.returncode != 0


def _outside_git(tmp_path: Path, scripted: Scripted) -> Path:
    if not _outside_any_repository(tmp_path):
        pytest.skip(f"{tmp_path} is inside a git work tree")
    return write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "banner.yaml": BANNER})


def _before_the_first_commit(tmp_path: Path, scripted: Scripted) -> Path:
    return write_tree(scripted.flags, {"_project.yaml": PROJECT, "banner.yaml": BANNER})


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (_outside_git, "is not in a git work tree"),
        (_before_the_first_commit, "is not in a repository with commits"),
    ],
)
def test_a_build_without_history_writes_an_empty_audit(
    scripted: Scripted,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path, Scripted], Path],
    where: str,
) -> None:
    folder = make(tmp_path, scripted)
    code, _, err = run(["build", str(folder), "-o", str(tmp_path / "out")], capsys)
    assert code == 0, err
    document = check_audit((tmp_path / "out" / "audit.json").read_bytes())
    assert document == {"format": 1, "head": None, "complete": False, "entries": []}
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == [
        f"flagc: note: {folder} {where}: the audit log is empty and the "
        "revision is a hash of the content"
    ]
    assert "(0 audit entries)" in err
    snapshot = check_snapshot((tmp_path / "out" / "snapshot.json").read_bytes(), folder)
    assert _history_fields(snapshot) == {"banner": dict.fromkeys(_HISTORY_NAMES)}


def test_a_dirty_tree_is_built_and_its_commits_audited(
    scripted: Scripted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    (scripted.flags / "banner.yaml").write_text(BANNER.replace("false", "true"), encoding="utf-8")
    code, _, err = run(["build", str(scripted.flags), "-o", str(tmp_path / "out")], capsys)
    assert code == 0, err  # and warns: test_a_write_that_fails_comes_back_with_the_findings
    snapshot = check_snapshot((tmp_path / "out" / "snapshot.json").read_bytes(), scripted.flags)
    assert snapshot["revision"] == f"{first.sha}-dirty"
    assert snapshot["flags"]["banner"]["enabled"] is True  # the work tree is what is built
    document = check_audit((tmp_path / "out" / "audit.json").read_bytes())
    assert document == {
        "format": 1,
        "head": first.sha,
        "complete": True,
        "entries": [
            entry(
                first,
                "created",
                "banner",
                "banner.yaml",
                created_fields(BANNER_FIELDS),
                appeared(cells(False)),
            ),
            project_created(first),
        ],
    }
