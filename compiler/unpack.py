"""A `git archive` (tar) of the flags folder unpacked into a directory, as `flagc diff`
reads a revision: its files first, then its symbolic links as committed.

Links come last so that no file is written through one; a link's target is left for the
loader to judge as it judges the work tree's (one leading out of the folder is reported and
never opened). Pure file work over a tar stream: `compiler.git_repository` runs git.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO


def unpack(archive: IO[bytes], prefix: str, destination: Path) -> None:
    """Write the files and links below `prefix` (the flags folder, `a/b/` or `` for the
    whole tree) of the tar `archive` into `destination`, named relative to `prefix`."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=archive) as tar:
        members = list(_members(tar, prefix))
        for member in members:
            if member.isfile():
                tar.extract(member, destination, filter="data")
        for member in members:
            if member.issym():
                _link(destination, member)


def _members(archive: tarfile.TarFile, prefix: str) -> Iterator[tarfile.TarInfo]:
    """The files and links below `prefix`, named relative to it."""
    for member in archive.getmembers():
        if (member.isfile() or member.issym()) and member.name.startswith(prefix):
            member.name = member.name[len(prefix) :]
            yield member


def _link(destination: Path, member: tarfile.TarInfo) -> None:
    """The link as committed. Only its own name is checked: a name leading out of
    `destination` (git archive never writes one) is skipped. Its target is the loader's to
    judge, which never opens one that leads out."""
    path = destination / member.name
    if member.name.startswith("/") or ".." in PurePosixPath(member.name).parts:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(path):
        path.symlink_to(member.linkname)
