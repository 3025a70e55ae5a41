"""Logging: one access line per request, and every log line (gunicorn's too) as text or as
one JSON object (FLAGSERVE_LOG_FORMAT).

Access lines go to stdout through the `flagserve.access` logger, everything else to
stderr. An access line has the method, the path (never the query string, nor any header:
an API key is never logged), the status, the duration in milliseconds, the request id
(X-Request-ID as the response carries it) and the client's address. In JSON every line is an
object with `time`, `level`, `logger`, `pid` and `message`, and access lines add their fields.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import re
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


def hand_off_access_log() -> logging.handlers.QueueListener | None:
    """In a worker: access lines are handed to a queue that one thread writes out, so that
    request threads never wait on the stream's lock (with 8 threads they did, a lot)."""
    logger = logging.getLogger(ACCESS)
    handlers = [h for h in logger.handlers if not isinstance(h, logging.handlers.QueueHandler)]
    if not handlers:
        return None
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(lines, *handlers, respect_handler_level=True)
    logger.handlers = [logging.handlers.QueueHandler(lines)]
    listener.start()
    atexit.register(listener.stop)  # write what is queued before the worker exits
    # What no line here shows: the caller's frame (the logging HOWTO's optimisation), thread
    # and process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    return listener


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
        access_log.info(
            "%s %s %s %.3fms request_id=%s remote=%s",
            *fields.values(),
            extra={"fields": fields},
        )


def request_id(req: falcon.Request, resp: falcon.Response) -> str | None:
    """The response's X-Request-ID; else the request's (as the respond middleware keeps it)."""
    found = resp.get_header(REQUEST_ID) or getattr(req.context, "request_id", None)
    return str(found) if found else None
