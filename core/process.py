"""What a process does about itself: die with its parent, pause the cyclic garbage
collector while it makes millions of objects that all live on (a build, a build loaded),
leave them to the kernel when it ends at once (`flagc`), give back what it freed (a server
after a load), and raise its limit on open files (a server's connections, a benchmark's
clients)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import resource
import signal
from collections.abc import Iterator

_PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (or now, if it has): a forked
    process that outlived a parent killed with SIGKILL would hold what it inherited (a lock,
    a pipe's end, a port). Linux's prctl."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the call
        os._exit(1)


_ending = False  # whether this process ends at once (`ending_at_once`)
_kept: list[object] = []  # what `keep` leaves to the process's end


def ending_at_once() -> None:
    """Say that this process ends with `os._exit` once its work is done (`flagc`): the
    cyclic collector, once paused (`collector_paused`), is not resumed, and what `keep` is
    given is never freed."""
    global _ending  # noqa: PLW0603 (one process, one way to end)
    _ending = True


def going_on() -> None:
    """Undo `ending_at_once`: this run goes on after its work (`flagc watch` builds again and
    again), so what `keep` is given is freed and a paused collector resumed, as usual."""
    global _ending  # noqa: PLW0603 (as ending_at_once)
    _ending = False


def keep(value: object) -> None:
    """Leave `value` (a build: millions of objects) to the process's end when it ends at
    once, rather than free it one object at a time (37 ms of a 10,000-flag build, after it
    was published); a process that goes on frees it as usual."""
    if _ending:
        _kept.append(value)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector paused, then as it was: it would walk the new objects again and
    again (it made loading flag files three times slower, and took 2.1 s of a 6.4 s load of
    a 10,000-flag build). Process-wide, briefly: what other threads drop meanwhile is still
    freed by reference counting, and cycles wait until it resumes. In a process that ends
    at once it stays paused: resumed, its first collection walked every object the work
    left (0.2 s after a 10,000-flag build was published), for nothing."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running and not _ending:
            gc.enable()


def give_back_freed() -> bool:
    """Hand the memory freed in this process back to the kernel, where the C library can
    (glibc's malloc_trim): what a load frees (a build's parsed files, once expanded) stays
    the process's otherwise, 20 MB of a flagserve worker that loaded 10,000 flags (259 ->
    239 MB), in 3-7 ms. Whether it could: another C library has no such call, and nothing
    is done."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True


def raise_file_limit(wanted: int) -> int:
    """The soft limit on open files raised to `wanted`, at most to the hard limit (a limit
    of each process, inherited by its children); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
