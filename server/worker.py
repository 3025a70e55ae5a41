"""gunicorn's gthread worker, with the open connections shared out evenly between workers.

All workers wait on one listening socket and race to accept each new connection. A burst
of connections (a client starting its pool, a load balancer reconnecting, a benchmark
starting) can go nearly all to whichever worker the scheduler runs first, and kept-alive
connections stay where they landed: measured with wrk's 64 connections against 2 workers,
4 runs in 12 left one worker with most of them, and such a run served about half as many
requests (one core busy, the other idle). Here each worker publishes how many
connections it holds on a small board in memory shared by the workers (set up by the
master before it forks them), and stops accepting while it holds more than its share
(the mean over the workers, plus `SLACK` and a `SHARE`th of the mean); the others take the
next connections.

Never a connection left waiting for nobody: the worker with the fewest connections is
always within its share (see `may_accept`), a worker that has not looked at the board for
`STALE_AFTER` seconds (stuck, or stopped) is left out of the mean, a stopping worker
leaves the board at once, and a worker that is not accepting looks again every
`RECHECK_EVERY` seconds. With one worker nothing changes.

The master assigns each worker a slot on the board (`take_slot` in `pre_fork`) and frees
it when the worker has exited (`free_slot` in `child_exit`): server.gunicorn_conf does
both.

No thread ever waits on a client (`NonBlockingWorker`); a few threads answer everyone,
and one waiting on a slow client is one fewer for all the others. gthread waited in three
places, each found by an attack that stopped a server of 2 workers x 4 threads:
- reading: a thread took a new connection at its first byte and waited for the rest (ten
  clients that sent one byte each held every thread). Here each request is read in the
  event loop (server.reading says when it is whole) and a thread gets it whole; one not
  whole within `HEADER_TIMEOUT` seconds of its first byte (of being accepted, for a new
  connection) is answered 408 and closed.
- writing: a thread wrote the answer with a blocking send (twenty clients asking for a
  large snapshot and never reading held every thread). Here the thread sends what the
  kernel takes at once and the event loop the rest (`Outgoing`); a client that takes no
  byte for `WRITE_TIMEOUT` seconds is disconnected.
- closing: after an answer with `Connection: close` the event loop itself read, blocking,
  for up to 2 s what the client still sent, so that the answer is not cut off by a reset
  (clients that did not close made every request of everyone wait 2 s). Here that
  lingering is an event like the others.
Waiting connections cost a buffer and a file descriptor each; `worker_connections`
(server.gunicorn_conf) bounds how many a worker holds.

Written against gunicorn 27's ThreadWorker (its `set_accept_enabled`,
`wait_for_and_dispatch_events`, `accept`, `enqueue_req`, `handle_request`,
`finish_request` and `murder_pending`, and TConn's `parser`, `data_ready` and `close`),
the version pyproject.toml allows.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import mmap
import random
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from gunicorn import http, util  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from server import metrics, reading
from server.streams import HOLD, KEEPALIVE, Held, Hub, News

SLOTS: Final = 256  # workers at once, stopping ones included (SIGHUP doubles them briefly)
SLACK: Final = 1  # connections a worker may hold beyond the mean
# and a 1/SHARE of the mean on top: with a fixed slack, two workers holding thousands of
# streams took turns accepting a few connections per RECHECK_EVERY, 500 a second in all
# (bench/stream_bench.py), where one worker accepted 2,600 a second.
SHARE: Final = 16
STALE_AFTER: Final = 3.0  # seconds: an idle worker looks at least every second
RECHECK_EVERY: Final = 0.02  # seconds, while not accepting
_FREE: Final = -1
HEADER_TIMEOUT = 10.0  # seconds for a whole request; server.gunicorn_conf sets it
WRITE_TIMEOUT = 30.0  # seconds a client may take nothing of its answer; gunicorn_conf sets it
LINGER: Final = 2.0  # seconds to read what a client sends after its last answer (gthread's)
LINGER_BYTES: Final = 65536  # and at most this much (gthread's)
RECEIVE: Final = 65536  # bytes read at once from a connection
RESET: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection
LAST_CHUNK: Final = b"0\r\n\r\n"  # how gunicorn ends a chunked answer (util.write_chunk)
STREAM_RECEIVE_LIMIT: Final = 4096  # bytes a stream's client may send (it should send none)
# Keep-alive comments are sent at most this many per turn of the event loop, the next batch
# at most PING_TURN seconds later: 10,000 streams opened together, all due at once, took the
# loop away from every request for tens of milliseconds (bench/stream_bench.py).
PINGS_PER_TURN: Final = 200
PING_TURN: Final = 0.005


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


def may_accept(mine: int, others: Sequence[int]) -> bool:
    """Whether a worker holding `mine` connections takes more, when the other live workers
    hold `others`: while it holds no more than the mean plus SLACK plus a SHAREth of the
    mean (whole numbers throughout: mine <= mean x (1 + 1/SHARE) + SLACK). The worker with
    the fewest always may, so some worker always accepts."""
    workers = len(others) + 1
    total = mine + sum(others)
    return mine * workers * SHARE <= total * (SHARE + 1) + SLACK * workers * SHARE


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
class Wait:
    """A connection waiting on its client until `deadline`, and what to do then."""

    conn: Any  # gunicorn's TConn
    deadline: float
    expire: Callable[[], None]
    done: bool = False  # finished (or replaced by a later wait) before its deadline


class Waits:
    """Waits in the order they began; with one timeout per kind, that is deadline order
    within each kind, and a wait that got a later deadline is replaced, not moved."""

    def __init__(self) -> None:
        self._queue: deque[Wait] = deque()

    def add(self, wait: Wait) -> Wait:
        self._queue.append(wait)
        return wait

    def expire(self, now: float) -> None:
        while self._queue and (self._queue[0].done or self._queue[0].deadline <= now):
            wait = self._queue.popleft()
            if not wait.done:
                wait.done = True
                wait.expire()


class Outgoing:
    """The socket a thread writes an answer to. What the kernel takes at once is sent at
    once; the rest is kept (the application's own bytes, not copied) for the event loop to
    send as the client reads, so a client that reads slowly or not at all never holds the
    thread. Other socket methods are the real socket's."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.pending: deque[memoryview] = deque()
        self.held: Held | None = None  # the answer is a stream to keep open (server.streams)
        self.chunked = False  # whether gunicorn framed it in chunks

    def hold(self, held: Held) -> None:
        """The application's `HOLD`: keep this connection open once answered."""
        self.held = held

    def sendall(self, data: bytes) -> None:
        if self.held is not None and data == LAST_CHUNK:
            self.chunked = True  # gunicorn ends a chunked answer so; a held stream goes on
            return
        view = memoryview(data).cast("B")
        if not self.pending:
            with contextlib.suppress(BlockingIOError):
                view = view[self._sock.send(view, socket.MSG_DONTWAIT) :]
        if view:
            self.pending.append(view if isinstance(data, bytes) else memoryview(bytes(view)))

    def send(self, data: bytes, flags: int = 0) -> int:
        self.sendall(data)
        return len(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """What gunicorn's file wrappers would send (flagserve sends none), in order."""
        file.seek(offset)
        data = file.read() if count is None else file.read(count)
        self.sendall(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@dataclass(eq=False)
class Stream:
    """A held stream: its connection, environment, the tag its client was last sent (None:
    unknown), whether its bytes are framed in chunks, and what it has still to take."""

    conn: Any  # gunicorn's TConn
    environment: str
    seen: str | None
    chunked: bool
    pending: deque[memoryview]
    keepalive: float  # seconds between keep-alive comments, at most
    wait: Wait | None = None  # while it holds bytes: until when it must take some
    events: int = selectors.EVENT_READ  # what the poller waits for on it
    received: int = 0  # bytes its client sent


def send_pending(sock: socket.socket, pending: deque[memoryview]) -> bool:
    """Send from the front of `pending` what the kernel takes at once, and drop it from
    there; True when it took any byte. Other OSErrors than "it would block" are raised."""
    took = False
    try:
        while pending:
            head = pending[0]
            sent = sock.send(head)
            took = took or sent > 0
            if sent < len(head):
                pending[0] = head[sent:]
                break
            pending.popleft()
    except (BlockingIOError, InterruptedError):
        pass
    return took


def reset(sock: socket.socket) -> None:
    """Make the coming close() a reset, so that the kernel drops what it still holds for a
    client that reads nothing (up to megabytes)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)


class NonBlockingWorker(BalancedThreadWorker):
    """BalancedThreadWorker whose threads never wait on a client (the module's doc): each
    request is read in the event loop, the part of an answer a client does not take at
    once is sent from there, and so is the lingering close after `Connection: close`."""

    wsgi: Any  # gunicorn's Worker sets it in load_wsgi

    def init_process(self) -> None:
        self._streams: dict[str, dict[Any, Stream]] = {}  # environment: its held streams
        self._hubs: list[Hub] = []  # the hubs this worker has subscribed to
        # When each stream is due its next keep-alive comment: (when, order, stream).
        self._pings: list[tuple[float, int, Stream]] = []
        self._pinged = itertools.count()
        self._reading: dict[Any, Wait] = {}  # connection: its request's wait
        self._writing: dict[Any, Wait] = {}
        self._waits = {kind: Waits() for kind in ("reading", "writing", "lingering")}
        self._head_limit = reading.head_limit(
            self.cfg.limit_request_line,
            self.cfg.limit_request_fields,
            self.cfg.limit_request_field_size,
        )
        super().init_process()  # runs the worker

    def load_wsgi(self) -> None:
        """The application, given `HOLD` (server.streams) in each request's environ: the
        answer's Outgoing takes what it asks to keep open."""
        super().load_wsgi()
        application: Any = self.wsgi

        def with_hold(environ: dict[str, Any], start_response: Any) -> Any:
            outgoing = environ.get("gunicorn.socket")
            if isinstance(outgoing, Outgoing) and not self.cfg.is_ssl:
                environ[HOLD] = outgoing.hold
            return application(environ, start_response)

        self.wsgi = with_hold

    def accept(self, listener: socket.socket) -> None:
        """gthread's accept, with connections that close gracefully in the event loop."""
        try:
            sock, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, address, listener.getsockname())
        conn.close = partial(self._close, conn)
        self.enqueue_req(conn)

    # Reading: every way to a thread (a new connection, a kept-alive one with a new request,
    # bytes left over from the last request) goes through enqueue_req.

    def enqueue_req(self, conn: Any) -> None:
        if self.cfg.is_ssl:  # TLS is read by the thread (flagserve itself has none)
            super().enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        # a bytearray: appending a piece does not copy what came before
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.received = bytearray(leftover)
        conn.scan = reading.Scan(self._head_limit, reading.MAX_BODY)
        wait = Wait(conn, time.monotonic() + HEADER_TIMEOUT, partial(self._late, conn))
        self._reading[conn] = self._waits["reading"].add(wait)
        # A kept-alive connection comes here once readable: its request is usually whole
        # at the first look, without a round through the poller. Bytes left over from the
        # last request come first (the client may have sent them and closed).
        if self._whole(conn):
            self._hand_over(conn)
        elif not self._receive(conn):
            self._reading.pop(conn).done = True
            self._drop(conn)
        elif self._whole(conn):
            self._hand_over(conn)
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: Any, _sock: Any) -> None:
        if not self._receive(conn):
            self._reading.pop(conn).done = True
            self.poller.unregister(conn.sock)
            self._drop(conn)
        elif self._whole(conn):
            self.poller.unregister(conn.sock)
            self._hand_over(conn)

    def _receive(self, conn: Any) -> bool:
        """What the client has sent, added to its request; False when the connection ended
        (closed or reset) before a whole request: there is nothing to answer."""
        try:
            data = conn.sock.recv(RECEIVE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        conn.received += data
        return bool(data)

    def _whole(self, conn: Any) -> bool:
        """Whether the request received is whole (or enough for the parser to refuse it);
        answers 100 Continue on the way."""
        step = conn.scan.look(conn.received)
        if step is reading.Progress.CONTINUE:
            conn.received = reading.without_expect(conn.received, conn.scan.head)
            conn.scan = reading.Scan(self._head_limit, reading.MAX_BODY)  # the bytes moved
            try:
                conn.sock.send(reading.CONTINUE)  # a few bytes: room for them
            except OSError:
                step = reading.Progress.WHOLE  # the thread meets the same error and ends it
        return step is reading.Progress.WHOLE

    def _hand_over(self, conn: Any) -> None:
        """To a thread, with the request in the parser's buffer."""
        self._reading.pop(conn).done = True
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.received))
        conn.received = bytearray()
        conn.data_ready = True  # gthread would otherwise wait for a first byte
        super().enqueue_req(conn)

    def _late(self, conn: Any) -> None:
        """A request not whole in time: 408 if it had begun, and closed."""
        del self._reading[conn]
        self.poller.unregister(conn.sock)
        if conn.received:
            with contextlib.suppress(OSError):
                conn.sock.send(reading.TIMED_OUT)
        self._drop(conn)

    def _drop(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()

    # Writing: the thread writes to an Outgoing; what it kept is sent before gthread's
    # finish_request decides between keep-alive and close.

    def handle_request(self, req: Any, conn: Any) -> Any:
        sock = conn.sock
        conn.sock = conn.outgoing = Outgoing(sock)
        try:
            return super().handle_request(req, conn)
        finally:
            conn.sock = sock

    def finish_request(self, conn: Any, fs: Any) -> None:
        outgoing: Outgoing | None = getattr(conn, "outgoing", None)
        conn.outgoing = None
        if outgoing is not None and outgoing.held is not None and self._answered(conn, fs):
            self._hold(conn, outgoing, outgoing.held)
            return
        if outgoing is None or not outgoing.pending or conn.sock.fileno() < 0:
            super().finish_request(conn, fs)
            return
        conn.sock.setblocking(False)
        done = partial(super().finish_request, conn, fs)
        self._writing[conn] = self._write_wait(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_WRITE, partial(self._writable, conn, outgoing, done)
        )

    def _write_wait(self, conn: Any) -> Wait:
        wait = Wait(conn, time.monotonic() + WRITE_TIMEOUT, partial(self._stalled, conn))
        return self._waits["writing"].add(wait)

    def _writable(self, conn: Any, outgoing: Outgoing, done: Callable[[], None], _: Any) -> None:
        try:
            took = send_pending(conn.sock, outgoing.pending)
        except OSError:
            self._writing.pop(conn).done = True
            self.poller.unregister(conn.sock)
            self._drop(conn)
            return
        if outgoing.pending:
            if took:  # it reads: a new deadline
                self._writing[conn].done = True
                self._writing[conn] = self._write_wait(conn)
            return
        self._writing.pop(conn).done = True
        self.poller.unregister(conn.sock)
        done()

    def _stalled(self, conn: Any) -> None:
        """A client that took nothing of its answer for WRITE_TIMEOUT seconds: reset."""
        del self._writing[conn]
        self.poller.unregister(conn.sock)
        reset(conn.sock)
        self._drop(conn)

    # Closing: after `Connection: close` gthread half-closes and reads what the client still
    # sends for up to 2 s, so that the last answer is not cut off by a reset; it did so in
    # the event loop with a blocking socket, and a client that did not close held every
    # connection of the worker for those 2 s.

    def _close(self, conn: Any, graceful: bool = False) -> None:
        if not graceful:
            util.close(conn.sock)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            util.close(conn.sock)
            return
        conn.sock.setblocking(False)
        conn.drained = 0
        wait = Wait(conn, time.monotonic() + LINGER, partial(self._lingered, conn))
        self._waits["lingering"].add(wait)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn, wait))

    def _drain(self, conn: Any, wait: Wait, _: Any) -> None:
        try:
            data = conn.sock.recv(RECEIVE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_BYTES:
            wait.done = True
            self._lingered(conn)

    def _lingered(self, conn: Any) -> None:
        self.poller.unregister(conn.sock)
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """gthread's own expiry, then the waits that are over, then keep-alive comments on
        the streams when they are due."""
        super().murder_pending()
        now = time.monotonic()
        for waits in self._waits.values():
            waits.expire(now)
        for _ in range(PINGS_PER_TURN):
            if not self._pings or self._pings[0][0] > now:
                break
            _, _, stream = heapq.heappop(self._pings)
            if stream.conn in self._streams.get(stream.environment, ()):
                self._send(stream, KEEPALIVE)
                self._ping_later(stream, now)

    def _ping_later(self, stream: Stream, now: float) -> None:
        """Its next keep-alive comment, 3/4 to all of `keepalive` from now: spread out,
        so that thousands of streams opened together are not all written to in one turn of
        the event loop (a pause every answer waiting then would show)."""
        due = now + stream.keepalive * random.uniform(0.75, 1.0)
        heapq.heappush(self._pings, (due, next(self._pinged), stream))

    # Streams (server.streams): a held connection stays in the event loop, with no thread;
    # it is sent its environment's events and keep-alive comments, and ends when the
    # client closes it, takes nothing for WRITE_TIMEOUT seconds, or the worker stops.

    def _answered(self, conn: Any, fs: Any) -> bool:
        """Whether the thread answered the stream's request whole (no error) in a worker
        that goes on serving."""
        return (
            self.alive and not fs.cancelled() and fs.exception() is None and conn.sock.fileno() >= 0
        )

    def _hold(self, conn: Any, outgoing: Outgoing, held: Held) -> None:
        conn.sock.setblocking(False)
        stream = Stream(
            conn, held.environment, held.seen, outgoing.chunked, outgoing.pending, held.keepalive
        )
        self._streams.setdefault(held.environment, {})[conn] = stream
        metrics.STREAMS.inc()
        if held.hub not in self._hubs:
            self._hubs.append(held.hub)
            held.hub.subscribe(partial(self.method_queue.defer, self._publish))
        self._ping_later(stream, time.monotonic())
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._stream_ready, stream))
        if stream.pending:
            self._flush(stream)
            if conn not in self._streams.get(held.environment, ()):
                return  # the client had gone
        # A build may have come since the thread looked (its news may still be on its way).
        news = held.hub.news(held.environment)
        if news is None:
            self._end(stream)
        elif stream.seen is not None and stream.seen != news[0]:
            self._send(stream, news[1], news[0])

    def _publish(self, news: News) -> None:
        """A new build's news: each changed environment's streams get its event (unless
        already sent it), a vanished environment's streams end."""
        for environment, found in news.items():
            for stream in list(self._streams.get(environment, {}).values()):
                if found is None:
                    self._end(stream)
                elif stream.seen != found[0]:
                    self._send(stream, found[1], found[0])

    def _send(self, stream: Stream, data: bytes, tag: str | None = None) -> None:
        """`data` to the stream; `tag`: it is the event telling of that tag."""
        if tag is not None:
            stream.seen = tag
            metrics.STREAM_EVENTS.inc()
        frame = b"%X\r\n%s\r\n" % (len(data), data) if stream.chunked else data
        stream.pending.append(memoryview(frame))
        if len(stream.pending) == 1:
            self._flush(stream)

    def _stream_ready(self, stream: Stream, _sock: Any) -> None:
        """Readable (the client closed, or sent what it should not) or writable."""
        try:
            data = stream.conn.sock.recv(STREAM_RECEIVE_LIMIT)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data is not None:
            stream.received += len(data)
            if not data or stream.received >= STREAM_RECEIVE_LIMIT:
                self._end(stream)
                return
        if stream.pending:
            self._flush(stream)

    def _flush(self, stream: Stream) -> None:
        """Send what the stream holds, as far as the client takes it; wait for it to be
        writable (with a deadline) for the rest."""
        sock = stream.conn.sock
        try:
            took = send_pending(sock, stream.pending)
        except OSError:
            self._end(stream)
            return
        if stream.wait is not None and (took or not stream.pending):
            stream.wait.done = True  # it took bytes (or all): a new deadline, or none
            stream.wait = None
        events = selectors.EVENT_READ
        if stream.pending:
            events |= selectors.EVENT_WRITE
            if stream.wait is None:
                deadline = time.monotonic() + WRITE_TIMEOUT
                wait = Wait(stream.conn, deadline, partial(self._stuck, stream))
                stream.wait = self._waits["writing"].add(wait)
        if events != stream.events:
            stream.events = events
            self.poller.modify(sock, events, partial(self._stream_ready, stream))

    def _stuck(self, stream: Stream) -> None:
        """A stream's client that took nothing for WRITE_TIMEOUT seconds: reset."""
        stream.wait = None
        reset(stream.conn.sock)
        self._end(stream)

    def _end(self, stream: Stream) -> None:
        held = self._streams.get(stream.environment, {})
        if held.pop(stream.conn, None) is None:
            return
        if not held:
            del self._streams[stream.environment]
        metrics.STREAMS.dec()
        if stream.wait is not None:
            stream.wait.done = True
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(stream.conn.sock)
        self._drop(stream.conn)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """A stopping worker ends its streams at once (their clients reconnect to another
        worker, and say with Last-Event-ID what they have) rather than waiting on them for
        the graceful timeout."""
        if not self.alive and self._streams:
            for streams in list(self._streams.values()):
                for stream in list(streams.values()):
                    self._end(stream)
        if self._pings and self._pings[0][0] <= time.monotonic():
            timeout = min(timeout, PING_TURN)  # more are due: back soon for the next batch
        super().wait_for_and_dispatch_events(timeout)
