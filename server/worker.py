"""gunicorn's gthread worker, with the open connections shared out evenly between workers.

All workers wait on one listening socket and race to accept each new connection. A burst
of connections (a client starting its pool, a load balancer reconnecting, a benchmark
starting) can go nearly all to whichever worker the scheduler runs first, and kept-alive
connections stay where they landed: measured with wrk's 64 connections against 2 workers,
4 runs in 12 left one worker with most of them, and such a run served about half as many
requests (one core busy, the other idle). Here each worker publishes how many
connections it holds on a small board in memory shared by the workers (set up by the
master before it forks them), and stops accepting while it holds more than its share
(the mean over the workers, plus `SLACK`); the others take the next connections.

Never a connection left waiting for nobody: the worker with the fewest connections is
always within its share (see `may_accept`), a worker that has not looked at the board for
`STALE_AFTER` seconds (stuck, or stopped) is left out of the mean, a stopping worker
leaves the board at once, and a worker that is not accepting looks again every
`RECHECK_EVERY` seconds. With one worker nothing changes.

The master assigns each worker a slot on the board (`take_slot` in `pre_fork`) and frees
it when the worker has exited (`free_slot` in `child_exit`): server.gunicorn_conf does
both. Each request is read in the worker's event loop, without a thread (server.reading says
when it is whole): gthread hands a new connection to a thread as soon as its first byte
arrives, and the thread then waits for the rest, so ten clients that sent one byte each
held every thread of two workers and nobody else was answered. Here a thread gets a
connection only with a whole request in its buffer, and a connection that has not sent a
whole request within `HEADER_TIMEOUT` seconds of its first byte (of accepting it, for a
new one) is answered 408 and closed. Waiting connections cost a buffer and a file
descriptor each: `worker_connections` (server.gunicorn_conf) bounds how many a worker holds.

Written against gunicorn 27's ThreadWorker (its `set_accept_enabled`,
`wait_for_and_dispatch_events`, `enqueue_req` and `murder_pending`, and TConn's `parser`
and `data_ready`), the version pyproject.toml allows.
"""

from __future__ import annotations

import mmap
import selectors
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from gunicorn import http  # type: ignore[import-untyped]
from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from server import reading

SLOTS: Final = 256  # workers at once, stopping ones included (SIGHUP doubles them briefly)
SLACK: Final = 1  # connections a worker may hold beyond the mean
STALE_AFTER: Final = 3.0  # seconds: an idle worker looks at least every second
RECHECK_EVERY: Final = 0.02  # seconds, while not accepting
_FREE: Final = -1
HEADER_TIMEOUT = 10.0  # seconds for a whole request; server.gunicorn_conf sets it
RECEIVE: Final = 65536  # bytes read at once from a connection


class Board:
    """Per slot, the connections a worker holds (or -1: no worker) and when it last looked
    (time.monotonic(), the same clock in every process), in an anonymous shared mapping
    that forked workers inherit; and how many slots from the first one are in use, so that
    a look reads only those (the master gives out the lowest free slot). 8-byte aligned
    values: each read and write is whole."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._memory = mmap.mmap(-1, 8 + slots * 16)
        view = memoryview(self._memory)
        self._in_use = view[:8].cast("q")
        self.connections = view[8 : 8 + slots * 8].cast("q")
        self.seen = view[8 + slots * 8 :].cast("d")
        for slot in range(slots):
            self.connections[slot] = _FREE

    def extend(self, slots: int) -> None:
        """In the master: slots from 0 to `slots` - 1 may be in use."""
        self._in_use[0] = slots

    def publish(self, slot: int, connections: int, now: float) -> None:
        self.connections[slot] = connections
        self.seen[slot] = now

    def leave(self, slot: int) -> None:
        self.connections[slot] = _FREE

    def others(self, slot: int, now: float) -> list[int]:
        """The connections of the other workers that are on the board and looked lately."""
        in_use = self._in_use[0]
        counts = self.connections[:in_use].tolist()
        seen = self.seen[:in_use].tolist()
        return [
            count
            for other, (count, looked) in enumerate(zip(counts, seen, strict=True))
            if count != _FREE and other != slot and now - looked < STALE_AFTER
        ]


def may_accept(mine: int, others: Sequence[int], slack: int = SLACK) -> bool:
    """Whether a worker holding `mine` connections takes more, when the other live workers
    hold `others`: while it holds no more than the mean plus `slack`. The worker with the
    fewest always may, so some worker always accepts."""
    workers = len(others) + 1
    return mine * workers <= mine + sum(others) + slack * workers


_board: Board | None = None


def take_slot(worker: Any, workers: Iterable[Any]) -> None:
    """In the master, before forking `worker`: a slot no living worker holds."""
    global _board  # noqa: PLW0603 - made once in the master, inherited by every worker
    if _board is None:
        _board = Board()
    taken = {getattr(other, "board_slot", None) for other in workers}
    free = (slot for slot in range(SLOTS) if slot not in taken)
    worker.board_slot = next(free, None)  # None: more workers than slots, this one unbalanced
    if worker.board_slot is not None:
        _board.leave(worker.board_slot)  # until the worker publishes
        _board.extend(max(slot for slot in (*taken, worker.board_slot) if slot is not None) + 1)


def free_slot(worker: Any) -> None:
    """In the master, once `worker` has exited (however it ended)."""
    slot = getattr(worker, "board_slot", None)
    if _board is not None and slot is not None:
        _board.leave(slot)


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread that accepts only while it holds no more than its share of connections."""

    board_slot: int | None = None
    _within_share = True
    _published = -1  # the connections last published
    _looked = 0.0  # when

    def set_accept_enabled(self, enabled: bool) -> None:
        # gunicorn's loop calls this with "below worker_connections"; the share comes on top.
        super().set_accept_enabled(enabled and self._within_share)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        board, slot = _board, self.board_slot
        if board is not None and slot is not None:
            if self.alive:
                timeout = self._look(board, slot, timeout)
            else:  # stopping: accepts no more, and is no longer part of anyone's mean
                board.leave(slot)
        super().wait_for_and_dispatch_events(timeout)

    def _look(self, board: Board, slot: int, timeout: float) -> float:
        """Publish this worker's connections and decide whether it accepts: when they have
        changed, or `RECHECK_EVERY` after the last look (the others' may have). Returns how
        long to wait for events: briefly while not accepting, to look again."""
        now = time.monotonic()
        if self.nr_conns != self._published or now - self._looked >= RECHECK_EVERY:
            self._published, self._looked = self.nr_conns, now
            board.publish(slot, self.nr_conns, now)
            self._within_share = may_accept(self.nr_conns, board.others(slot, now))
            self.set_accept_enabled(self.nr_conns < self.worker_connections)
        return timeout if self._accepting else min(timeout, RECHECK_EVERY)


@dataclass(eq=False)
class Reading:
    """A connection whose request is not whole yet: what it sent so far, and until when."""

    conn: Any  # gunicorn's TConn
    deadline: float
    data: bytes = b""
    registered: bool = field(default=False)  # with the worker's poller


class ReadingThreadWorker(BalancedThreadWorker):
    """BalancedThreadWorker that reads each request in its event loop (the module's doc)."""

    def init_process(self) -> None:
        self._reading: dict[Any, Reading] = {}
        self._deadlines: deque[Reading] = deque()  # by deadline: one timeout for all
        self._head_limit = reading.head_limit(
            self.cfg.limit_request_line,
            self.cfg.limit_request_fields,
            self.cfg.limit_request_field_size,
        )
        super().init_process()  # runs the worker

    def enqueue_req(self, conn: Any) -> None:
        """Every way to a thread (a new connection, a kept-alive one with a new request,
        bytes left over from the last request) comes here: read first."""
        if self.cfg.is_ssl:  # TLS is read by the thread (flagserve itself has none)
            super().enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        state = Reading(conn, time.monotonic() + HEADER_TIMEOUT, leftover)
        self._reading[conn] = state
        self._deadlines.append(state)
        if not self._advance(state):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, state))
            state.registered = True

    def _readable(self, state: Reading, _sock: Any) -> None:
        try:
            data = state.conn.sock.recv(RECEIVE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # gone before a whole request: nothing to answer
            self._drop(state)
            return
        state.data += data
        self._advance(state)

    def _advance(self, state: Reading) -> bool:
        """Hand the request to a thread if it is whole (True), else wait for more."""
        step = reading.progress(state.data, self._head_limit, reading.MAX_BODY)
        if step is reading.Progress.CONTINUE:
            head = reading.find_head(state.data)
            assert head is not None  # CONTINUE comes with a head
            state.data = reading.without_expect(state.data, head)
            if not _send(state.conn.sock, reading.CONTINUE):
                self._drop(state)
                return True
        if step is not reading.Progress.WHOLE:
            return False
        self._finish_reading(state)
        conn = state.conn
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(state.data)
        conn.data_ready = True  # gthread would otherwise wait for a first byte
        super().enqueue_req(conn)
        return True

    def _finish_reading(self, state: Reading) -> None:
        del self._reading[state.conn]
        if state.registered:
            self.poller.unregister(state.conn.sock)
            state.registered = False

    def _drop(self, state: Reading) -> None:
        self._finish_reading(state)
        self.nr_conns -= 1
        state.conn.close()

    def murder_pending(self) -> None:
        """gthread's own expiry, then the connections whose request is late: 408, closed."""
        super().murder_pending()
        now = time.monotonic()
        while self._deadlines:
            state = self._deadlines[0]
            if self._reading.get(state.conn) is state:
                if state.deadline > now:
                    break
                if state.data:  # something was asked: say why it ends
                    _send(state.conn.sock, reading.TIMED_OUT)
                self._drop(state)
            self._deadlines.popleft()


def _send(sock: Any, data: bytes) -> bool:
    """Send a few bytes without waiting (a fresh connection has room for them)."""
    try:
        return bool(sock.send(data) == len(data))
    except OSError:
        return False
