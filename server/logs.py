"""Logging: one access line per request, and every log line (gunicorn's too) as text or as
one JSON object (FLAGSERVE_LOG_FORMAT).

Access lines go to stdout through the `flagserve.access` logger, everything else to
stderr. An access line has the method, the path (never the query string, nor any header:
an API key is never logged), the status, the duration in milliseconds, the request id
(X-Request-ID as the response carries it) and the client's address. In JSON every line is an
object with `time`, `level`, `logger`, `pid` and `message`, and access lines add their fields.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Final

import falcon
from gunicorn import glogging  # type: ignore[import-untyped]

ACCESS: Final = "flagserve.access"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

access_log = logging.getLogger(ACCESS)


class TextFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678+00:00 [pid] LEVEL logger: message`, control characters
    escaped so that a line is always one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_timestamp(record)} [{record.process}] {record.levelname} {record.name}: "
            f"{_escape(record.getMessage())}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return _utc_milliseconds(record.created)


_second: list[tuple[int, str]] = [(-1, "")]  # the last second formatted, and how


def _utc_milliseconds(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, with the
    date and time up to the second formatted once per second (access lines come in
    thousands per second)."""
    fraction, whole = math.modf(created)  # rounded as datetime rounds a timestamp
    second, fraction = divmod(int(whole) * 1_000_000 + round(fraction * 1_000_000), 1_000_000)
    last, formatted = _second[0]
    if second != last:
        formatted = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0] = (second, formatted)
    return f"{formatted}.{fraction // 1000:03d}+00:00"


def _escape(text: str) -> str:
    if text.isprintable():  # the usual case, checked in C: no control character
        return text
    return _CONTROL.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


def config(log_format: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` document for gunicorn's `logconfig_dict`."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    quiet = {"level": "INFO", "handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"flagserve": {"()": f"{formatter.__module__}.{formatter.__name__}"}},
        "handlers": {
            "stdout": _handler("ext://sys.stdout"),
            "stderr": _handler("ext://sys.stderr"),
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": quiet,  # replaced by flagserve.access
            "flagserve": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            ACCESS: {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log. flagserve writes its own (with the request
    id), and gunicorn, configured by `logconfig_dict`, would otherwise build its access
    fields and a log record per request for a logger with no handler: a sixth of a
    worker's time under load, measured with py-spy."""

    @property
    def access_log_enabled(self) -> bool:
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return


def _handler(stream: str) -> dict[str, str]:
    return {"class": "logging.StreamHandler", "formatter": "flagserve", "stream": stream}


AccessEntry = tuple[float, str, str, int, float, str | None, str]
"""When (Unix time), method, path, status, seconds taken, request id, client address."""


class _AccessWriter:
    """A worker's queue of access entries and the thread that writes them out in batches."""

    def __init__(self, handlers: list[logging.StreamHandler[Any]]) -> None:
        self.entries: queue.SimpleQueue[AccessEntry] = queue.SimpleQueue()
        self._handlers = handlers
        self._taken: list[AccessEntry] = []  # out of the queue, not written yet
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(self) -> None:
        while True:
            first = self.entries.get()  # idle until a request is answered
            with self._lock:
                self._taken.append(first)
            # Then let the next requests' entries gather: one wake-up of this thread per
            # batch, not per request (each wake-up is a GIL hand-off the request threads
            # wait for).
            time.sleep(BATCH_EVERY)
            self.write_out()

    def write_out(self) -> None:
        """Write every entry taken or queued so far (also when the worker exits)."""
        with self._lock:
            batch, self._taken = self._taken, []
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.entries.get_nowait())
            if batch:
                _write(batch, self._handlers, self._pid)


_writer: _AccessWriter | None = None
BATCH_EVERY: Final = 0.1


def hand_off_access_log() -> threading.Thread | None:
    """In a worker: access entries go to a queue that one thread formats and writes out in
    batches, so a request only enqueues a tuple. Building a LogRecord and taking the
    stream's lock per request cost more than the request itself (and 8 threads queued on
    that lock). The lines are those the configured formatter would write."""
    global _writer  # noqa: PLW0603 - one writer per worker process
    handlers = [h for h in access_log.handlers if isinstance(h, logging.StreamHandler)]
    if not handlers or _writer is not None:
        return None
    writer = _AccessWriter(handlers)
    thread = threading.Thread(target=writer.run, name="flagserve-access-log", daemon=True)
    thread.start()
    _writer = writer
    return thread


def write_out_access_log() -> None:
    """In a worker that is exiting: the lines not written yet (the writer thread is a
    daemon and ends with the process, whatever it holds)."""
    if _writer is not None:
        _writer.write_out()


def _write(batch: list[AccessEntry], handlers: list[logging.StreamHandler[Any]], pid: int) -> None:
    text_prefix = f" [{pid}] INFO {ACCESS}: "
    for handler in handlers:
        if isinstance(handler.formatter, JsonFormatter):
            text = "".join(_json_line(entry, pid) for entry in batch)
        else:
            text = "".join(_text_line(entry, text_prefix) for entry in batch)
        with contextlib.suppress(OSError, ValueError):  # a closed stream loses lines only
            handler.stream.write(text)
            handler.flush()


def _text_line(entry: AccessEntry, prefix: str) -> str:
    """What TextFormatter writes for an access record, made without the record (thousands
    of lines a second)."""
    created, method, path, status, elapsed, request_id, remote_addr = entry
    message = (
        f"{method} {path} {status} {round(elapsed * 1000, 3):.3f}ms "
        f"request_id={request_id} remote={remote_addr}"
    )
    return f"{_utc_milliseconds(created)}{prefix}{_escape(message)}\n"


def _json_line(entry: AccessEntry, pid: int) -> str:
    """What JsonFormatter writes for an access record."""
    fields = _fields(entry)
    document = {
        "time": _utc_milliseconds(entry[0]),
        "level": "info",
        "logger": ACCESS,
        "pid": pid,
        "message": _ACCESS_FORMAT % tuple(fields.values()),
        **fields,
    }
    return json.dumps(document, ensure_ascii=False, default=str) + "\n"


_ACCESS_FORMAT: Final = "%s %s %s %.3fms request_id=%s remote=%s"


def note_access(req: falcon.Request, resp: falcon.Response, elapsed: float) -> None:
    """An observer (server.exchange.Exchange): one access line for an answered request. With
    a writer thread the request only enqueues a tuple; the line is made and written there."""
    entry = (
        time.time(),
        req.method,
        req.path,
        resp.status_code,
        elapsed,
        req.context.get("request_id"),  # as server.exchange.Exchange answered it
        req.remote_addr,
    )
    if _writer is not None:
        _writer.entries.put(entry)
    else:  # no writer thread (tests, or a process gunicorn did not start)
        fields = _fields(entry)
        access_log.info(_ACCESS_FORMAT, *fields.values(), extra={"fields": fields})


def _fields(entry: AccessEntry) -> dict[str, Any]:
    _, method, path, status, elapsed, request_id, remote_addr = entry
    return {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "request_id": request_id,
        "remote_addr": remote_addr,
    }
