"""The access log and the log formats: what a line says, that a line is always one line,
that request threads hand their records to logging's queue listener and never write, and
the one middleware's request ids."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import falcon
import falcon.testing
import pytest
from gunicorn.config import Config
from hypothesis import given
from hypothesis import strategies as st

from server import logs
from server.app import create_app
from server.store import Store

FLAT = "/api/v1/environments/production/flags"
CREATED = 1767323045.678  # 2026-01-02T03:04:05.678 UTC


class ThreadsSeen(io.StringIO):
    """A stream that remembers which threads wrote to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[str] = set()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writers.add(threading.current_thread().name)
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> Iterator[ThreadsSeen]:
    """The access logger writing to a fresh stream (as `logs.config` sets it up, but in
    memory), its handlers and hand-off put back afterwards."""
    kept, level = logs.access_log.handlers[:], logs.access_log.level
    seen = ThreadsSeen()
    handler = logging.StreamHandler(seen)
    handler.setFormatter(logs.JsonFormatter())
    logs.access_log.handlers[:] = [handler]
    logs.access_log.setLevel(logging.INFO)
    yield seen
    logs.write_out_access_log()
    logs.access_log.handlers[:] = kept
    logs.access_log.setLevel(level)


def access_record(message: str, *args: object, **fields: object) -> logging.LogRecord:
    record = logs.access_log.makeRecord(logs.ACCESS, logging.INFO, __file__, 1, message, args, None)
    record.created, record.process, record.fields = CREATED, 4242, fields
    return record


LINE = ("GET", FLAT, 200, 0.123, "rid-1", "127.0.0.1")


@pytest.mark.parametrize(
    ("formatter", "expected"),
    [
        (
            logs.TextFormatter(),
            f"2026-01-02T03:04:05.678+00:00 [4242] INFO flagserve.access: GET {FLAT} 200 "
            "0.123ms request_id=rid-1 remote=127.0.0.1",
        ),
        (
            logs.JsonFormatter(),
            json.dumps(
                {
                    "time": "2026-01-02T03:04:05.678+00:00",
                    "level": "info",
                    "logger": "flagserve.access",
                    "pid": 4242,
                    "message": f"GET {FLAT} 200 0.123ms request_id=rid-1 remote=127.0.0.1",
                    "status": 200,
                }
            ),
        ),
    ],
    ids=["text", "json"],
)
def test_an_access_line_in_each_format(formatter: logging.Formatter, expected: str) -> None:
    assert formatter.format(access_record(logs.ACCESS_FORMAT, *LINE, status=200)) == expected


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_times_are_utc_to_the_millisecond(created: float) -> None:
    record = access_record("x")
    record.created = created
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert logs.TextFormatter().format(record).startswith(expected + " [")
    assert json.loads(logs.JsonFormatter().format(record))["time"] == expected


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("GET /a 200", "GET /a 200"),
        ("GET /caf\u00e9 200", "GET /caf\u00e9 200"),
        ("GET /a\nb 200", "GET /a\\x0ab 200"),
        ("GET /a\rb\x00\x7f", "GET /a\\x0db\\x00\\x7f"),
        ("tab\there", "tab\\x09here"),
        # What str.splitlines and some log viewers also take for the end of a line (a path
        # may carry them: /a%C2%85b is /a\x85b); they were written as they came.
        ("GET /a\x85b\x1cc", "GET /a\\x85b\\x1cc"),
        ("GET /a\u2028b\u2029c\x9f", "GET /a\\u2028b\\u2029c\\x9f"),
    ],
)
def test_control_characters_are_escaped(text: str, escaped: str) -> None:
    assert logs.TextFormatter().format(access_record(text)).endswith(f": {escaped}")
    line = logs.JsonFormatter().format(access_record(text))
    assert line.isprintable()
    assert json.loads(line)["message"] == text


@given(st.text(max_size=60))
def test_a_path_is_one_line_in_either_format(path: str) -> None:
    record = access_record(logs.ACCESS_FORMAT, "GET", path, 200, 0.1, "r", "h", path=path)
    assert len(logs.TextFormatter().format(record).splitlines()) == 1
    line = logs.JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert json.loads(line)["path"] == path


def test_gunicorn_builds_no_access_records_of_its_own() -> None:
    logger = logs.GunicornLogger(Config())
    assert logger.access_log_enabled is False
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger.access_log.addHandler(handler)
    try:
        logger.access(None, None, {}, None)  # would fail on these arguments if it did work
    finally:
        logger.access_log.removeHandler(handler)
    assert seen == []


def test_observers_hear_of_every_answered_request(store: Store) -> None:
    heard: list[tuple[str, int, str | None, float]] = []

    def observe(req: falcon.Request, resp: falcon.Response, elapsed: float) -> None:
        heard.append((req.path, resp.status_code, resp.get_header("X-Request-ID"), elapsed))

    client = falcon.testing.TestClient(create_app(store, observers=[observe, observe]))
    client.simulate_get(FLAT, headers={"X-Request-ID": "given-1"})
    client.simulate_get("/no/such/thing")
    assert [(path, status, rid) for path, status, rid, _ in heard] == [
        (FLAT, 200, "given-1"),
        (FLAT, 200, "given-1"),
        ("/no/such/thing", 404, heard[2][2]),
        ("/no/such/thing", 404, heard[2][2]),
    ]
    assert uuid.UUID(hex=heard[2][2]).version == 4  # made up: a random UUID's hex
    assert heard[2][2] == uuid.UUID(hex=heard[2][2]).hex
    assert all(elapsed >= 0 for *_, elapsed in heard)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_access_line_says_what_was_answered(store: Store, stream: ThreadsSeen) -> None:
    client = falcon.testing.TestClient(create_app(store, observers=[logs.note_access]))
    client.simulate_get(FLAT, headers={"X-Request-ID": "line-1"}, query_string="key=secret")
    [line] = json_lines(stream)
    assert line["message"] == (
        f"GET {FLAT} 200 {line['duration_ms']:.3f}ms request_id=line-1 remote=127.0.0.1"
    )
    del line["time"], line["duration_ms"], line["message"]
    assert line == {
        "level": "info",
        "logger": logs.ACCESS,
        "pid": line["pid"],
        "method": "GET",
        "path": FLAT,  # never the query string
        "status": 200,
        "request_id": "line-1",
        "remote_addr": "127.0.0.1",
    }


def test_request_threads_hand_lines_to_the_listener_and_never_write(
    store: Store, stream: ThreadsSeen
) -> None:
    """In a worker the access logger's handler is a QueueHandler: the request thread only
    enqueues, the listener thread writes, and writing out stops it with every line
    written and the handlers given back."""
    [handler] = logs.access_log.handlers
    listener = logs.hand_off_access_log()
    assert listener is not None
    assert logs.hand_off_access_log() is None  # one listener per process
    [queued] = logs.access_log.handlers
    assert isinstance(queued, logging.handlers.QueueHandler)
    client = falcon.testing.TestClient(create_app(store, observers=[logs.note_access]))
    ids = [f"queued-{number}" for number in range(50)]
    for request_id in ids:
        client.simulate_get(FLAT, headers={"X-Request-ID": request_id})
    logs.write_out_access_log()  # as a worker does when it exits
    assert [line["request_id"] for line in json_lines(stream)] == ids
    assert threading.current_thread().name not in stream.writers
    assert stream.writers  # written, by the listener's thread
    assert logs.access_log.handlers == [handler]
    client.simulate_get(FLAT, headers={"X-Request-ID": "after"})  # written directly again
    assert json_lines(stream)[-1]["request_id"] == "after"


def test_the_listener_writes_a_batch_of_lines_at_once(stream: ThreadsSeen) -> None:
    """Lines that come while the listener waits BATCH_EVERY are written in one write, not
    one each (a write per line hands the GIL to the request threads and back)."""
    assert logs.hand_off_access_log() is not None
    for number in range(200):
        logs.access_log.handle(access_record("line %s", number))
    logs.write_out_access_log()
    assert len(json_lines(stream)) == 200
    assert stream.writes <= 3  # the first line's batch, the rest, and a slow machine's extra
