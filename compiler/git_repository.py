"""The git work tree holding a flags folder (`GitRepository`), read through the git CLI.

No git library, on purpose: this module used GitPython only as a thin wrapper over that CLI,
and importing it cost every process that reads the history ~40 ms (this module's import,
the project's modules it needs loaded first: 40 ms with GitPython, 2 ms without, median of
11), where an incremental build takes ~0.24 s in all. The git CLI is the library: each
method runs git (`_git`: its arguments a list, never a shell, `--end-of-options` or `--`
before a revision that could look like an option) and raises `GitError`, with git's own
message, when git fails.

History is read in one pass: a single `git log --raw -z` over the flags folder, parsed by
`compiler.git_log`, and blobs through one `git cat-file --batch` process, read concurrently
by `compiler.history_stream`. `flagc diff` reads a revision's folder through `git archive`,
unpacked by `compiler.unpack`.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from compiler.git_log import (
    COMMIT_ID,
    LOG_FORMAT,
    STATUS,
    Commit,
    lists_yaml,
    parse_log,
    parse_status,
)
from compiler.history_stream import HistoryStream
from compiler.unpack import unpack

# The flags folder's path inside the work tree is given to git as a pathspec: taken as it
# is, never as magic or a pattern (a folder named `:(glob)f` had an empty history).
_GIT = ("git", "--literal-pathspecs")


class GitError(OSError):
    """A git command that failed; the message has git's own (its stderr). An OSError, as a
    missing git is, so that flagc reports either as an error of its own (exit 2)."""


class GitRepository:
    """A git work tree holding a flags folder, as it was when opened; `prefix` is that
    folder inside it (`a/b/`, or `` when the flags folder is the whole tree).

    HEAD is read once, when it is opened, and everything read of the history is read up to
    that commit: a history read while a commit lands (`flagc watch`, a CI job on a moving
    branch) is the history of one HEAD, and its log's head is the commit its last entries
    come from. (Asking git again at each use also cost a process each: four more a build.)"""

    def __init__(
        self, root: Path, folder: Path, head: str | None = None, shallow: bool = False
    ) -> None:
        self.root = root.resolve()
        relative = PurePosixPath(folder.resolve().relative_to(self.root).as_posix())
        self.prefix = "" if str(relative) == "." else f"{relative}/"
        self._head, self._shallow = head, shallow
        self._streams: list[HistoryStream] = []

    @classmethod
    def open(cls, folder: Path, head: str | None = None) -> GitRepository | None:
        """The repository whose work tree holds `folder` (or a parent of it), or None
        outside a work tree: none there, a bare repository, no such folder, no git. `head`:
        the commit to read it up to, when the caller knows which HEAD its files were read
        against (else HEAD's now)."""
        try:
            # One process: the work tree, whether it is shallow, and HEAD's commit (no line
            # before the first commit). Read from the end: a folder's name may hold a newline.
            told = _git(
                folder, "rev-parse", "--show-toplevel", "--is-shallow-repository",
                "--revs-only", "HEAD^{commit}",
            ).removesuffix(b"\n").split(b"\n")  # fmt: skip
            last = told[-1].decode("ascii", "replace")
            now = told.pop().decode() if COMMIT_ID.fullmatch(last) else None
            shallow = told.pop() == b"true"
            top = b"\n".join(told)
            return cls(Path(os.fsdecode(top)), folder, head or now, shallow) if top else None
        except (OSError, ValueError, IndexError):  # ValueError: `folder` not below the tree
            return None

    def close(self) -> None:
        """End the git processes of any stream not ended yet."""
        while self._streams:
            self._streams.pop().close()

    def __enter__(self) -> GitRepository:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def head(self) -> str | None:
        """HEAD's commit when the repository was opened; None before the first commit."""
        return self._head

    def is_shallow(self) -> bool:
        return self._shallow

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
        return lists_yaml(parse_status(self._git(*STATUS, "--", self._pathspec()))[1])

    def stream(
        self, since: str | None = None, skip: Callable[[str, str], bool] | None = None
    ) -> HistoryStream:
        """Commits that changed the flags folder on the first-parent line of HEAD (a merged
        pull request is one commit, diffed against its first parent), only those after
        `since` when given, and the content of every blob they name but those `skip` is
        true of (SHA, path), read as git produces them. Use it as a context manager: its
        end (or this repository's) ends both git processes."""
        log = self._start("log", *self._log_arguments(since))
        try:
            # Its stderr is flagc's (no pipe to wait on): what it says on failing reaches the
            # user, and a blob it does not answer is a ValueError (history_stream._read_blob).
            blobs = self._start("cat-file", "--batch", stdin=subprocess.PIPE, stderr=None)
        except OSError:
            _end(log)
            raise
        try:
            stream = HistoryStream(
                log, blobs, self.prefix, skip, failed=functools.partial(_failed, "log")
            )
        except BaseException:
            _end(log)
            _end(blobs)
            raise
        self._streams.append(stream)
        return stream

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
            "--end-of-options",
            f"{since}..{self._tip}" if since else self._tip,
            "--",
            self._pathspec(),
        ]

    def log_range(self, revisions: str) -> list[Commit]:
        """Every commit in `revisions` (BASE..HEAD) that changed the flags folder, oldest
        first, merges included."""
        output = self._git(
            "log", "--raw", "-z", "--no-abbrev", "-M", "--diff-merges=first-parent",
            f"--format={LOG_FORMAT}", "--end-of-options", revisions, "--", self._pathspec(),
        )  # fmt: skip
        return parse_log(output, self.prefix)[::-1]

    def on_first_parent_line(self, sha: str) -> bool:
        """Whether commit `sha` is HEAD or reached from it by first parents only. Only the
        commits since `sha` are walked (`sha..HEAD`, with their parents): the line holds
        `sha` when the oldest of them has it as first parent (walking the whole line took
        54 ms of every incremental build at 11,000 commits)."""
        if not COMMIT_ID.fullmatch(sha):  # read from a file: never an option, nor a range
            return False
        try:
            since = self._git("rev-list", "--first-parent", "--parents", f"{sha}..{self._tip}")
        except GitError:  # not a commit
            return False
        lines = since.decode().splitlines()
        if not lines:  # HEAD is `sha` or one of its ancestors
            return self.head() == sha
        return lines[-1].split()[1:2] == [sha]

    def file_at(self, revision: str, path: str) -> bytes | None:
        """The content of `path` (inside the flags folder) at `revision`, or None. Any kind
        of object: a folder's (`path` ''), a tree, is there too (`flagc diff` asks)."""
        name = f"{revision}:{self.prefix}{path}"
        if "\n" in name:  # `git cat-file --batch` reads names a line each
            return None
        try:
            answer = self._git("cat-file", "--batch", stdin=os.fsencode(name) + b"\n")
        except GitError:
            return None
        # `<id> <type> <size>`, the content and a newline; or `<name> missing` (or ambiguous)
        header, _, rest = answer.partition(b"\n")
        fields = header.split()
        if len(fields) != 3 or not fields[2].isdigit() or len(rest) <= int(fields[2]):
            return None
        return rest[: int(fields[2])]

    def resolve(self, revision: str) -> str | None:
        """The commit SHA that `revision` names, or None (unknown, not a commit, or cut
        off by a shallow clone). git itself parses it, exactly as on the command line."""
        try:
            output = self._git(
                "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"
            )
        except GitError:
            return None
        return output.decode().strip() or None

    def write_folder_at(self, revision: str, destination: Path) -> None:
        """Write the flags folder as it was at `revision` into `destination`: its files, then
        its symbolic links as committed (see compiler.unpack)."""
        # `--` first: git archive takes the revision after it, never as an option.
        archive = self._git("archive", "--format=tar", "--", revision, self._pathspec())
        unpack(io.BytesIO(archive), self.prefix, destination)

    def _pathspec(self) -> str:
        return self.prefix or "."

    @property
    def _tip(self) -> str:
        """The commit the history is read up to: HEAD's, as opened."""
        return self._head or "HEAD"  # (no commit: git says so)

    def _git(self, *arguments: str, stdin: bytes = b"") -> bytes:
        return _git(self.root, *arguments, stdin=stdin)

    def _start(
        self, *arguments: str, stdin: int = subprocess.DEVNULL, stderr: int | None = subprocess.PIPE
    ) -> subprocess.Popen[bytes]:
        """git running in the work tree, its output read through a pipe."""
        return subprocess.Popen(
            [*_GIT, *arguments], cwd=self.root, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr
        )


def _git(where: Path, *arguments: str, stdin: bytes = b"") -> bytes:
    """git's output for `arguments`, run in `where` with `stdin` as its input; GitError
    when it fails, OSError when it cannot run (no git, `where` gone)."""
    done = subprocess.run(
        [*_GIT, *arguments], cwd=where, input=stdin, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise _failed(arguments[0], done.returncode, done.stderr)
    return done.stdout


def _failed(command: str, code: int, stderr: bytes) -> GitError:
    lines = stderr.decode(errors="backslashreplace").splitlines()
    said = "; ".join(line.strip() for line in lines if line.strip()) or "no message"
    return GitError(f"git {command} failed (exit code {code}): {said}")


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop `process` and close its pipes (a stream that could not be made)."""
    process.kill()
    process.communicate()


def revision(folder: Path) -> str | None:
    """The commit of HEAD for the work tree holding `folder`, with `-dirty` when a YAML file
    below it differs from HEAD; None outside a work tree or before the first commit."""
    repository = GitRepository.open(folder)
    if repository is None:
        return None
    with repository:
        try:
            return repository.revision()
        except OSError:  # git failed (GitError), or is gone
            return None
