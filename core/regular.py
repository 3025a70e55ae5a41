"""Reading a file that has to be a regular file, without ever waiting on anything else.

A FIFO, a socket or a device in place of a flag file, a build's file or an export's
manifest would block a plain `open` or `read` for ever (a FIFO with no writer blocks the
open itself). Here the file is opened without blocking and its type checked with fstat on
the open descriptor, so that what is read is what was checked; anything but a regular file
raises NotRegularFile before a byte is read. Used by the loader, the build, the export and
the server alike."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """The path names something other than a regular file; the text says what it is
    ("a FIFO (named pipe)", "a folder", ...)."""


def read_regular_file(path: Path, limit: int = -1, *, follow: bool = True) -> bytes:
    """Up to `limit` bytes (all by default) of the regular file at `path`. With `follow`
    False a symbolic link is refused too (OSError, ELOOP). FileNotFoundError and the other
    OSErrors as `open` raises them."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    descriptor = os.open(path, flags if follow else flags | os.O_NOFOLLOW)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(kind(mode))
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            return stream.read(limit)
    finally:
        os.close(descriptor)


def kind(mode: int) -> str:
    """What a file of `mode` is, in words."""
    kinds = {
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISDIR: "a folder",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")
