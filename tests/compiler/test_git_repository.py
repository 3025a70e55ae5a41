"""The snapshot's revision, from real git repositories: HEAD, `-dirty`, or content-based."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import compiler.build
from compiler.cli import main
from compiler.git_repository import GitError, GitRepository, revision
from tests.compiler.snapshot_checks import FULL_TREE, check_snapshot
from tests.conftest import Git, git_in, write_tree

FLAGS = "config/flags"  # the flags folder is a sub-folder of the repository
OUTSIDE = {"README.md": "# the service\n", "src/app.py": "print('hello')\n"}


def build(folder: Path, out: Path) -> dict[str, Any]:
    assert main(["build", str(folder), "-o", str(out)]) == 0
    data = (out / "snapshot.json").read_bytes()
    return check_snapshot(data, folder)


@pytest.fixture
def committed(git_repo: tuple[Path, Git]) -> tuple[Path, Path, Git]:
    """A repository with the flags in config/flags and other files beside them, committed;
    returns (repository, flags folder, git)."""
    repo, git = git_repo
    write_tree(repo / FLAGS, FULL_TREE)
    write_tree(repo, OUTSIDE)
    git("add", "--all")
    git("commit", "--quiet", "--message", "flags")
    return repo, repo / FLAGS, git


def head(git: Git) -> str:
    return git("rev-parse", "HEAD").strip()


def test_committed_tree_is_head(committed: tuple[Path, Path, Git], tmp_path: Path) -> None:
    _, folder, git = committed
    sha = head(git)
    assert len(sha) == 40
    assert revision(folder) == sha
    assert build(folder, tmp_path / "out")["revision"] == sha


def test_relative_folder(
    committed: tuple[Path, Path, Git], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, folder, git = committed
    monkeypatch.chdir(repo)
    assert revision(Path(FLAGS)) == head(git)
    monkeypatch.chdir(folder / "checkout")
    assert revision(Path("..")) == head(git)
    monkeypatch.chdir(tmp_path)
    assert revision(Path(os.path.relpath(folder))) == head(git)
    (folder / "growth" / "banner.yaml").write_text(
        "description: Banner\nowner: growth\nenabled: false\n", encoding="utf-8"
    )
    assert revision(Path(os.path.relpath(folder))) == f"{head(git)}-dirty"


def test_the_whole_repository_as_flags_folder(git_repo: tuple[Path, Git]) -> None:
    repo, git = git_repo
    write_tree(repo, FULL_TREE)
    git("add", "--all")
    git("commit", "--quiet", "--message", "flags")
    assert revision(repo) == head(git)
    (repo / "notes.txt").write_text("anything\n", encoding="utf-8")  # not compiled
    assert revision(repo) == head(git)
    (repo / "more.yaml").write_text("description: M\nowner: me\nenabled: true\n", "utf-8")
    assert revision(repo) == f"{head(git)}-dirty"


def test_modified_file_is_dirty(committed: tuple[Path, Path, Git], tmp_path: Path) -> None:
    _, folder, git = committed
    path = folder / "growth" / "banner.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Free", "Paid"), encoding="utf-8")
    dirty = f"{head(git)}-dirty"
    assert revision(folder) == dirty
    assert build(folder, tmp_path / "out")["revision"] == dirty
    git("add", "--all")  # staged is still not committed
    assert revision(folder) == dirty
    git("commit", "--quiet", "--message", "paid")
    assert revision(folder) == head(git)


@pytest.mark.parametrize(
    "relative", ["new-flag.yaml", "checkout/payments/new-flag.yaml", "brand-new/deeper/x.yaml"]
)
def test_untracked_file_is_dirty(
    relative: str, committed: tuple[Path, Path, Git], tmp_path: Path
) -> None:
    _, folder, git = committed
    write_tree(folder, {relative: "description: New\nowner: me\nenabled: false\n"})
    dirty = f"{head(git)}-dirty"
    assert revision(folder) == dirty
    assert build(folder, tmp_path / "out")["revision"] == dirty


def test_deleted_file_is_dirty(committed: tuple[Path, Path, Git]) -> None:
    _, folder, git = committed
    (folder / "growth" / "banner.yaml").unlink()
    assert revision(folder) == f"{head(git)}-dirty"


def test_changes_outside_the_flags_folder_are_not_dirty(
    committed: tuple[Path, Path, Git], tmp_path: Path
) -> None:
    repo, folder, git = committed
    (repo / "README.md").write_text("# changed\n", encoding="utf-8")
    (repo / "src" / "app.py").unlink()
    write_tree(
        repo,
        {
            "untracked.txt": "new\n",
            "config/other.yaml": "x: 1\n",
            "config/flags-old/stale.yaml": "description: Old\nowner: me\nenabled: true\n",
            "config/flagsx": "a file whose name starts like the folder\n",
        },
    )
    git("add", "config/other.yaml")
    sha = head(git)
    assert revision(folder) == sha
    assert build(folder, tmp_path / "out")["revision"] == sha


def test_ignored_flag_file_is_dirty(committed: tuple[Path, Path, Git], tmp_path: Path) -> None:
    """An ignored flag file is still compiled, so the snapshot is not HEAD's."""
    repo, folder, git = committed
    (repo / ".gitignore").write_text("local-*.yaml\n", encoding="utf-8")
    git("add", ".gitignore")
    git("commit", "--quiet", "--message", "ignore local flags")
    write_tree(folder, {"local-hack.yaml": "description: Mine\nowner: me\nenabled: true\n"})
    document = build(folder, tmp_path / "out")
    assert "local-hack" in document["flags"]
    assert document["revision"] == f"{head(git)}-dirty"


def test_repository_without_commits(git_repo: tuple[Path, Git], tmp_path: Path) -> None:
    repo, git = git_repo
    folder = write_tree(repo / FLAGS, FULL_TREE)
    assert revision(folder) is None
    git("add", "--all")  # staged, still no commit
    assert revision(folder) is None
    document = build(folder, tmp_path / "out")
    assert document["revision"] == f"content-{document['digest'].removeprefix('sha256:')[:12]}"


def _outside_any_repository(path: Path) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode != 0


def test_plain_folder(tmp_path: Path) -> None:
    if not _outside_any_repository(tmp_path):
        pytest.skip(f"{tmp_path} is inside a git work tree")
    folder = write_tree(tmp_path / "flags", FULL_TREE)
    assert revision(folder) is None
    document = build(folder, tmp_path / "out")
    digest = document["digest"].removeprefix("sha256:")
    assert document["revision"] == f"content-{digest[:12]}"
    (folder / "growth" / "banner.yaml").write_text(
        "description: Banner\nowner: growth\nenabled: false\n", encoding="utf-8"
    )
    changed = build(folder, tmp_path / "again")
    assert changed["digest"] != document["digest"]
    assert changed["revision"] == f"content-{changed['digest'].removeprefix('sha256:')[:12]}"


def test_digest_does_not_depend_on_the_revision(
    committed: tuple[Path, Path, Git], tmp_path: Path
) -> None:
    """The same tree committed in two repositories with different histories."""
    _, folder, git = committed
    other = tmp_path / "other"
    other.mkdir()
    other_git = git_in(other)
    other_git("init", "--quiet", "--initial-branch=main")
    write_tree(other, {"CHANGELOG.md": "first\n"})
    other_git("add", "--all")
    other_git("commit", "--quiet", "--message", "an earlier commit")
    shutil.copytree(folder, other / FLAGS)
    other_git("add", "--all")
    other_git(
        "commit",
        "--quiet",
        "--message",
        "flags",
        env={"GIT_COMMITTER_DATE": "2026-03-04T05:06:07Z"},
    )
    plain = tmp_path / "plain" / "flags"
    shutil.copytree(folder, plain)

    first = build(folder, tmp_path / "first")
    second = build(other / FLAGS, tmp_path / "second")
    assert first["revision"] == head(git)
    assert second["revision"] == head(other_git)
    assert first["revision"] != second["revision"]
    assert first["digest"] == second["digest"]
    without = [{k: v for k, v in d.items() if k != "revision"} for d in (first, second)]
    assert without[0] == without[1]
    if _outside_any_repository(plain):
        # Outside git the same flags have no history: that is all that differs.
        third = build(plain, tmp_path / "third")
        assert third["digest"] != first["digest"]
        assert third["revision"].startswith("content-")
        history = {"created_at", "created_by", "updated_at", "updated_by", "updated_reason"}
        for key, flag in third["flags"].items():
            assert {name: flag[name] for name in history} == dict.fromkeys(history)
            rest = {name: value for name, value in flag.items() if name not in history}
            assert rest == {n: v for n, v in first["flags"][key].items() if n not in history}


def test_build_output_inside_the_flags_repository(committed: tuple[Path, Path, Git]) -> None:
    """Writing the snapshot into the repository (outside the flags folder) changes nothing."""
    repo, folder, git = committed
    first = build(folder, repo / "build")
    second = build(folder, repo / "build")
    assert first == second
    assert first["revision"] == head(git)
    data = json.loads((repo / "build" / "snapshot.json").read_bytes())
    assert data["revision"] == head(git)


# GitRepository.on_first_parent_line: whether an earlier log's head can be continued


def test_the_first_parent_line_is_told_from_the_commits_since(
    committed: tuple[Path, Path, Git],
) -> None:
    """HEAD and its first parents are on the line; a merged branch's commits, a commit of
    another branch, an unknown id and what is no commit id are not."""
    _, folder, git = committed
    first = head(git)
    git("checkout", "--quiet", "-b", "topic")
    git("commit", "--quiet", "--allow-empty", "--message", "on the topic")
    topic = head(git)
    git("checkout", "--quiet", "-")
    git("commit", "--quiet", "--allow-empty", "--message", "on main")
    main_line = head(git)
    git("merge", "--quiet", "--no-ff", "--message", "merge the topic", "topic")
    merge = head(git)
    git("checkout", "--quiet", "-b", "elsewhere", first)
    git("commit", "--quiet", "--allow-empty", "--message", "elsewhere")
    elsewhere = head(git)
    git("checkout", "--quiet", "-")
    repository = GitRepository.open(folder)
    assert repository is not None
    with repository:
        told = {
            sha: repository.on_first_parent_line(sha)
            for sha in (merge, main_line, first, topic, elsewhere)
        }
        odd = ["0" * 40, "HEAD", "--all", f"{first}..HEAD", first[:12], ""]
        assert not any(repository.on_first_parent_line(text) for text in odd)
    assert told == {merge: True, main_line: True, first: True, topic: False, elsewhere: False}


# GitRepository runs the git CLI: what it cannot find, what it must never take as an option,
# and a repository git cannot read


def test_no_work_tree_is_none(git_repo: tuple[Path, Git], monkeypatch: pytest.MonkeyPatch) -> None:
    repo, git = git_repo
    folder = write_tree(repo / FLAGS, FULL_TREE)
    bare = repo.parent / "bare.git"
    git("init", "--quiet", "--bare", str(bare))
    for where in (repo / "missing", repo / ".git", repo / ".git" / "objects", bare):
        assert GitRepository.open(where) is None, where
    repository = GitRepository.open(folder)
    assert repository is not None
    assert (repository.root, repository.prefix) == (repo.resolve(), f"{FLAGS}/")
    assert repository.head() is None  # before the first commit
    monkeypatch.setenv("PATH", str(repo / "missing"))  # no git at all
    assert GitRepository.open(folder) is None
    assert revision(folder) is None


def test_revisions_are_never_options(committed: tuple[Path, Path, Git], tmp_path: Path) -> None:
    """A revision from the user reaches git after `--end-of-options` or `--` (or on
    cat-file's input): an option-like one names nothing, and git writes no file for it."""
    _, folder, git = committed
    sha = head(git)
    written = tmp_path / "written"
    option = f"--output={written}"
    repository = GitRepository.open(folder)
    assert repository is not None
    with repository:
        assert repository.resolve("HEAD") == sha
        assert repository.resolve(option) is None
        assert repository.file_at(option, "growth/banner.yaml") is None
        assert (
            repository.file_at(sha, "growth/banner.yaml")
            == (folder / "growth" / "banner.yaml").read_bytes()
        )
        assert repository.file_at(sha, "") is not None  # the folder itself: a tree
        assert repository.file_at(sha, "growth/missing.yaml") is None
        assert repository.file_at(f"{sha}\n{sha}", "growth/banner.yaml") is None
        with pytest.raises(GitError, match="git archive failed"):
            repository.write_folder_at(option, tmp_path / "folder")
        with pytest.raises(GitError, match="git log failed"):
            repository.log_range(option)
    assert not written.exists()


def test_a_repository_git_cannot_read_is_an_error(
    committed: tuple[Path, Path, Git], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An object of the history damaged: flagc says what git said (exit 2), no traceback."""
    repo, folder, git = committed
    damaged = head(git)
    git("commit", "--quiet", "--allow-empty", "--message", "later")
    loose = repo / ".git" / "objects" / damaged[:2] / damaged[2:]
    loose.chmod(0o644)
    loose.write_bytes(b"not a git object")
    assert main(["audit", "banner", str(folder)]) == 2
    assert "flagc: error: git log failed (exit code 128): " in capsys.readouterr().err
    assert main(["build", str(folder), "-o", str(tmp_path / "out"), "--full"]) == 2
    assert "flagc: error: git log failed (exit code 128): " in capsys.readouterr().err


def test_the_history_is_read_up_to_head_as_opened(committed: tuple[Path, Path, Git]) -> None:
    """A commit that lands while a repository is open (flagc watch, a moving CI branch) is
    not half read: its head, its log and its first-parent line stay those of HEAD then."""
    _, folder, git = committed
    opened = head(git)
    repository = GitRepository.open(folder)
    assert repository is not None
    with repository:
        (folder / "growth" / "banner.yaml").write_text("enabled: false\n")
        git("commit", "--quiet", "--all", "--message", "Landed meanwhile")
        landed = head(git)
        assert repository.head() == opened != landed
        assert not repository.on_first_parent_line(landed)
        with repository.stream() as stream:
            list(stream.blobs())
            subjects = [commit.subject for commit in stream.commits]
    assert "Landed meanwhile" not in subjects and subjects
    reopened = GitRepository.open(folder)
    assert reopened is not None and reopened.head() == landed


@pytest.mark.parametrize("name", [":(glob)flags", ":!flags", "[fl]ags", "fl*gs", "fl?gs"])
def test_a_folder_named_like_pathspec_magic_is_read_as_it_is(
    git_repo: tuple[Path, Git], tmp_path: Path, name: str
) -> None:
    """The flags folder's path reaches git as a pathspec, taken literally: named like magic
    (`:(glob)`, `:!` excludes) or a pattern, it is that folder's history that is read, not
    none (`:(glob)flags` had an empty audit log) nor another folder's."""
    repo, git = git_repo
    for folder in (name, "flags", "other"):
        write_tree(repo / folder, FULL_TREE)
    git("add", "--all")
    git("commit", "--quiet", "--message", "flags")
    banner = repo / name / "growth" / "banner.yaml"
    banner.write_text(banner.read_text().replace("enabled: true", "enabled: false", 1))
    git("commit", "--quiet", "--all", "--message", "only the oddly named folder")
    (repo / "other" / "growth" / "banner.yaml").unlink()
    git("commit", "--quiet", "--all", "--message", "only another folder")
    entries: dict[str, int] = {}
    for folder in (name, "flags"):
        result = compiler.build.build(repo / folder, tmp_path / f"out-{len(entries)}")
        assert result.outputs, result.diagnostics
        entries[folder] = result.audit_entries
    assert entries == {name: len(FULL_TREE) + 1, "flags": len(FULL_TREE)}
