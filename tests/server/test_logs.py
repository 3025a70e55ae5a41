"""The pieces of the access log and of the one middleware that are cheap on purpose: they
must still say exactly what the slow, obvious versions said."""

from __future__ import annotations

import io
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

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


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_timestamps_are_those_datetime_writes(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert logs._utc_milliseconds(created) == expected


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("GET /a 200", "GET /a 200"),
        ("GET /caf\u00e9 200", "GET /caf\u00e9 200"),
        ("GET /a\nb 200", "GET /a\\x0ab 200"),
        ("GET /a\rb\x00\x7f", "GET /a\\x0db\\x00\\x7f"),
        ("tab\there", "tab\\x09here"),
    ],
)
def test_control_characters_are_escaped(text: str, escaped: str) -> None:
    assert logs._escape(text) == escaped


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


def test_an_access_line_without_a_writer_thread_goes_through_logging(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    client = falcon.testing.TestClient(create_app(store, observers=[logs.note_access]))
    with caplog.at_level(logging.INFO, logger=logs.ACCESS):
        client.simulate_get(FLAT, headers={"X-Request-ID": "line-1"})
    [record] = [r for r in caplog.records if r.name == logs.ACCESS]
    fields: dict[str, Any] = record.__dict__["fields"]
    assert fields["method"] == "GET"
    assert fields["path"] == FLAT
    assert fields["status"] == 200
    assert fields["request_id"] == "line-1"
    assert record.getMessage().startswith(f"GET {FLAT} 200 ")
    assert "request_id=line-1" in record.getMessage()


entries = st.tuples(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.sampled_from(["GET", "HEAD", "POST", "other"]),
    st.text(max_size=40),
    st.integers(min_value=100, max_value=599),
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.one_of(st.none(), st.text(max_size=40)),
    st.one_of(st.none(), st.text(max_size=20)),
)


@given(entries)
@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_the_writer_thread_writes_what_the_formatters_write(
    formatter: logging.Formatter, entry: logs.AccessEntry
) -> None:
    fields = logs._fields(entry)
    record = logs.access_log.makeRecord(
        logs.ACCESS,
        logging.INFO,
        __file__,
        0,
        logs._ACCESS_FORMAT,
        tuple(fields.values()),
        None,
        extra={"fields": fields},
    )
    record.created, record.process = entry[0], 4242
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(formatter)
    logs._write([entry], [handler], 4242)
    assert handler.stream.getvalue() == formatter.format(record) + "\n"
