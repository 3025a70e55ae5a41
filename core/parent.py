"""A forked process that dies with its parent (Linux's prctl): one that outlived a parent
killed with SIGKILL would hold what it inherited (a lock, a pipe's end, a port)."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (or now, if it has)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the call
        os._exit(1)
