"""Logging: one access line per request, and every log line (gunicorn's too) as text or as
one JSON object (FLAGSERVE_LOG_FORMAT).

Access lines go to stdout through the `flagserve.access` logger, everything else to
stderr. An access line has the method, the path (never the query string, nor any header:
an API key is never logged), the status, the duration in milliseconds, the request id
(X-Request-ID as the response carries it) and the client's address. In JSON every line is an
object with `time`, `level`, `logger`, `pid` and `message`, and access lines add their fields.

In a worker the request threads never write to a stream: the access logger's handlers move
behind a `logging.handlers.QueueHandler`, and a `QueueListener` thread formats and writes
the lines (`hand_off_access_log`), until the worker exits (`write_out_access_log`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import time
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Final

import falcon
from gunicorn import glogging  # type: ignore[import-untyped]

ACCESS: Final = "flagserve.access"
ACCESS_FORMAT: Final = "%s %s %s %.3fms request_id=%s remote=%s"
"""An access line's message: method, path, status, duration, request id, client address."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # where splitlines() splits, too

access_log = logging.getLogger(ACCESS)


class _Formatter(logging.Formatter):
    """What both formats share: the time in UTC to the millisecond, in ISO 8601."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """`2026-01-02T03:04:05.678+00:00` (`datefmt` is not used: one format for all)."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(_Formatter):
    """`2026-01-02T03:04:05.678+00:00 [pid] LEVEL logger: message`, control characters
    escaped so that a line is always one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} [{record.process}] {record.levelname} {record.name}: "
            f"{_escape(record.getMessage())}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(_Formatter):
    """One JSON object per line; an access record's `fields` are added to it."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        line = _to_json(document)  # escapes C0 control characters, but not these:
        return line if line.isprintable() else line.translate(_JSON_ESCAPES)


_to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode  # made once, not per line
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in (*range(0x7F, 0xA0), 0x2028, 0x2029)}


def _escape(text: str) -> str:
    """Each control character (C0, DEL, C1) and Unicode line or paragraph separator as
    `\\xNN` or `\\uNNNN`: a path cannot forge a second line, for whatever splits lines."""
    if text.isprintable():  # the usual case, checked in C: none of them
        return text
    return _CONTROL.sub(_escaped, text)


def _escaped(found: re.Match[str]) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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


def _handler(stream: str) -> dict[str, str]:
    return {"class": "logging.StreamHandler", "formatter": "flagserve", "stream": stream}


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


class _Enqueue(QueueHandler):
    """A QueueHandler that puts the record on the queue as it is, without the handler's
    lock. The queue is thread-safe and the listener is a thread of this process: there is
    nothing to serialize and nothing to make picklable. With `Handler.handle`'s lock and
    `QueueHandler.prepare`'s format and copy, 4 request threads queued on the lock: 1.3-2.8
    voluntary context switches per request against 0.2, and 30-40% fewer requests a second
    (bench/observers_bench.py; docs/benchmarks.md)."""

    def handle(self, record: logging.LogRecord) -> bool:
        self.enqueue(record)
        return True


BATCH_EVERY: Final = 0.1


class _Lines(logging.Handler):
    """Stands in, behind the listener, for one of the access logger's stream handlers: it
    formats each record with that handler's formatter, as the handler would, and writes the
    lines of a batch in one write (`drain`) instead of one write and flush per line (each a
    system call that hands the GIL to the request threads and back). Only the listener's
    thread calls it."""

    def __init__(self, target: logging.StreamHandler[Any]) -> None:
        super().__init__(target.level)
        self.target = target
        self._lines: list[str] = []

    def handle(self, record: logging.LogRecord) -> bool:
        self._lines.append(self.target.format(record) + self.target.terminator)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def drain(self) -> None:
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        with contextlib.suppress(OSError, ValueError):  # a closed stream loses lines only
            self.target.stream.write(text)
            self.target.flush()


class _Batches(queue.SimpleQueue[logging.LogRecord | None]):
    """The listener's queue. When it runs dry the listener writes what it has formatted
    (`_Lines.drain`) and waits; woken by the next record, it sleeps BATCH_EVERY before
    taking it, so that the records of the requests answered meanwhile come with it: one
    wake-up of the listener and one write per batch, not per request (each a GIL hand-off
    the request threads wait for). Against the stdlib listener as it is (and uuid4's
    request ids), flagserve served 103-113% of the requests a second
    (`bench/serve_bench.py --against`; docs/benchmarks.md)."""

    lines: tuple[_Lines, ...] = ()

    def get(self, block: bool = True, timeout: float | None = None) -> logging.LogRecord | None:
        try:
            record = super().get(block=False)
        except queue.Empty:
            if not block:
                raise
            self.drain()
            record = super().get(timeout=timeout)
            if record is not None:
                time.sleep(BATCH_EVERY)
        if record is None:  # QueueListener.stop's sentinel: write the last lines, then stop
            self.drain()
        return record

    def drain(self) -> None:
        for lines in self.lines:
            lines.drain()


_listener: QueueListener | None = None


def hand_off_access_log() -> QueueListener | None:
    """In a worker: the access logger's stream handlers move behind a queue, so that a
    request thread only makes a record and enqueues it, and one `QueueListener` thread
    formats the lines and writes them in batches (taking a stream's lock per request had 8
    threads queued on it). None when there is nothing to hand off, or it is done already."""
    global _listener  # noqa: PLW0603 - one listener per worker process
    handlers = [h for h in access_log.handlers if isinstance(h, logging.StreamHandler)]
    if not handlers or _listener is not None:
        return None
    records = _Batches()
    records.lines = tuple(_Lines(handler) for handler in handlers)
    _listener = QueueListener(records, *records.lines, respect_handler_level=True)
    for handler in handlers:
        access_log.removeHandler(handler)
    access_log.addHandler(_Enqueue(records))
    _listener.start()
    return _listener


def write_out_access_log() -> None:
    """In a worker that is exiting: the listener writes every line queued so far and stops
    (its thread is a daemon, which would end with the process whatever it holds), and the
    access logger gets its handlers back, so that a line after this one is written too."""
    global _listener
    listener, _listener = _listener, None
    if listener is None:
        return
    listener.stop()
    for handler in access_log.handlers[:]:
        access_log.removeHandler(handler)
    for lines in listener.handlers:
        assert isinstance(lines, _Lines)  # as hand_off_access_log made them
        access_log.addHandler(lines.target)


def note_access(req: falcon.Request, resp: falcon.Response, elapsed: float) -> None:
    """An observer (server.exchange.Exchange): one access line for an answered request. Its
    `fields` are what a JSON line adds; the message says the same in text."""
    fields = {
        "method": req.method,
        "path": req.path,
        "status": resp.status_code,
        "duration_ms": round(elapsed * 1000, 3),
        "request_id": req.context.get("request_id"),  # as server.exchange.Exchange answered
        "remote_addr": req.remote_addr,
    }
    if access_log.isEnabledFor(logging.INFO):
        # `access_log.info` would also look up the caller's frame and check `extra` again,
        # for a record whose caller is always this line: 6.0 us against 3.3 us, measured.
        record = access_log.makeRecord(
            ACCESS, logging.INFO, __file__, 0, ACCESS_FORMAT, tuple(fields.values()), None
        )
        record.fields = fields
        access_log.handle(record)
