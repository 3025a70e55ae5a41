"""compiler.history_stream: the first-parent log and its blobs, read from a real repository.

`HistoryStream` yields each blob once, with the path it was first named by, while a thread
parses the log; `commits` then lists them oldest first. A batch of blobs larger than a pipe
holds must not stall git's two processes, and git's own failure reaches the caller.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.git_repository import GitError, GitRepository
from compiler.history_stream import Blob, _read_blob
from tests.conftest import Git, write_tree


def read(
    repo: Path, since: str | None = None, skip: Callable[[str, str], bool] | None = None
) -> tuple[list[Blob], list[str]]:
    """The blobs of the flags folder's history, and the commits' subjects, oldest first."""
    repository = GitRepository.open(repo / "flags")
    assert repository is not None
    with repository, repository.stream(since, skip) as stream:
        blobs = list(stream.blobs())
        return blobs, [commit.subject for commit in stream.commits]


def commit(run: Git, repo: Path, message: str, files: dict[str, str]) -> str:
    write_tree(repo, files)
    run("add", "--all")
    run("commit", "--quiet", "--message", message)
    return run("rev-parse", "HEAD").strip()


def test_blobs_once_each_and_commits_oldest_first(git_repo: tuple[Path, Git]) -> None:
    repo, run = git_repo
    first = commit(run, repo, "Add a", {"flags/a.yaml": "one\n", "README.md": "# x\n"})
    commit(run, repo, "Copy a", {"flags/team/b.yaml": "one\n"})  # the same blob again
    commit(run, repo, "Change a", {"flags/a.yaml": "two\n"})
    blobs, subjects = read(repo)
    assert subjects == ["Add a", "Copy a", "Change a"]
    assert sorted((path, content) for _, path, content in blobs) == [
        ("a.yaml", b"one\n"),
        ("a.yaml", b"two\n"),
    ]
    assert all(run("cat-file", "blob", sha).encode() == data for sha, _, data in blobs)
    _, since = read(repo, first)
    assert since == ["Copy a", "Change a"]


def test_blobs_the_caller_knows_are_not_asked_for(git_repo: tuple[Path, Git]) -> None:
    """A blob skipped as named by one path is still asked for as named by another (the
    caller knows a blob's version as a flag, not as _project.yaml); git names the newest
    commit's first."""
    repo, run = git_repo
    commit(run, repo, "Add the project", {"flags/_project.yaml": "one\n"})
    commit(run, repo, "Add a and b", {"flags/a.yaml": "one\n", "flags/b.yaml": "two\n"})
    blobs, subjects = read(repo, skip=lambda sha, path: path == "a.yaml")
    assert subjects == ["Add the project", "Add a and b"]
    assert sorted((path, content) for _, path, content in blobs) == [
        ("_project.yaml", b"one\n"),
        ("b.yaml", b"two\n"),
    ]


def test_more_blob_content_than_a_pipe_holds(git_repo: tuple[Path, Git]) -> None:
    """Every blob is asked for at once, while the caller reads the answers: no deadlock."""
    repo, run = git_repo
    files = {f"flags/flag-{index}.yaml": f"{index}\n" + "x" * 200 for index in range(1500)}
    commit(run, repo, "Import", files)
    blobs, subjects = read(repo)
    assert subjects == ["Import"]
    assert len(blobs) == 1500
    assert sum(len(data) for _, _, data in blobs) > 4 * 65536


def test_a_failing_git_log_is_raised(git_repo: tuple[Path, Git]) -> None:
    """`since` naming no commit: git log fails, and the caller hears of it after the blobs,
    with what git said (which names the range, up to HEAD's commit as opened)."""
    repo, run = git_repo
    commit(run, repo, "Add a", {"flags/a.yaml": "one\n"})
    with pytest.raises(
        GitError, match=r"^git log failed \(exit code 128\): .*0{40}\.\.[0-9a-f]{40}"
    ):
        read(repo, "0" * 40)


BATCH_ANSWERS = {
    "a blob": (b"abc blob 3\nxyz\n", b"xyz"),
    "an empty blob": (b"abc blob 0\n\n", b""),
    "a missing object": (b"abc missing\n", ValueError),
    "a tree": (b"abc tree 3\nxyz\n", ValueError),
    "nothing (git ended)": (b"", ValueError),
}


@pytest.mark.parametrize(
    ("answer", "expected"), list(BATCH_ANSWERS.values()), ids=list(BATCH_ANSWERS)
)
def test_read_blob(answer: bytes, expected: bytes | type[Exception]) -> None:
    stream = io.BytesIO(answer)
    if isinstance(expected, bytes):
        assert _read_blob(stream, "abc") == expected
        assert stream.read() == b""  # the newline after the object is consumed
    else:
        with pytest.raises(expected, match="git cat-file could not read blob abc"):
            _read_blob(stream, "abc")
