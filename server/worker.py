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
both. Written against gunicorn 27's ThreadWorker (its `set_accept_enabled` and
`wait_for_and_dispatch_events`), the version pyproject.toml allows.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

SLOTS: Final = 256  # workers at once, stopping ones included (SIGHUP doubles them briefly)
SLACK: Final = 1  # connections a worker may hold beyond the mean
STALE_AFTER: Final = 3.0  # seconds: an idle worker looks at least every second
RECHECK_EVERY: Final = 0.02  # seconds, while not accepting
_FREE: Final = -1


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
