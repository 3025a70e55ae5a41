"""gunicorn settings from FLAGSERVE_*: `gunicorn -c python:server.gunicorn_conf server.wsgi:app`
(what `flagserve` runs, after turning its options into those variables).

- gthread workers keep connections alive, which is what services polling flags do; the
  workers share the connections out evenly (server.worker: the master gives each worker a
  slot on a shared board in `pre_fork` and frees it in `child_exit`).
- `preload_app`: the application, and so the build, is loaded in the master. A bad build
  or keys file stops the master with a message and status 2 before any worker starts, and
  every worker is forked with the newest good build the master holds (see server.wsgi):
  the master polls the build directory too, and reloads it in `pre_fork`.
- SIGHUP: gunicorn replaces the workers gracefully; the new ones get the newest good build
  (`pre_fork`) and the API keys file read again (`on_reload`; a bad one is logged and the
  keys in use are kept).
- Metrics: PROMETHEUS_MULTIPROC_DIR is set here, in the master, to a fresh temporary
  directory (under TMPDIR), before prometheus_client is imported and before any worker
  starts; `child_exit` forgets a dead worker's gauges, and the master removes the directory
  when it exits.
- FLAGSERVE_METRICS_BIND: the master serves /metrics on that address itself, with
  prometheus_client's own HTTP server in a thread, and the API port has no /metrics. The
  master reads the workers' files, so a scrape works even when every worker is busy or
  being replaced, and the API's port cannot be used to reach it.
- No gunicorn control socket: flagserve needs none, and its default path is shared by
  every gunicorn of the user.
"""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.process import raise_file_limit
from server import logs
from server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from server.wsgi import Service


def _read_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"flagserve: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


_settings = _read_settings()
_metrics_dir = Path(tempfile.mkdtemp(prefix="flagserve-metrics-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
_master = os.getpid()


@atexit.register
def _remove_metrics_dir() -> None:
    """When the master exits, however it exits (a failed start too); not when a worker does
    (forked workers inherit this handler)."""
    if os.getpid() == _master:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


from server import metrics, sync  # noqa: E402  (prometheus_client reads the variable on import)
from server import worker as balance  # noqa: E402

bind = [_settings.bind]
workers = _settings.workers
threads = _settings.threads
# gthread, with the connections shared out evenly between workers (server.worker). Not
# `reuse_port` (a socket per worker, the kernel spreading connections over them): it also
# ends the accept race that can hand one worker most of a burst of connections, but the
# connections waiting in a replaced worker's socket are reset (tried: SIGHUP under load
# then failed requests).
# Each request is read in the worker's event loop and reaches a thread only when whole, so
# slow or silent clients hold a buffer each, not a thread (server.worker). They still hold a
# connection and a file descriptor: a worker holds up to `worker_connections` (gthread stops
# accepting beyond), and the file limit is raised to fit (`_raise_file_limit`).
worker_class = "server.worker.NonBlockingWorker"
worker_connections = 10_000
balance.HEADER_TIMEOUT = _settings.header_timeout
balance.WRITE_TIMEOUT = _settings.write_timeout
keepalive = 5
graceful_timeout = 10
preload_app = True
accesslog = None  # server.logs writes the access log, with the request id
logger_class = logs.GunicornLogger
errorlog = "-"
logconfig_dict = logs.config(_settings.log_format)
control_socket_disable = True

_close_in_workers: list[Callable[[], None]] = []


def _service() -> Service | None:
    """The service of server.wsgi, when that is the application and it is loaded here."""
    module = sys.modules.get("server.wsgi")
    if module is None or module.started.cache_info().currsize == 0:
        return None
    found: Service = module.started()
    return found


def on_starting(server: Any) -> None:
    _require_free_bind(_settings.bind)
    _raise_file_limit(server, worker_connections + 256)  # a limit per process
    _start_sync(server)
    if _settings.metrics_bind is None:
        return
    try:
        _close_in_workers.append(metrics.serve(_settings.metrics_bind))
    except OSError as exc:
        message = f"flagserve: error: cannot serve /metrics on {_settings.metrics_bind}: {exc}"
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    server.log.info("Serving /metrics on %s (master)", _settings.metrics_bind)


_sync_process: list[sync.Supervised] = []  # flagd sync's, when FLAGSERVE_SYNC_BIND is set


def _start_sync(server: Any) -> None:
    """flagd's sync protocol, in a process of its own (server.sync), before any worker."""
    if _settings.sync_bind is None:
        return
    try:
        _sync_process.append(sync.Supervised(_settings))
    except OSError as exc:
        print(f"flagserve: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    server.log.info("Serving flagd sync on %s", _settings.sync_bind)


def on_exit(server: Any) -> None:
    for child in _sync_process:
        child.stop()


def _require_free_bind(bind: str) -> None:
    """An address another program holds: one message and exit status 2 at once, rather
    than gunicorn's five attempts a second apart and its own exit status. Not when the
    socket is handed over (a re-executed master, systemd): it is ours and bound already."""
    if "GUNICORN_FD" in os.environ or "LISTEN_FDS" in os.environ:
        return
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, int(port)))
    except OSError as exc:
        print(f"flagserve: error: cannot listen on {bind}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _raise_file_limit(server: Any, wanted: int) -> None:
    """The soft limit on open files up to `wanted` (at most the hard limit), in the master:
    the workers inherit it, and each counts its own files against it. Debian's default soft
    limit, 1,024, would cap a worker's connections far below `worker_connections`."""
    limit = raise_file_limit(wanted)
    if limit != resource.RLIM_INFINITY and limit < wanted:
        server.log.warning(
            "flagserve: at most %d open files (hard limit): fewer connections than %d",
            limit,
            wanted,
        )


def when_ready(server: Any) -> None:
    """One line saying what runs, from gunicorn's effective configuration; the master only
    polls from here on (`Store.poll_only`)."""
    service = _service()
    if service is None:
        return
    service.store.poll_only()  # the workers notice builds as they land; the master polls
    cfg, settings = server.cfg, _settings
    server.log.info(
        "flagserve: serving %s on %s with %d workers x %d threads; API keys: %s; "
        "/metrics: %s; reload %severy %gs and on SIGHUP; log format %s",
        settings.directory,
        ", ".join(cfg.bind),
        cfg.workers,
        cfg.threads,
        settings.api_keys or "off",
        settings.metrics_bind or "on the API's port",
        "as each build lands (inotify) and " if settings.reload_notify else "",
        settings.reload_interval,
        settings.log_format,
    )


def on_reload(server: Any) -> None:
    for child in _sync_process:  # it re-reads the API keys too
        child.forward(signal.SIGHUP)
    service = _service()
    if service is not None:
        service.reread_keys()


def pre_fork(server: Any, worker: Any) -> None:
    balance.take_slot(worker, server.WORKERS.values())
    service = _service()
    if service is None:
        return
    try:
        service.before_fork()
    except Exception:  # the master must keep running: the worker gets the build it has
        server.log.exception("reloading the build before forking a worker failed")


def post_fork(server: Any, worker: Any) -> None:
    for close in _close_in_workers:  # the master's sockets, not the worker's business
        close()


def post_worker_init(worker: Any) -> None:
    service = _service()
    if service is not None:
        service.worker_started()


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, as it exits: its last access lines are written, not lost."""
    logs.write_out_access_log()


def child_exit(server: Any, worker: Any) -> None:
    balance.free_slot(worker)
    metrics.forget(worker.pid)
