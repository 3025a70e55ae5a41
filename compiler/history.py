"""Git: the one module that talks to git (through GitPython).

History is read in one pass: a single `git log --raw -z` over the flags folder, and blobs
through GitPython's one persistent `git cat-file --batch` process. The parser of git's
output is a pure function (`parse_log`), tested without a repository.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

# GitPython refuses to import without a git executable; without one we build unversioned.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git

_ZERO = "0" * 40
_FIELDS = ("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%B")
LOG_FORMAT = "%x1e" + "%x00".join(_FIELDS)


@dataclass(frozen=True, slots=True)
class Change:
    """One file changed by a commit, with paths relative to the flags folder.

    status is A (added), M (modified), D (deleted) or R (renamed or moved); a path outside
    the flags folder is None (a file moved in from elsewhere is an addition)."""

    status: str
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: str  # ISO 8601 with the author's offset
    committer_name: str
    committer_email: str
    committed_at: str
    message: str
    changes: tuple[Change, ...]

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0].strip(" \t\r")


def parse_log(data: bytes, prefix: str = "") -> list[Commit]:
    """Parse `git log --raw -z --no-abbrev --format=LOG_FORMAT` output, newest first as git
    prints it. Paths are made relative to `prefix` (the flags folder, `a/b/`), and those
    outside it become None."""
    commits: list[Commit] = []
    position = 0
    while position < len(data):
        if data[position : position + 1] != b"\x1e":
            raise ValueError(f"unexpected git log output at byte {position}")
        fields = []
        position += 1
        for _ in _FIELDS:
            end = data.index(b"\0", position)
            fields.append(data[position:end].decode("utf-8", "replace"))
            position = end + 1
        changes, position = _parse_raw(data, position, prefix)
        commits.append(_commit(fields, changes))
    return commits


def _commit(fields: list[str], changes: list[Change]) -> Commit:
    sha, parents, an, ae, at, cn, ce, ct, message = fields
    return Commit(
        sha, tuple(parents.split()), an, ae, at, cn, ce, ct, message.rstrip("\n"), tuple(changes)
    )


def _parse_raw(data: bytes, position: int, prefix: str) -> tuple[list[Change], int]:
    changes: list[Change] = []
    while data[position : position + 1] == b"\n":
        position += 1
    while data[position : position + 1] == b":":
        end = data.index(b"\0", position)
        _, _, old_blob, new_blob, status = data[position + 1 : end].decode().split(" ")
        paths = 2 if status[0] in "RC" else 1
        names = []
        for _ in range(paths):
            start, end = end + 1, data.index(b"\0", end + 1)
            names.append(os.fsdecode(data[start:end]))
        position = end + 1
        changes.append(_change(status[0], names, old_blob, new_blob, prefix))
        while data[position : position + 1] == b"\n":
            position += 1
    return changes, position


def _change(status: str, names: list[str], old_blob: str, new_blob: str, prefix: str) -> Change:
    old_name, new_name = (names[0], names[-1]) if status in "RC" else (names[0], names[0])
    old_path = _inside(old_name, prefix) if status not in "AC" else None
    new_path = _inside(new_name, prefix) if status != "D" else None
    if old_path is None and new_path is not None:
        status = "A"
    elif new_path is None and old_path is not None:
        status = "D"
    elif status not in "ADR":
        status = "M"  # T (type change) and others: the content changed
    return Change(
        status,
        old_path,
        new_path,
        old_blob if old_blob != _ZERO and old_path is not None else None,
        new_blob if new_blob != _ZERO and new_path is not None else None,
    )


def _inside(path: str, prefix: str) -> str | None:
    return path[len(prefix) :] if path.startswith(prefix) else None


class Repository:
    """A git work tree holding a flags folder."""

    def __init__(self, repo: git.Repo, folder: Path) -> None:
        self._repo = repo
        self.root = Path(repo.working_tree_dir or ".").resolve()
        relative = PurePosixPath(folder.resolve().relative_to(self.root).as_posix())
        self.prefix = "" if str(relative) == "." else f"{relative}/"

    @classmethod
    def open(cls, folder: Path) -> Repository | None:
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

    def __enter__(self) -> Repository:
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

    def revision(self) -> str | None:
        """HEAD's commit, with `-dirty` when the flags folder differs from it."""
        head = self.head()
        return None if head is None else f"{head}-dirty" if self.dirty() else head

    def dirty(self) -> bool:
        """Whether a YAML file below the flags folder differs from HEAD: changed, untracked,
        or ignored yet read by the compiler."""
        status = self._repo.git.status(
            "--porcelain", "-z", "--untracked-files=all", "--ignored", "--", self._pathspec()
        )
        return any(entry.lower().endswith((".yaml", ".yml")) for entry in status.split("\0"))

    def stream(self, since: str | None = None) -> HistoryStream:
        """Commits that changed the flags folder on the first-parent line of HEAD (a merged
        pull request is one commit, diffed against its first parent), only those after
        `since` when given, and the content of every blob they name, read as git produces
        them."""
        log = self._repo.git.log(*self._log_arguments(since), as_process=True)
        blobs = self._repo.git.cat_file("--batch", as_process=True, istream=subprocess.PIPE)
        return HistoryStream(log, blobs, self.prefix)

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
        """Whether commit `sha` is HEAD or reached from it by first parents only."""
        try:
            line = self._repo.git.rev_list("--first-parent", "HEAD")
        except git.GitError:
            return False
        return sha in line.split()

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

    def export(self, revision: str, destination: Path) -> None:
        """Write the flags folder as it was at `revision` into `destination`: its files, then
        its symbolic links as links (their targets as committed), so that the loader judges
        them as it judges the work tree's: one leading out of the folder is reported and
        never opened, one inside it works. Links come last, so no file is written through one.
        """
        stream = io.BytesIO()
        self._repo.archive(stream, revision, path=self._pathspec(), format="tar")
        stream.seek(0)
        destination.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=stream) as archive:
            members = list(_members(archive, self.prefix))
            for member in members:
                if member.isfile():
                    archive.extract(member, destination, filter="data")
            for member in members:
                if member.issym():
                    _link(destination, member)

    def _pathspec(self) -> str:
        return self.prefix or "."


Blob = tuple[str, str, bytes]  # SHA, the path it was first named by, content


class HistoryStream:
    """The first-parent log and its blobs, read concurrently: a thread parses `git log` as
    it arrives and asks `git cat-file --batch` for each new blob at once, while the caller
    consumes the blobs (parsing them, the costly part) as they come back. git's two
    processes and our parsing then run side by side instead of one after another.

    Iterate `blobs()` to the end, then read `commits` (oldest first).
    """

    def __init__(self, log: Any, cat_file: Any, prefix: str) -> None:
        self._log, self._cat_file, self._prefix = log, cat_file, prefix
        self._requested: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._newest_first: list[Commit] = []
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._read_log, daemon=True)
        self._thread.start()

    @property
    def commits(self) -> list[Commit]:
        return self._newest_first[::-1]

    def blobs(self) -> Iterator[Blob]:
        while (request := self._requested.get()) is not None:
            sha, path = request
            yield sha, path, _read_blob(self._cat_file.stdout, sha)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        self._log.wait()  # raises GitCommandError if git log failed

    def _read_log(self) -> None:
        seen: set[str] = set()
        pending = b""
        try:
            while chunk := self._log.stdout.read(1 << 16):
                pending = self._parse(pending + chunk, seen, final=False)
            self._parse(pending, seen, final=True)
        except BaseException as exc:  # handed to the consumer, who raises it
            self._failure = exc
        finally:
            with contextlib.suppress(OSError):
                self._cat_file.stdin.close()
            self._requested.put(None)

    def _parse(self, data: bytes, seen: set[str], *, final: bool) -> bytes:
        """Parse the complete records in `data`, ask for their new blobs; return the rest."""
        end = len(data) if final else data.rfind(b"\x1e")
        if end <= 0:
            return data
        try:
            commits = parse_log(data[:end], self._prefix)
        except (ValueError, IndexError):
            if final:
                raise
            return data  # a record separator inside a message: wait for more
        requests = []
        for commit in commits:
            for change in commit.changes:
                for sha, path in (
                    (change.old_blob, change.old_path),
                    (change.new_blob, change.new_path),
                ):
                    if sha is not None and path is not None and sha not in seen:
                        seen.add(sha)
                        requests.append((sha, path))
        # Announced before they are asked for: the consumer must be reading the answers
        # while we write, or a large batch fills both pipes and everyone waits.
        for request in requests:
            self._requested.put(request)
        self._cat_file.stdin.write("".join(f"{sha}\n" for sha, _ in requests).encode())
        self._cat_file.stdin.flush()
        self._newest_first.extend(commits)
        return data[end:]

    def __enter__(self) -> HistoryStream:
        return self

    def __exit__(self, *_: object) -> None:
        for process in (self._log, self._cat_file):
            with contextlib.suppress(OSError, ValueError):
                process.stdout.close()
            with contextlib.suppress(Exception):
                process.wait()


def _read_blob(stream: IO[bytes], sha: str) -> bytes:
    header = stream.readline().split()
    if len(header) != 3 or header[1] != b"blob":
        raise ValueError(f"git cat-file could not read blob {sha}: {b' '.join(header)!r}")
    data = stream.read(int(header[2]))
    stream.read(1)  # the newline after each object
    return data


def _members(archive: tarfile.TarFile, prefix: str) -> Iterator[tarfile.TarInfo]:
    """The files and links below `prefix`, named relative to it."""
    for member in archive.getmembers():
        if (member.isfile() or member.issym()) and member.name.startswith(prefix):
            member.name = member.name[len(prefix) :]
            yield member


def _link(destination: Path, member: tarfile.TarInfo) -> None:
    """The link as committed. Only its own name is checked (git names stay inside the tree);
    its target is the loader's to judge, which never opens one that leads out."""
    path = destination / member.name
    if member.name.startswith("/") or ".." in PurePosixPath(member.name).parts:
        return  # pragma: no cover - git archive never names a path outside the tree
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(path):
        path.symlink_to(member.linkname)


def revision(folder: Path) -> str | None:
    """The commit of HEAD for the work tree holding `folder`, with `-dirty` when a YAML file
    below it differs from HEAD; None outside a work tree or before the first commit."""
    repository = Repository.open(folder)
    if repository is None:
        return None
    with repository:
        try:
            return repository.revision()
        except git.GitError:
            return None
