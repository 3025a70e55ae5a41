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
import os
import queue
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Final

import falcon

ACCESS: Final = "flagserve.access"
REQUEST_ID: Final = "X-Request-ID"
_STARTED: Final = "access_log_started"
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
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _escape(text: str) -> str:
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


def _handler(stream: str) -> dict[str, str]:
    return {"class": "logging.StreamHandler", "formatter": "flagserve", "stream": stream}


_lines: queue.SimpleQueue[tuple[float, dict[str, Any]]] | None = None


def hand_off_access_log() -> threading.Thread | None:
    """In a worker: access lines go to a queue that one thread formats and writes out in
    batches, so a request only enqueues a tuple. Building a LogRecord and taking the
    stream's lock per request cost more than the request itself (and 8 threads queued on
    that lock). The lines are those the configured formatter would write."""
    global _lines  # noqa: PLW0603 - one writer per worker process
    handlers = [h for h in access_log.handlers if isinstance(h, logging.StreamHandler)]
    if not handlers or _lines is not None:
        return None
    lines: queue.SimpleQueue[tuple[float, dict[str, Any]]] = queue.SimpleQueue()
    writer = threading.Thread(
        target=_write_lines, args=(lines, handlers), name="flagserve-access-log", daemon=True
    )
    writer.start()
    _lines = lines
    return writer


def _write_lines(
    lines: queue.SimpleQueue[tuple[float, dict[str, Any]]],
    handlers: list[logging.StreamHandler[Any]],
) -> None:
    pid = os.getpid()
    while True:
        batch = [lines.get()]
        with contextlib.suppress(queue.Empty):
            while len(batch) < 32:  # small batches: the writer holds the GIL briefly
                batch.append(lines.get_nowait())
        for handler in handlers:
            json_lines = isinstance(handler.formatter, JsonFormatter)
            text = "".join(_line(created, fields, pid, json_lines) for created, fields in batch)
            with contextlib.suppress(OSError, ValueError):  # a closed stream loses lines only
                handler.stream.write(text)
                handler.flush()


def _line(created: float, fields: dict[str, Any], pid: int, json_lines: bool) -> str:
    """What TextFormatter or JsonFormatter writes for an access record."""
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    message = _ACCESS_FORMAT % tuple(fields.values())
    if not json_lines:
        return f"{stamp} [{pid}] INFO {ACCESS}: {_escape(message)}\n"
    document = {"time": stamp, "level": "info", "logger": ACCESS, "pid": pid, "message": message}
    document.update(fields)
    return json.dumps(document, ensure_ascii=False, default=str) + "\n"


_ACCESS_FORMAT: Final = "%s %s %s %.3fms request_id=%s remote=%s"


class AccessLog:
    """Falcon middleware: one access line per request. First in the middleware list, so
    that it sees the response last (with its status and request id)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        setattr(req.context, _STARTED, time.perf_counter())

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        started: float = getattr(req.context, _STARTED, time.perf_counter())
        fields = {
            "method": req.method,
            "path": req.path,
            "status": resp.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "request_id": request_id(req, resp),
            "remote_addr": req.remote_addr,
        }
        if _lines is not None:
            _lines.put((time.time(), fields))
        else:  # no writer thread (tests, or a process gunicorn did not start)
            access_log.info(_ACCESS_FORMAT, *fields.values(), extra={"fields": fields})


def request_id(req: falcon.Request, resp: falcon.Response) -> str | None:
    """The response's X-Request-ID; else the request's (as the respond middleware keeps it)."""
    found = resp.get_header(REQUEST_ID) or getattr(req.context, "request_id", None)
    return str(found) if found else None
