"""The resident builder (`flagc watch`): build, then look at the flags folder every few
seconds and build again when it changed, in one process that holds its last build.

A `flagc build` process starts Python, imports what it needs, and reads back and checks
its last build's cache and outputs (tens of megabytes at 10,000 flags) before an
incremental build can start (docs/build.md has the figures); a resident builder pays
neither more than once: its imports are done and it takes its last build from memory
(`compiler.incremental.Kept`) while OUT still shows that build as written.

Rule: a build is made for each state of the folder that differs from the last one built
or tried (`state`: git's HEAD and the stat data of every file below the folder that the
loader may read: not hidden ones, such as a repository's `.git`), so a
commit whose flags do not build is reported once and not tried again until the folder
changes. Between builds the cyclic collector frees what the last build left.
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.incremental import git_answers


@dataclass(frozen=True, slots=True)
class State:
    """What a look at the flags folder saw: git's HEAD (None outside git or before the
    first commit) and a digest of the stat data of every file and folder below it."""

    head: str | None
    files: str


def state(folder: Path) -> State:
    """The folder as it is now (see the module's rule). Any change to a file's content,
    name, mode or times changes its ctime, which no call sets back; a commit that changes
    nothing below the folder still moves HEAD, and with it the snapshot's revision."""
    hashed = hashlib.sha256()
    pending = [os.fspath(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in sorted(entries, key=lambda found: found.name):
                    if entry.name.startswith("."):  # the loader reads none (`.git` of a root)
                        continue
                    found = entry.stat(follow_symlinks=False)
                    stamp = (found.st_mode, found.st_ino, found.st_size, found.st_mtime_ns)
                    hashed.update(
                        os.fsencode(entry.path) + repr((*stamp, found.st_ctime_ns)).encode()
                    )
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except OSError as exc:  # gone or unreadable: the build will say so
            hashed.update(repr(exc).encode())
    return State(_head(folder), hashed.hexdigest())


def _head(folder: Path) -> str | None:
    [answer] = git_answers(folder, ("rev-parse", "--verify", "--quiet", "HEAD"))
    return answer.decode().strip() or None if answer is not None else None


def watch(
    folder: Path, interval: float, stop: threading.Event, build: Callable[[State], None]
) -> None:
    """Call `build` with each new state of `folder` (the first at once), looking every
    `interval` seconds, until `stop` is set."""
    last: State | None = None
    while not stop.is_set():
        seen = state(folder)
        if seen != last:
            last = seen
            build(seen)
            gc.collect()  # what the build left: off the path of the next one
        stop.wait(interval)
