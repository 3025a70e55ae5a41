"""Slow and silent clients do not stop flagserve (issue 12, part 2).

With gunicorn's stock gthread worker ten connections that sent one byte held all 2 x 4
threads, and /healthz timed out for everyone else; so did clients that never read their
answers, and clients that did not close after `Connection: close` made every request wait
2 s. A real flagserve (2 workers x 4 threads) here: a normal client is answered while
hundreds of connections dribble, say nothing, read nothing or do not close; a request that
is not whole within the header timeout is answered 408 and closed, a client that takes
nothing of its answer within the write timeout is disconnected; and requests that arrive
in pieces (byte by byte, chunked, after 100 Continue, pipelined) are answered as before."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from tests.server.conftest import Built, Live, start_server, stop_server

TIMEOUT = 2.0  # FLAGSERVE_HEADER_TIMEOUT and FLAGSERVE_WRITE_TIMEOUT in these tests
FLAT_MAP = "/api/v1/environments/production/flags?application=web"


@contextmanager
def _serving(out: Path, log: Path) -> Iterator[tuple[Live, int]]:
    timeouts = {"FLAGSERVE_HEADER_TIMEOUT": str(TIMEOUT), "FLAGSERVE_WRITE_TIMEOUT": str(TIMEOUT)}
    live = start_server(out, log, timeouts)
    try:
        yield live, int(live.url.rsplit(":", 1)[1])
    finally:
        stop_server(live)


@pytest.fixture
def server(built: Built, tmp_path: Path) -> Iterator[tuple[Live, int]]:
    with _serving(built.out, tmp_path / "flagserve.log") as served:
        yield served


@pytest.fixture
def large_server(built: Built, tmp_path: Path) -> Iterator[tuple[Live, int]]:
    """With a snapshot of about 6 MB: more than the sockets' buffers hold, so that the
    answer to a client that reads nothing cannot be sent whole."""
    description = "A long description. " * 200  # 4,000 characters, near the most allowed
    built.commit(
        "Large flags",
        {
            f"large/large-{number}.yaml": f"description: {description}\nowner: t\nenabled: true\n"
            for number in range(1500)
        },
    )
    with _serving(built.out, tmp_path / "flagserve.log") as served:
        yield served


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


@contextmanager
def _slow_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections: every other one has sent one byte of a request, the rest
    nothing."""
    with ExitStack() as stack:
        clients = [stack.enter_context(_connect(port)) for _ in range(count)]
        for client in clients[::2]:
            client.sendall(b"G")
        yield clients


def _assert_answered_meanwhile(live: Live) -> None:
    """/healthz and the flat map, each within a second, ten times."""
    for _ in range(10):
        for path in ("/healthz", FLAT_MAP):
            begun = time.monotonic()
            assert requests.get(live.url + path, timeout=5).status_code == 200
            assert time.monotonic() - begun < 1.0, path


def _answer(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def test_a_normal_client_is_answered_while_hundreds_are_slow(
    server: tuple[Live, int],
) -> None:
    live, port = server
    with _slow_connections(port, 300):
        started = time.monotonic()
        _assert_answered_meanwhile(live)
        assert time.monotonic() - started < TIMEOUT  # all while the slow ones are still open


SNAPSHOT = b"GET /api/v1/snapshot HTTP/1.1\r\nHost: x\r\n\r\n"


@contextmanager
def _not_reading(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that each ask for the (large) snapshot twice in a row and read
    nothing."""
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            client = stack.enter_context(socket.socket())
            # A small window, set before connecting (after it, the window is already large)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", port))
            client.sendall(SNAPSHOT * 2)
            clients.append(client)
        yield clients


def test_clients_that_read_nothing_hold_no_thread(large_server: tuple[Live, int]) -> None:
    live, port = large_server
    with _not_reading(port, 40):
        time.sleep(1.0)  # every thread would be stuck by now
        started = time.monotonic()
        _assert_answered_meanwhile(live)
        assert time.monotonic() - started < TIMEOUT  # all before the write timeout


def test_a_client_that_takes_nothing_is_disconnected_after_the_write_timeout(
    large_server: tuple[Live, int],
) -> None:
    live, port = large_server
    size = len(requests.get(live.url + "/api/v1/snapshot", timeout=5).content)
    with _not_reading(port, 1) as (client,):
        time.sleep(TIMEOUT + 2.5)  # then the server has given up on it
        received, ended = _read_to_end(client)
    assert ended == "reset"
    assert received < 2 * size


def _read_to_end(client: socket.socket, within: float = 5.0) -> tuple[int, str]:
    """The bytes left to read, and how the connection ended: closed, reset, or still open
    (after `within` seconds)."""
    received, deadline = 0, time.monotonic() + within
    client.settimeout(within)
    try:
        while (chunk := client.recv(1 << 20)) and time.monotonic() < deadline:
            received += len(chunk)
    except ConnectionResetError:
        return received, "reset"
    except TimeoutError:
        return received, "open"
    return received, "closed" if not chunk else "open"


def test_clients_that_do_not_close_after_connection_close_hold_nobody_up(
    server: tuple[Live, int],
) -> None:
    live, port = server
    ask = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with ExitStack() as stack:
        for _ in range(40):  # answered, then kept open by the client: the server lingers
            stack.enter_context(_connect(port)).sendall(ask)
        time.sleep(0.3)
        begun = time.monotonic()
        _assert_answered_meanwhile(live)
        assert time.monotonic() - begun < 2.0  # gthread lingered 2 s per such connection


def test_a_partial_request_is_answered_408_and_closed_after_the_timeout(
    server: tuple[Live, int],
) -> None:
    _, port = server
    with _connect(port) as partial, _connect(port) as silent:
        started = time.monotonic()
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert _answer(partial).startswith(b"HTTP/1.1 408 ")
        assert _answer(silent) == b""  # asked nothing: closed without a word
        assert TIMEOUT - 0.1 <= time.monotonic() - started <= TIMEOUT + 2.5


def test_the_timeout_counts_from_the_first_byte_not_the_last(server: tuple[Live, int]) -> None:
    """A client that keeps sending a byte now and then is still cut off at the timeout."""
    _, port = server
    with _connect(port) as dribbler:
        dribbler.settimeout(0.25)
        started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                dribbler.sendall(bytes([byte]))
                if dribbler.recv(65536):
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        assert time.monotonic() - started <= TIMEOUT + 2.5


def _in_pieces(port: int, request: bytes, size: int, pause: float = 0.01) -> bytes:
    with _connect(port) as client:
        for start in range(0, len(request), size):
            client.sendall(request[start : start + size])
            time.sleep(pause)
        client.shutdown(socket.SHUT_WR)
        return _answer(client)


EVALUATE = (
    b"POST /ofrep/v1/evaluate/flags/new-checkout HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
)
CONTEXT = b'{"context":{"environment":"production","application":"web"}}'


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        EVALUATE
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(CONTEXT)
        + CONTEXT,
        EVALUATE
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (len(CONTEXT[:9]), CONTEXT[:9])
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(CONTEXT[9:]), CONTEXT[9:]),
    ],
    ids=["get", "content-length", "chunked"],
)
def test_a_request_sent_byte_by_byte_is_answered(
    server: tuple[Live, int], request_bytes: bytes
) -> None:
    _, port = server
    answer = _in_pieces(port, request_bytes, size=1, pause=0.002)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    if b"ofrep" in request_bytes:
        assert b'"value":true' in answer


def test_100_continue_is_answered_before_the_body_is_sent(server: tuple[Live, int]) -> None:
    _, port = server
    head = EVALUATE + (
        b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(CONTEXT)
    )
    with _connect(port) as client:
        client.sendall(head)
        assert client.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(CONTEXT)
        answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"100 Continue" not in answer  # answered once, by the worker


def test_requests_sent_at_once_before_a_half_close_are_each_answered(
    server: tuple[Live, int],
) -> None:
    _, port = server
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(port) as client:
        client.sendall(one * 3)
        client.shutdown(socket.SHUT_WR)
        answer = _answer(client)
    assert answer.count(b"HTTP/1.1 200 ") == 3


def test_pipelined_and_kept_alive_requests_are_each_answered(server: tuple[Live, int]) -> None:
    _, port = server
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(port) as client:
        client.sendall(one + one + one[:10])  # two whole, the third begun
        time.sleep(0.3)
        client.sendall(one[10:])
        time.sleep(0.5)  # kept alive, idle, then one more
        client.sendall(one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        answer = _answer(client)
    assert answer.count(b"HTTP/1.1 200 ") == 4
