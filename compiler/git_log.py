"""git's output, parsed: `Commit`s and their `Change`s from the output of `git log --raw -z
--no-abbrev --format=LOG_FORMAT`, and what `git STATUS` lists (`parse_status`).

Pure: bytes in, data out, no repository and no git process, so that it is tested with
tables of git's exact output (tests/compiler/test_git_log.py). `compiler.git_repository`
and `compiler.incremental` run git and hand its output here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a commit's id: SHA-1, or SHA-256
_ZERO = "0" * 40
_FIELDS = ("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%B")
# Each commit starts with a record separator and its fields end with NULs: a message may
# hold anything but NUL, and the raw lines that follow it start with ':'.
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
    """One commit: who wrote and committed it, when, its message and the changed files."""

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


# `git status` as flagc asks it (then `--` and a path): every path that differs from HEAD,
# untracked and ignored ones too (the loader reads them), NUL-separated, with the commit it
# compared with, so that what it lists and that commit are told by one process.
STATUS = (
    "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--ignored",
    "--no-renames",
)  # fmt: skip


def parse_status(output: bytes) -> tuple[str | None, list[bytes]]:
    """What `git STATUS` says: the commit it compared with (None before the first) and
    every path it lists (changed, unmerged, untracked or ignored; a rename's both paths).
    Each entry's path is its last field: after 8 fields for a change (`1`), 9 for a rename
    (`2`, its old path the next item), 10 for an unmerged path (`u`), 1 for `?` and `!`."""
    head: str | None = None
    paths: list[bytes] = []
    items = iter(output.split(b"\0"))
    for item in items:
        kind = item[:2]
        if item.startswith(b"# branch.oid "):
            oid = item[len(b"# branch.oid ") :].decode()
            head = oid if COMMIT_ID.fullmatch(oid) else None  # `(initial)`: no commit yet
        elif kind in _PATH_AFTER:
            paths.append(item.split(b" ", _PATH_AFTER[kind])[-1])
            if kind == b"2 ":
                paths.append(next(items, b""))
    return head, paths


_PATH_AFTER = {b"1 ": 8, b"2 ": 9, b"u ": 10, b"? ": 1, b"! ": 1}  # fields before the path


def lists_yaml(paths: list[bytes]) -> bool:
    """Whether a YAML file is among `paths` (`parse_status`'s): what makes a build's
    revision `-dirty`."""
    return any(path.lower().endswith((b".yaml", b".yml")) for path in paths)
