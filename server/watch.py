"""Noticing a new build: inotify on the build directory, polling as the fallback.

`compiler.publish` lands a build by renaming the `.current` link into place in the build
directory, the last of its steps; inotify (Linux) reports that rename at once, where a poll
saw it up to its interval later (2 s). `Watch.wait` returns at the first change in the
directory, or after the poll's interval when nothing happened or when inotify cannot be had
(another system, a file system whose changes are made elsewhere such as NFS, the user's
watch limit reached): the store then compares the files' signature as before, so a missed
notice costs at most one interval and a spurious one only a few `stat` calls.

The watch follows the directory: when it is removed, moved, or reached through a link that
now leads elsewhere, the next wait watches what the path names then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from inotify_simple import INotify, flags

log = logging.getLogger("flagserve")

# Whatever can change which files the directory holds, or the directory itself.
_CHANGES = (
    flags.CREATE
    | flags.DELETE
    | flags.MOVED_TO
    | flags.MOVED_FROM
    | flags.CLOSE_WRITE
    | flags.ATTRIB
    | flags.DELETE_SELF
    | flags.MOVE_SELF
    | flags.ONLYDIR
)
_GONE = flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF | flags.UNMOUNT
# After a first event, how long to gather the ones that come with it (a build's links).
SETTLE_MS = 5


class Watch:
    """Waits for a change in `directory` (`notify=False`: only ever for the interval)."""

    def __init__(self, directory: Path, *, notify: bool = True) -> None:
        self.directory = directory
        self._inotify: Any = None  # inotify_simple.INotify, once opened
        self._watched: str | None = None  # the real path of the directory being watched
        self._descriptor: int | None = None
        self._failing = False  # said already that the directory cannot be watched
        if notify:
            try:
                self._inotify = INotify()
            except OSError as exc:  # not Linux, or the user's instance limit reached
                log.warning("cannot watch %s (%s): polling it instead", directory, exc)
            else:
                self._follow(self._inotify)

    @property
    def notifying(self) -> bool:
        """Whether changes are being noticed as they happen (else only polled)."""
        return self._inotify is not None and self._watched is not None

    def wait(self, timeout: float) -> bool:
        """Return at the first change in the directory, or when it has just begun to watch
        a directory again (True: look now), or after `timeout` seconds (False)."""
        inotify = self._inotify  # `close` may run in another thread meanwhile
        if inotify is None:
            time.sleep(timeout)
            return False
        try:
            return self._wait(inotify, timeout)
        except (OSError, ValueError):  # closed meanwhile (`close`): polled from now on
            return False

    def _wait(self, inotify: Any, timeout: float) -> bool:
        if os.path.realpath(self.directory) != self._watched:
            if self._follow(inotify):
                return True  # the caller looks at once: a change before the watch began
            time.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            events = inotify.read(timeout=max(int(left * 1000), 1), read_delay=SETTLE_MS)
            # Only the directory watched now counts (a watch given up reports IN_IGNORED),
            # and an overflowed queue (descriptor -1), which may have lost any event.
            ours = [event for event in events if event.wd in (self._descriptor, -1)]
            if any(event.mask & _GONE for event in ours):
                self._forget(inotify)  # the next wait watches whatever the path names then
            if ours:
                return True
        return False

    def close(self) -> None:
        """Stop watching (in a forked child: the parent's watch is not this process's)."""
        if self._inotify is not None:
            self._inotify.close()
            self._inotify, self._watched, self._descriptor = None, None, None

    def _follow(self, inotify: Any) -> bool:
        """Watch the directory the path names now; False when it cannot be watched."""
        real = os.path.realpath(self.directory)
        self._forget(inotify)
        try:
            self._descriptor = inotify.add_watch(real, _CHANGES)
        except OSError as exc:  # gone, not a directory, or the user's watch limit reached
            if not self._failing:  # once, not at every interval
                log.warning("cannot watch %s (%s): polling it", self.directory, exc)
            self._failing = True
            return False
        self._watched, self._failing = real, False
        return True

    def _forget(self, inotify: Any) -> None:
        if self._descriptor is not None:
            # OSError: the kernel has dropped it already (the directory is gone)
            with contextlib.suppress(OSError):
                inotify.rm_watch(self._descriptor)
        self._watched, self._descriptor = None, None
