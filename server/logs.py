"""Logging: one access line per request, and every log line (gunicorn's too) as text or as
one JSON object (FLAGSERVE_LOG_FORMAT).

Access lines go to stdout through the `flagserve.access` logger, everything else to
stderr. An access line has the method, the path (never the query string, nor any header:
an API key is never logged), the status, the duration in milliseconds, the request id
(X-Request-ID as the response carries it) and the client's address. In JSON every line is an
object with `time`, `level`, `logger`, `pid` and `message`, and access lines add their fields.

In a worker the request threads never write to a stream, nor make a log record: each puts
a tuple on a queue, and one thread of the worker makes the access lines (with the same
functions as the formatters) and writes them in batches (`hand_off_access_log`), until the
worker exits (`write_out_access_log`). Every other line goes through `logging` as it comes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import falcon
from gunicorn import glogging  # type: ignore[import-untyped]

ACCESS: Final = "flagserve.access"
ACCESS_FORMAT: Final = "%s %s %s %.3fms request_id=%s remote=%s"
"""An access line's message: method, path, status, duration, request id, client address."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # where splitlines() splits, too

access_log = logging.getLogger(ACCESS)
log = logging.getLogger("flagserve.logs")


class _Formatter(logging.Formatter):
    """What both formats share: the time in UTC to the millisecond, in ISO 8601."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """`2026-01-02T03:04:05.678+00:00` (`datefmt` is not used: one format for all)."""
        return _utc_time(record.created)


class TextFormatter(_Formatter):
    """`2026-01-02T03:04:05.678+00:00 [pid] LEVEL logger: message`, control characters
    escaped so that a line is always one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = _text_line(
            self.formatTime(record),
            record.process,
            record.levelname,
            record.name,
            record.getMessage(),
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(_Formatter):
    """One JSON object per line; an access record's `fields` are added to it."""

    def format(self, record: logging.LogRecord) -> str:
        document = _document(
            self.formatTime(record),
            record.levelname,
            record.name,
            record.process,
            record.getMessage(),
        )
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return _json_line(document)


# The layouts, once each: the formatters and the access log's writer thread both use them.


def _utc_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _text_line(when: str, pid: int | None, level: str, logger: str, message: str) -> str:
    return f"{when} [{pid}] {level} {logger}: {_escape(message)}"


def _document(when: str, level: str, logger: str, pid: int | None, message: str) -> dict[str, Any]:
    return {"time": when, "level": level.lower(), "logger": logger, "pid": pid, "message": message}


def _json_line(document: dict[str, Any]) -> str:
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


AccessEntry = tuple[float, str, str, int, float, Any, Any]
"""What a request thread queues: when (Unix time), method, path, status, seconds taken,
request id, client address."""


def _fields(entry: AccessEntry) -> dict[str, Any]:
    """An access line's fields: what a JSON line adds, and the text message's arguments."""
    _, method, path, status, elapsed, request_id, remote_addr = entry
    return {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "request_id": request_id,
        "remote_addr": remote_addr,
    }


def _text_access_line(entry: AccessEntry, pid: int, level: str) -> str:
    """What TextFormatter makes of the access record for this entry."""
    message = ACCESS_FORMAT % tuple(_fields(entry).values())
    return _text_line(_utc_time(entry[0]), pid, level, ACCESS, message)


def _json_access_line(entry: AccessEntry, pid: int, level: str) -> str:
    """What JsonFormatter makes of the access record for this entry."""
    fields = _fields(entry)
    message = ACCESS_FORMAT % tuple(fields.values())
    document = _document(_utc_time(entry[0]), level, ACCESS, pid, message)
    document.update(fields)
    return _json_line(document)


_LineMaker = Callable[[AccessEntry, int, str], str]
_LINES: Final[dict[type[logging.Formatter], _LineMaker]] = {
    TextFormatter: _text_access_line,
    JsonFormatter: _json_access_line,
}


def _line_maker(handler: logging.Handler) -> _LineMaker | None:
    """How the access lines of a handler with TextFormatter or JsonFormatter are made
    without a record; None for any other formatter."""
    return None if handler.formatter is None else _LINES.get(type(handler.formatter))


BATCH_EVERY: Final = 0.1


# Hand-written, not logging's QueueHandler and QueueListener: the project takes a library
# unless a benchmark shows the difference, and this one did. With a LogRecord per request
# (formatted and written in batches by the listener) flagserve served 83.5-95.1% of the
# requests a second it served with `note_access` returning at once; with this hand-off
# 93.6-107.0% at 0.98-1.02x the CPU per request, and 98-109% of the logging way's requests
# a second at 0.87-0.96x its CPU per request (flat map, one flag, 304, OFREP; medians of 3
# runs of `python bench/serve_bench.py --rounds 5 --against DIR`, DIR a worktree of the
# logging way, 55f2532, or of this code with `note_access` returning at once; a loaded
# 2-core machine, runs 15-25% apart; docs/benchmarks.md).
class _AccessWriter:
    """A worker's queue of access entries and the thread that makes their lines and writes
    them out in batches: woken by the first entry, it waits BATCH_EVERY (or until it is
    told to stop) so that the entries of the requests answered meanwhile come with it, and
    writes each handler's lines of the batch in one write. One wake-up and one write per
    batch, not per request: each is a GIL hand-off the request threads wait for."""

    def __init__(self, handlers: list[tuple[logging.StreamHandler[Any], _LineMaker]]) -> None:
        self.entries: queue.SimpleQueue[AccessEntry | None] = queue.SimpleQueue()
        self._handlers = handlers
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="flagserve-access-log", daemon=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            first = self.entries.get()  # idle until a request is answered (or a stop)
            self._stopping.wait(BATCH_EVERY)
            try:
                self.write([first, *self._take()])
            except Exception:  # a bad batch is lost, not the thread with every later one
                log.exception("access lines lost")

    def _take(self) -> list[AccessEntry | None]:
        taken: list[AccessEntry | None] = []
        with contextlib.suppress(queue.Empty):
            while True:
                taken.append(self.entries.get_nowait())
        return taken

    def write(self, batch: list[AccessEntry | None]) -> None:
        entries = [entry for entry in batch if entry is not None]  # None: the stop's wake-up
        if not entries or not access_log.isEnabledFor(logging.INFO):
            return
        pid, level = os.getpid(), logging.getLevelName(logging.INFO)
        for handler, line in self._handlers:
            if handler.level > logging.INFO:
                continue
            text = "".join([line(entry, pid, level) + handler.terminator for entry in entries])
            handler.acquire()  # once per batch: a record logged directly may share the stream
            try:
                with contextlib.suppress(OSError, ValueError):  # a closed stream loses lines only
                    handler.stream.write(text)
                    handler.flush()
            finally:
                handler.release()

    def stop(self) -> None:
        """Wake the thread, let it write what it holds and end, then write what came after."""
        self._stopping.set()
        self.entries.put(None)
        self.thread.join(timeout=5)
        self.write(self._take())


_writer: _AccessWriter | None = None


def hand_off_access_log() -> threading.Thread | None:
    """In a worker: access entries go to a queue that one thread makes lines of and writes
    out in batches, so that a request thread only puts a tuple on the queue. None when there
    is nothing to hand off (no stream handler, or one whose formatter is not TextFormatter
    or JsonFormatter: then lines go through `logging` as they come), or it is done already."""
    global _writer  # noqa: PLW0603 - one writer per worker process
    handlers = [
        (handler, _line_maker(handler))
        for handler in access_log.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    known = [(handler, line) for handler, line in handlers if line is not None]
    if not handlers or len(known) < len(handlers) or _writer is not None:
        return None
    _writer = _AccessWriter(known)
    _writer.thread.start()
    return _writer.thread


def write_out_access_log() -> None:
    """In a worker that is exiting: the writer thread writes every line queued so far and
    ends (it is a daemon, which would end with the process whatever it holds), and later
    access lines go through `logging` as they come."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        writer.stop()


def note_access(req: falcon.Request, resp: falcon.Response, elapsed: float) -> None:
    """An observer (server.exchange.Exchange): one access line for an answered request. With
    a writer thread the request thread only queues a tuple; the line is made and written
    there."""
    entry = (
        time.time(),
        req.method,
        req.path,
        resp.status_code,
        elapsed,
        req.context.get("request_id"),  # as server.exchange.Exchange answered
        req.remote_addr,
    )
    writer = _writer
    if writer is not None:
        writer.entries.put(entry)
    elif access_log.isEnabledFor(logging.INFO):  # no writer: tests, or not in a worker
        fields = _fields(entry)
        record = access_log.makeRecord(
            ACCESS, logging.INFO, __file__, 0, ACCESS_FORMAT, tuple(fields.values()), None
        )
        record.fields = fields
        access_log.handle(record)
