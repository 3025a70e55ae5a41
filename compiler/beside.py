"""Work done beside the build: a function run in a forked process while this one goes on.

The build reads the git history (the audit log) while it compiles the flags folder, and
makes the flagd files while it renders the snapshot: each pair works on different things
and meets only at the end. On Linux, with more than one
CPU, in a process that runs no other thread (forking one that does can copy a held lock),
`Beside` forks at once and the function's result comes back through a pipe, pickled, as
does any exception it raises. Anywhere else it runs the function when the result is first
asked for, in this process: the same result, later. So what is built never depends on
which way it ran.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any, Generic, TypeVar

from core.process import die_with

T = TypeVar("T")


def can_fork() -> bool:
    """Whether forking helps and is safe here (see the module's docstring)."""
    return (
        sys.platform == "linux"
        and len(os.sched_getaffinity(0)) > 1
        and threading.active_count() == 1
    )


class Beside(Generic[T]):
    """`function(*args)`, in a forked process when `fork` (and `can_fork()`), else in this
    one when `result` (or `told`) is called. Call `result` once, or `cancel`.

    With `telling`, the function is also passed `tell`, to call with what the caller may
    want before the result, as often as it has something (the build's history tells the
    revision before it reads the log, and each flag's history before it writes the log):
    `told` gives each in turn, as soon as it is told in a forked process; in this process,
    only once the function has returned. None when the function has ended with nothing
    more told."""

    def __init__(
        self, function: Callable[..., T], *args: Any, fork: bool = True, telling: bool = False
    ) -> None:
        self._call: tuple[Callable[..., T], tuple[Any, ...]] = (function, args)
        self._telling = telling
        self._process: Any = None  # multiprocessing's fork Process, once forked
        self._pipe: Connection | None = None
        self._told: list[Any] = []  # what the function told, in order
        self._heard = 0  # how many of those `told` gave
        self._outcome: tuple[bool, Any] | None = None  # its value or exception, once known
        if fork and can_fork():
            context = multiprocessing.get_context("fork")
            receiving, sending = context.Pipe(duplex=False)
            parent = os.getpid()
            self._process = context.Process(
                target=_run, args=(parent, receiving, sending, function, args, telling)
            )
            self._process.daemon = True  # never outlives the build
            self._process.start()
            sending.close()
            self._pipe = receiving

    @property
    def forked(self) -> bool:
        return self._process is not None

    def told(self) -> Any:
        """The next thing the function told (see the class), or None."""
        while self._heard == len(self._told) and self._outcome is None:
            self._hear()
        if self._heard == len(self._told):
            return None
        self._heard += 1
        return self._told[self._heard - 1]

    def result(self) -> T:
        """The function's value, or the exception it raised, raised here."""
        while self._outcome is None:  # past what it told and was not asked for
            self._hear()
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None  # `cancel` has nothing left to stop
            # Not joined: the process ends by itself once it has answered, and its ending
            # (a fork of the whole build, unmapped) took 30-50 ms that the build would
            # wait; multiprocessing reaps it when the next process starts.
        ok, value = self._outcome
        if not ok:
            raise value
        result: T = value
        return result

    def _hear(self) -> None:
        """The function's next message: something told, or its outcome."""
        if self._pipe is None:
            self._outcome = self._here()
            return
        message = self._receive()
        if message[0] == _TOLD:
            self._told.append(message[1])
        else:
            self._outcome = message

    def _here(self) -> tuple[bool, Any]:
        function, args = self._call
        try:
            return True, function(*args, **self._telling_to(self._told.append))
        except Exception as exc:  # raised by `result`, as a forked function's would be
            return False, exc

    def _telling_to(self, tell: Callable[[Any], None]) -> dict[str, Any]:
        return {"tell": tell} if self._telling else {}

    def _receive(self) -> tuple[Any, Any]:
        assert self._pipe is not None
        try:
            message: tuple[Any, Any] = self._pipe.recv()
        except EOFError:  # the child died before it answered (killed, out of memory)
            self._pipe.close()
            self._process.join()
            code = self._process.exitcode
            raise OSError(f"a forked process of the build stopped (exit code {code})") from None
        return message

    def cancel(self) -> None:
        """Stop the work: its result is not wanted."""
        if self._pipe is not None:
            self._pipe.close()
            self._process.terminate()
            self._process.join()


_TOLD = "told"  # a message that is what the function told, not its outcome


def _run(
    parent: int,
    receiving: Connection,
    sending: Connection,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    telling: bool,
) -> None:
    # A child outlives a parent killed with SIGKILL, and holds what it inherited: OUT's lock
    # (the next build would wait for ever) and, unless closed, the pipe's reading end (its
    # answer would wait for a reader for ever). So it closes that end, and dies with the
    # parent (or at once, if the parent is gone already).
    receiving.close()
    die_with(parent)
    outbox = _Outbox(sending)

    def tell(value: Any) -> None:
        outbox.send((_TOLD, value))

    try:
        answer: tuple[bool, Any] = (True, function(*args, **({"tell": tell} if telling else {})))
    except BaseException as exc:  # every outcome goes back to the parent
        answer = (False, exc)
    outbox.send(answer)
    outbox.close()


class _Outbox:
    """A forked function's messages to its parent, pickled as sent (as they are then) and
    written to the pipe by a thread: a pipe holds 64 KiB, and the parent reads what was
    told only once it has done what it was doing meanwhile, so a large message (each of
    10,000 flags' history) written at once kept the function waiting about 0.1 s, while
    it had more to do."""

    def __init__(self, sending: Connection) -> None:
        self._sending = sending
        self._queue: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def send(self, message: tuple[Any, Any]) -> None:
        self._queue.put(ForkingPickler.dumps(message))  # what Connection.recv unpickles

    def close(self) -> None:
        """Once every message is written (or the parent stopped reading)."""
        self._queue.put(None)
        self._thread.join()
        self._sending.close()

    def _write(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._sending.send_bytes(data)
            except OSError:  # the parent closed its end: nothing more is wanted
                return
