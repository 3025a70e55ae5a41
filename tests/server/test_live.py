"""Real gunicorn processes started the ways operators start them (`flagserve` with options,
plain gunicorn with FLAGSERVE_* variables), and what their logs say. The helpers that start
them are in tests.server.helpers."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from server.auth import digest
from server.logs import JsonFormatter, TextFormatter
from server.logs import config as logs_config
from tests.server.conftest import Built, free_ports
from tests.server.helpers import (
    BANNER_ON,
    FLAT,
    GUNICORN,
    SECRET,
    access_lines,
    check_configured,
    evaluate,
    json_lines,
    keys_file,
    running,
    wait_until,
)


def test_a_stopping_server_writes_every_access_line(built: Built, tmp_path: Path) -> None:
    """A worker's access lines are written by a thread (logs.hand_off_access_log); it
    writes what is still queued as the worker exits, so the last requests before a stop
    are in the log."""
    log = tmp_path / "flagserve.log"
    with running([str(built.out)], log, {"FLAGSERVE_LOG_FORMAT": "json"}) as live:
        ids = [f"last-{number}" for number in range(40)]
        for request_id in ids:
            assert live.get(FLAT, headers={"X-Request-ID": request_id}).status_code == 200
        os.killpg(live.process.pid, signal.SIGTERM)  # at once: lines still queued
        live.process.wait(timeout=30)
    logged = {line["request_id"] for line in access_lines(log)}
    assert set(ids) <= logged


def test_json_logs_carry_the_request_id_and_never_the_key(built: Built, tmp_path: Path) -> None:
    keys = keys_file(tmp_path / "keys.yaml")
    log = tmp_path / "flagserve.log"
    env = {"FLAGSERVE_LOG_FORMAT": "json", "FLAGSERVE_API_KEYS": str(keys)}
    with running([str(built.out)], log, env) as live:
        auth = {"Authorization": f"Bearer {SECRET}"}
        ok = live.get(FLAT, headers={**auth, "X-Request-ID": "req-1"})
        denied = live.get(
            FLAT, headers={"Authorization": "Bearer wrong-key", "X-Request-ID": "req-2"}
        )
        ofrep = live.post(
            "/ofrep/v1/evaluate/flags/banner",
            json={"context": {"environment": "development"}},
            headers={"X-API-Key": SECRET, "X-Request-ID": "req-3"},
        )
        assert (ok.status_code, denied.status_code, ofrep.status_code) == (200, 401, 200)
        generated = live.get("/healthz").headers["X-Request-ID"]
        wait_until(lambda: log.read_text().count('"flagserve.access"') >= 4, what="4 lines")
    lines = json_lines(log)
    access = {line["request_id"]: line for line in access_lines(log)}
    assert access["req-1"]["method"] == "GET"
    assert access["req-1"]["path"] == FLAT
    assert access["req-1"]["status"] == 200
    assert access["req-1"]["duration_ms"] >= 0
    assert access["req-2"]["status"] == 401
    assert access["req-3"]["path"] == "/ofrep/v1/evaluate/flags/banner"
    assert access[generated]["path"] == "/healthz"
    assert {line["level"] for line in lines} <= {"info", "warning", "error"}
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # gunicorn's own, as JSON
    text = log.read_text()
    assert SECRET not in text
    assert "wrong-key" not in text
    assert digest(SECRET.encode()) not in text


def test_text_logs_one_line_per_request(built: Built, tmp_path: Path) -> None:
    log = tmp_path / "flagserve.log"
    with running([str(built.out)], log) as live:
        live.get(FLAT, headers={"X-Request-ID": "text-1"})
        live.get("/no/such/thing%0Aforged", headers={"X-Request-ID": "text-2"})
        wait_until(lambda: "text-2" in log.read_text(), what="the access lines")
    text = log.read_text()
    [line] = [line for line in text.splitlines() if "request_id=text-1" in line]
    assert f"flagserve.access: GET {FLAT} 200 " in line
    assert "ms request_id=text-1 remote=127.0.0.1" in line
    [forged] = [line for line in text.splitlines() if "request_id=text-2" in line]
    assert "/no/such/thing\\x0aforged 404" in forged  # a control character cannot split a line


def test_plain_gunicorn_reads_every_variable(built: Built, tmp_path: Path) -> None:
    """`gunicorn -c python:server.gunicorn_conf server.wsgi:app`, configured only by the
    environment: every FLAGSERVE_* variable takes effect."""
    port, metrics_port = free_ports()
    log = tmp_path / "gunicorn.log"
    env = {
        "FLAGSERVE_DIR": str(built.out),
        "FLAGSERVE_BIND": f"127.0.0.1:{port}",
        "FLAGSERVE_WORKERS": "3",
        "FLAGSERVE_THREADS": "5",
        "FLAGSERVE_LOG_FORMAT": "json",
        "FLAGSERVE_API_KEYS": str(keys_file(tmp_path / "keys.yaml")),
        "FLAGSERVE_DEFAULT_ENVIRONMENT": "development",
        "FLAGSERVE_METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "FLAGSERVE_RELOAD_INTERVAL": "0.3",
    }
    with running([], log, env, port=port, command=GUNICORN) as live:
        check_configured(live, metrics_port, workers_expected=3, threads_expected=5)
        built.commit("Turn the banner on everywhere", {"growth/banner.yaml": BANNER_ON})
        wait_until(
            lambda: evaluate(live, "banner", {"environment": "production"}) is True,
            timeout=5,
            what="the new build, polled every 0.3 s",
        )


def _record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("flagserve.access", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_text_and_json_formatters() -> None:
    text = TextFormatter().format(_record("GET /a\nb 200"))
    assert text.endswith("INFO flagserve.access: GET /a\\x0ab 200")
    assert "\n" not in text
    line = json.loads(JsonFormatter().format(_record("hello", fields={"status": 200})))
    assert line["message"] == "hello"
    assert line["status"] == 200
    assert line["level"] == "info"
    assert line["pid"] == os.getpid()
    try:
        raise ValueError("boom")
    except ValueError:
        failed = _record("failed", exc_info=sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]
    assert "ValueError: boom" in TextFormatter().format(failed)
    assert logs_config("json")["formatters"]["flagserve"]["()"] == "server.logs.JsonFormatter"
