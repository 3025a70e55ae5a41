"""The access log and the log formats: what a line says, that a line is always one line,
that request threads queue an entry and never write, that the writer thread writes the
lines the formatters make, in batches, and loses none, and the one middleware's request
ids."""

from __future__ import annotations

import io
import json
import logging
import os
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


class Asked:
    """What note_access reads of a request and its response (falcon's, in the server)."""

    def __init__(self, path: str, request_id: str, status: int = 200) -> None:
        self.method, self.path, self.remote_addr = "GET", path, "10.0.0.1"
        self.context = {"request_id": request_id}
        self.status_code = status


def note(path: str, request_id: str, status: int = 200) -> None:
    asked = Asked(path, request_id, status)
    logs.note_access(asked, asked, 0.000123)  # type: ignore[arg-type]


def test_request_threads_queue_entries_and_the_writer_thread_writes(
    store: Store, stream: ThreadsSeen
) -> None:
    """In a worker a request thread only queues an entry: no log record, no write. The
    writer thread writes the lines; writing out ends it with every line written, and later
    lines go through logging again."""
    [handler] = logs.access_log.handlers
    writer = logs.hand_off_access_log()
    assert writer is not None
    assert logs.hand_off_access_log() is None  # one writer per process
    assert logs.access_log.handlers == [handler]  # the application's logging is as it was
    made: list[logging.LogRecord] = []
    make = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: made.append(make(*args, **kwargs)))
    try:
        client = falcon.testing.TestClient(create_app(store, observers=[logs.note_access]))
        ids = [f"queued-{number}" for number in range(50)]
        for request_id in ids:
            client.simulate_get(FLAT, headers={"X-Request-ID": request_id})
    finally:
        logging.setLogRecordFactory(make)
    assert [record for record in made if record.name == logs.ACCESS] == []
    logs.write_out_access_log()  # as a worker does when it exits
    assert not writer.is_alive()
    assert [line["request_id"] for line in json_lines(stream)] == ids
    assert threading.current_thread().name not in stream.writers
    assert stream.writers == {writer.name}
    client.simulate_get(FLAT, headers={"X-Request-ID": "after"})  # written directly again
    assert json_lines(stream)[-1]["request_id"] == "after"
    assert threading.current_thread().name in stream.writers


def test_writing_out_wakes_the_writer_and_drains_the_queue(stream: ThreadsSeen) -> None:
    """Lines queued while the writer waits for its batch to gather, or that it has not
    taken yet, are all written when the worker exits, without waiting for the batch."""
    writer = logs.hand_off_access_log()
    assert writer is not None
    for number in range(1000):
        note("/a", f"last-{number}")
    logs.write_out_access_log()
    assert not writer.is_alive()
    assert [line["request_id"] for line in json_lines(stream)] == [
        f"last-{number}" for number in range(1000)
    ]
    logs.write_out_access_log()  # twice is harmless


def test_a_batch_is_one_write_per_stream(stream: ThreadsSeen) -> None:
    """The lines of a batch are written in one write, not one each (a write per line hands
    the GIL to the request threads and back), in each of the access logger's formats."""
    text = ThreadsSeen()
    logs.access_log.addHandler(logging.StreamHandler(text))
    logs.access_log.handlers[-1].setFormatter(logs.TextFormatter())
    assert logs.hand_off_access_log() is not None
    for number in range(200):
        note("/b", f"batch-{number}")
    logs.write_out_access_log()
    assert len(text.getvalue().splitlines()) == len(json_lines(stream)) == 200
    assert text.writes <= 2  # the first line's batch and the rest, on a slow machine
    assert stream.writes <= 2


def test_no_line_is_lost_under_many_threads(stream: ThreadsSeen) -> None:
    assert logs.hand_off_access_log() is not None

    def answer(thread: int) -> None:
        for number in range(500):
            note(f"/t/{thread}", f"{thread}-{number}")

    threads = [threading.Thread(target=answer, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logs.write_out_access_log()
    ids = [line["request_id"] for line in json_lines(stream)]
    assert sorted(ids) == sorted(
        f"{thread}-{number}" for thread in range(8) for number in range(500)
    )
    for thread in range(8):  # each thread's lines in the order it answered
        assert [i for i in ids if i.startswith(f"{thread}-")] == [
            f"{thread}-{number}" for number in range(500)
        ]


def test_no_hand_off_for_a_formatter_it_cannot_stand_in_for(stream: ThreadsSeen) -> None:
    [handler] = logs.access_log.handlers
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    assert logs.hand_off_access_log() is None
    note("/c", "plain-1")
    assert stream.getvalue() == "INFO GET /c 200 0.123ms request_id=plain-1 remote=10.0.0.1\n"


HOSTILE = '"\\\n\r\t\x00\x1b\x7f\x85\u2028\u2029\u00e9\U0001f600'  # quotes, controls, non-ASCII
hostile = st.text(st.one_of(st.characters(), st.sampled_from(HOSTILE)), max_size=40)
entries = st.tuples(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.one_of(st.sampled_from(["GET", "HEAD", "POST"]), hostile),
    hostile,
    st.integers(min_value=100, max_value=599),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
    st.one_of(st.none(), hostile),
    st.one_of(st.none(), hostile),
)


@given(entry=entries)
@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_the_writer_writes_what_the_formatters_write(
    formatter: logging.Formatter, entry: logs.AccessEntry
) -> None:
    """The writer's lines, made without a record, are byte for byte those the formatter
    makes of the record note_access logs when there is no writer thread."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(formatter)
    line = logs._line_maker(handler)
    assert line is not None
    level = logs.access_log.level
    logs.access_log.setLevel(logging.INFO)  # as logs.config sets it
    try:
        logs._AccessWriter([(handler, line)]).write([entry])
    finally:
        logs.access_log.setLevel(level)
    fields = logs._fields(entry)
    record = access_record(logs.ACCESS_FORMAT, *fields.values(), **fields)
    record.created, record.process = entry[0], os.getpid()
    assert written.getvalue() == formatter.format(record) + "\n"
    assert len(written.getvalue().splitlines()) == 1
