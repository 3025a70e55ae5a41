"""server.worker: gunicorn's gthread worker with connections shared out between workers.

The rule as a property, the shared board in one process, and real flagserve processes:
connections spread over the workers, a stopped worker's share taken by the others once it
has stopped looking, and a replaced worker's slot given to its successor."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.procfs import connections_held
from server import worker
from tests.server.conftest import Built
from tests.server.helpers import running, wait_until, workers

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12)


@given(counts)
def test_the_worker_with_the_fewest_connections_always_accepts(held: list[int]) -> None:
    fewest = held.index(min(held))
    assert worker.may_accept(held[fewest], held[:fewest] + held[fewest + 1 :])


@given(st.integers(min_value=0, max_value=10_000))
def test_a_lone_worker_always_accepts(mine: int) -> None:
    assert worker.may_accept(mine, [])


@given(counts, st.integers(min_value=0, max_value=10_000))
def test_a_worker_accepts_exactly_while_within_the_mean_plus_slack(
    others: list[int], mine: int
) -> None:
    mean = Fraction(mine + sum(others), len(others) + 1)
    allowed = mean + worker.SLACK + mean / worker.SHARE
    assert worker.may_accept(mine, others) == (mine <= allowed)


@pytest.mark.parametrize(
    ("mine", "others", "accepts"),
    [
        (0, [0], True),
        (2, [0], True),  # mean 1, plus slack 1
        (3, [0], False),
        (32, [32], True),
        (34, [30], True),  # mean 32, plus 1, plus 2
        (36, [30], True),  # mean 33: 36.06 allowed
        (37, [30], False),  # mean 33.5: 36.59 allowed
        (10, [0, 20], True),
        (12, [0, 20], True),  # mean 10.67: 12.33 allowed
        (13, [0, 20], False),  # mean 11: 12.69 allowed
        (5500, [5000], True),  # thousands: a worker may run 300 or so ahead of the mean
        (5700, [5000], False),
    ],
)
def test_may_accept_cases(mine: int, others: list[int], accepts: bool) -> None:
    assert worker.may_accept(mine, others) is accepts


def test_the_board_shows_live_workers_only() -> None:
    board = worker.Board(slots=4)
    board.extend(4)
    now = time.monotonic()
    board.publish(0, 5, now)
    board.publish(1, 7, now - 0.5)
    board.publish(2, 9, now - worker.STALE_AFTER - 0.1)  # stuck or stopped: left out
    assert board.others(0, now) == [7]
    assert sorted(board.others(3, now)) == [5, 7]
    board.leave(1)
    assert board.others(0, now) == []


def test_the_board_reads_only_the_slots_in_use() -> None:
    board = worker.Board(slots=4)
    now = time.monotonic()
    board.publish(1, 3, now)
    board.extend(1)
    assert board.others(0, now) == []
    board.extend(2)
    assert board.others(0, now) == [3]


def test_the_master_gives_each_worker_the_lowest_free_slot() -> None:
    first, second, third = (SimpleNamespace() for _ in range(3))
    worker.take_slot(first, [])
    worker.take_slot(second, [first])
    assert (first.board_slot, second.board_slot) == (0, 1)
    worker.free_slot(first)  # exited: its successor takes the slot once it is reaped
    worker.take_slot(third, [second])
    assert third.board_slot == 0


# Real workers. The server holds its kept-alive connections for 5 s after each answer.


def _request(port: int) -> socket.socket:
    """A connection with one request sent, whose answer is not read yet."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    return client


def _answered(clients: list[socket.socket], within: float) -> set[socket.socket]:
    """The connections whose answer arrives within `within` seconds."""
    done: set[socket.socket] = set()
    with selectors.DefaultSelector() as waiting:
        for client in clients:
            waiting.register(client, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while len(done) < len(clients) and (left := deadline - time.monotonic()) > 0:
            for key, _ in waiting.select(left):
                client = key.fileobj
                assert isinstance(client, socket.socket)
                assert client.recv(65536).startswith(b"HTTP/1.1 200")
                waiting.unregister(client)
                done.add(client)
    return done


def _connections_held(pid: int, port: int) -> int:
    """Established connections to `port` that process `pid` holds (from /proc)."""
    return connections_held([pid], port)


@contextmanager
def _closing(clients: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@contextmanager
def _two_workers(built: Built, tmp_path: Path) -> Iterator[tuple[int, list[int], int]]:
    """flagserve with 2 workers, both on the board: its port, the workers' pids and the
    master's."""
    with running([str(built.out), "--workers", "2"], tmp_path / "flagserve.log") as live:
        master = live.process.pid
        wait_until(lambda: len(workers(master)) == 2, what="two workers", live=live)
        port = int(live.url.rsplit(":", 1)[1])
        _until_looking(port, workers(master))
        yield port, workers(master), master


def _until_looking(port: int, pids: list[int]) -> None:
    """Until every worker in `pids` has taken a connection (so it runs its loop and is on
    the board), then with every connection closed again."""
    deadline = time.monotonic() + 30
    while True:
        with _closing([_request(port) for _ in range(8)]) as clients:
            _answered(clients, within=10)
            if all(_connections_held(pid, port) for pid in pids):
                break
        assert time.monotonic() < deadline, "a worker never took a connection"
        time.sleep(0.2)
    wait_until(lambda: not any(_connections_held(pid, port) for pid in pids), what="closed")


def test_connections_are_spread_over_the_workers(built: Built, tmp_path: Path) -> None:
    with _two_workers(built, tmp_path) as (port, pids, _), _closing([]) as clients:
        clients.extend(_request(port) for _ in range(24))
        assert len(_answered(clients, within=10)) == 24
        held = [_connections_held(pid, port) for pid in pids]
        assert sum(held) == 24
        assert max(held) - min(held) <= 2 * worker.SLACK + 1, held


def test_a_stopped_worker_holds_back_its_share_only_until_it_is_stale(
    built: Built, tmp_path: Path
) -> None:
    with _two_workers(built, tmp_path) as (port, pids, _), _closing([]) as clients:
        stopped, running_pid = pids
        os.kill(stopped, signal.SIGSTOP)
        try:
            clients.extend(_request(port) for _ in range(8))
            # The running worker takes its share (up to the mean + SLACK over the two) ...
            first = _answered(clients, within=1.0)
            assert 1 <= len(first) <= 2 * worker.SLACK + 1
            # ... and the rest once the stopped one has not looked for STALE_AFTER seconds.
            rest = _answered([c for c in clients if c not in first], within=10)
            assert len(first) + len(rest) == 8
            assert _connections_held(running_pid, port) == 8
        finally:
            os.kill(stopped, signal.SIGCONT)


def test_a_replaced_worker_leaves_its_slot_to_the_next(built: Built, tmp_path: Path) -> None:
    with _two_workers(built, tmp_path) as (port, pids, master), _closing([]) as clients:
        os.kill(pids[0], signal.SIGKILL)  # no goodbye: the master frees the slot
        wait_until(lambda: len(set(workers(master)) - set(pids)) == 1, what="a replacement worker")
        time.sleep(0.5)
        clients.extend(_request(port) for _ in range(12))
        assert len(_answered(clients, within=10)) == 12
        held = [_connections_held(pid, port) for pid in workers(master)]
        assert max(held) - min(held) <= 2 * worker.SLACK + 1, held
