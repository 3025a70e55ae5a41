"""The git work tree holding a flags folder (`GitRepository`): the one module that imports
GitPython (tests/test_layers.py holds it so; a flagserve worker never loads it).

History is read in one pass: a single `git log --raw -z` over the flags folder, parsed by
`compiler.git_log`, and blobs through GitPython's one persistent `git cat-file --batch`
process, read concurrently by `compiler.history_stream`. `flagc diff` reads a revision's
folder through `git archive`, unpacked by `compiler.unpack`.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath

# GitPython refuses to import without a git executable; without one we build unversioned.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git

from compiler.git_log import LOG_FORMAT, Commit, parse_log
from compiler.history_stream import HistoryStream
from compiler.unpack import unpack

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a commit's id: SHA-1, or SHA-256


class GitRepository:
    """A git work tree holding a flags folder; `prefix` is that folder inside it (`a/b/`, or
    `` when the flags folder is the whole tree)."""

    def __init__(self, repo: git.Repo, folder: Path) -> None:
        self._repo = repo
        self.root = Path(repo.working_tree_dir or ".").resolve()
        relative = PurePosixPath(folder.resolve().relative_to(self.root).as_posix())
        self.prefix = "" if str(relative) == "." else f"{relative}/"

    @classmethod
    def open(cls, folder: Path) -> GitRepository | None:
        """The repository whose work tree holds `folder`, or None outside git."""
        try:
            repo = git.Repo(folder, search_parent_directories=True, expand_vars=False)
            if repo.bare or repo.working_tree_dir is None:
                return None
            return cls(repo, folder)
        except (git.GitError, ValueError):
            return None

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> GitRepository:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def head(self) -> str | None:
        try:
            return self._repo.head.commit.hexsha
        except ValueError:  # no commit yet
            return None

    def is_shallow(self) -> bool:
        return str(self._repo.git.rev_parse("--is-shallow-repository")).strip() == "true"

    def revision(self, dirty: bool | None = None) -> str | None:
        """HEAD's commit, with `-dirty` when the flags folder differs from it (`dirty`, when
        the caller knows already; else asked of git)."""
        head = self.head()
        if head is None:
            return None
        return f"{head}-dirty" if (self.dirty() if dirty is None else dirty) else head

    def dirty(self) -> bool:
        """Whether a YAML file below the flags folder differs from HEAD: changed, untracked,
        or ignored yet read by the compiler."""
        status = self._repo.git.status(
            "--porcelain", "-z", "--untracked-files=all", "--ignored", "--", self._pathspec()
        )
        return any(entry.lower().endswith((".yaml", ".yml")) for entry in status.split("\0"))

    def stream(
        self, since: str | None = None, skip: Callable[[str, str], bool] | None = None
    ) -> HistoryStream:
        """Commits that changed the flags folder on the first-parent line of HEAD (a merged
        pull request is one commit, diffed against its first parent), only those after
        `since` when given, and the content of every blob they name but those `skip` is
        true of (SHA, path), read as git produces them."""
        log = self._repo.git.log(*self._log_arguments(since), as_process=True)
        blobs = self._repo.git.cat_file("--batch", as_process=True, istream=subprocess.PIPE)
        return HistoryStream(log, blobs, self.prefix, skip)

    def _log_arguments(self, since: str | None) -> list[str]:
        return [
            "--first-parent",
            "--diff-merges=first-parent",
            "--raw",
            "-z",
            "--no-abbrev",
            "-M",
            "--root",
            f"--format={LOG_FORMAT}",
            f"{since}..HEAD" if since else "HEAD",
            "--",
            self._pathspec(),
        ]

    def log_range(self, revisions: str) -> list[Commit]:
        """Every commit in `revisions` (BASE..HEAD) that changed the flags folder, oldest
        first, merges included."""
        output = self._repo.git.log(
            "--raw", "-z", "--no-abbrev", "-M", "--diff-merges=first-parent",
            f"--format={LOG_FORMAT}", revisions, "--", self._pathspec(),
            stdout_as_string=False,
        )  # fmt: skip
        return parse_log(output, self.prefix)[::-1]

    def on_first_parent_line(self, sha: str) -> bool:
        """Whether commit `sha` is HEAD or reached from it by first parents only. Only the
        commits since `sha` are walked (`sha..HEAD`, with their parents): the line holds
        `sha` when the oldest of them has it as first parent (walking the whole line took
        54 ms of every incremental build at 11,000 commits)."""
        if not _SHA.fullmatch(sha):  # read from a file: never an option, nor a range
            return False
        try:
            since = self._repo.git.rev_list("--first-parent", "--parents", f"{sha}..HEAD")
        except git.GitError:  # not a commit
            return False
        lines: list[str] = str(since).splitlines()
        if not lines:  # HEAD is `sha` or one of its ancestors
            return self.head() == sha
        return lines[-1].split()[1:2] == [sha]

    def file_at(self, revision: str, path: str) -> bytes | None:
        """The content of `path` (inside the flags folder) at `revision`, or None."""
        try:
            data: bytes = self._repo.git.get_object_data(f"{revision}:{self.prefix}{path}")[3]
        except (git.GitError, ValueError):
            return None
        return data

    def resolve(self, revision: str) -> str | None:
        """The commit SHA that `revision` names, or None (unknown, not a commit, or cut
        off by a shallow clone). git itself parses it, exactly as on the command line."""
        try:
            output = self._repo.git.rev_parse(
                "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"
            )
        except git.GitError:
            return None
        sha = str(output).strip()
        return sha or None

    def write_folder_at(self, revision: str, destination: Path) -> None:
        """Write the flags folder as it was at `revision` into `destination`: its files, then
        its symbolic links as committed (see compiler.unpack)."""
        archive = io.BytesIO()
        self._repo.archive(archive, revision, path=self._pathspec(), format="tar")
        archive.seek(0)
        unpack(archive, self.prefix, destination)

    def _pathspec(self) -> str:
        return self.prefix or "."


def revision(folder: Path) -> str | None:
    """The commit of HEAD for the work tree holding `folder`, with `-dirty` when a YAML file
    below it differs from HEAD; None outside a work tree or before the first commit."""
    repository = GitRepository.open(folder)
    if repository is None:
        return None
    with repository:
        try:
            return repository.revision()
        except git.GitError:
            return None
