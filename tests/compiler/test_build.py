"""`compiler.build.build`, the build as a function: its result on real git repositories,
and the same OUT, byte for byte, as `flagc build`."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import publish
from compiler.build import BuildResult, Note, build
from compiler.cli import main
from compiler.diagnostics import has_errors
from tests.conftest import PROJECT, Git, git_in, write_tree

TODAY = datetime.date(2026, 1, 10)
COMPILE_STAGES = ["load", "validate", "references", "resolve", "check"]
STAGES = [*COMPILE_STAGES, "history", "snapshot", "render", "flagd", "write"]
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


def documented(out: Path) -> dict[str, bytes]:
    """Every file a reader of OUT sees, by its path below OUT."""
    paths = [out / publish.SNAPSHOT, out / publish.AUDIT, *sorted((out / "flagd").glob("*"))]
    return {str(path.relative_to(out)): path.read_bytes() for path in paths}


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
    log = json.loads((out / "audit.json").read_bytes())
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
    write_tree(flags, {"banner.yaml": FLAGS["banner.yaml"].replace("false", "true")})
    commit(git, "Turn the banner on")
    clone = tmp_path / "clone"
    git_in(tmp_path)("clone", "--quiet", "--depth", "1", f"file://{flags.parent}", str(clone))
    out = tmp_path / "out"
    refused = build(clone / "flags", out, today=TODAY)
    assert refused.outputs == ()
    assert refused.refused is not None and "--allow-shallow" in refused.refused
    assert list(refused.timings) == [*COMPILE_STAGES, "history"]
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
