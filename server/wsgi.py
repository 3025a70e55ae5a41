"""The WSGI entry point for gunicorn: `server.wsgi:app`, configured by FLAGSERVE_*.

Asking it for `app` starts the service: it loads the build (and the API keys file, when
there is one), and exits with status 2 and a message saying what is wrong when it cannot,
so that gunicorn, which loads it in the master (`preload_app`), never starts workers
without a good build.

Never a bad snapshot, not even in a fresh worker. The master loads the build before it
forks, keeps polling the directory (the workers notice each build as it lands, the master
only polls: `Store.poll_only`), and reloads it once more just before each fork (`pre_fork`
in server.gunicorn_conf, which covers SIGHUP's new workers and the replacement of a worker
that died), as it stands then (`Store.advance`: the step that is current). Each load is
checked in full and refused when it is broken, so what the master holds is always the
newest good build it has seen; a forked worker inherits it in memory and starts serving it
at once, whatever is on disk then. This needs no state outside the process and no
re-reading of files that may be broken at that moment: copy-on-write gives every worker the
snapshot already parsed. fork() keeps only the forking thread, so a worker gets a new store
lock (one the master's poller held at that instant would stay locked), its own poller and
its own step thread (`Service.worker_started`).
"""

from __future__ import annotations

import functools
import gc
import logging
import sys
from dataclasses import dataclass
from typing import Any

import falcon

from core.snapshot import SnapshotError
from server import dashboard, logs, metrics
from server.app import create_app
from server.auth import AccessControl, KeyFileError, load_keys
from server.settings import Settings, SettingsError
from server.store import Store
from server.streams import Tokens

log = logging.getLogger("flagserve")


@dataclass
class Service:
    """What one flagserve process holds: its settings, the store and the application."""

    settings: Settings
    store: Store
    access: AccessControl | None  # None when access control is off
    app: falcon.App[falcon.Request, falcon.Response]

    def before_fork(self) -> None:
        """In the master, before it forks a worker: take in the newest good build, as it
        stands now (the master makes no step's view ahead: `Store.poll_only`)."""
        self.store.reload()
        self.store.advance()

    def reread_keys(self) -> None:
        """In the master, on SIGHUP (before new workers start): the API keys file again.
        A file that has become bad is refused, logged, and the keys in use are kept."""
        if self.settings.api_keys is None or self.access is None:
            return
        try:
            keys = load_keys(self.settings.api_keys)
        except KeyFileError as exc:
            log.error("kept the API keys in use: %s", exc)
            return
        self.access.use(keys)
        log.info("read %d API keys from %s", len(keys), self.settings.api_keys)

    def worker_started(self) -> None:
        """In a worker, once forked: a lock and a poller of its own, and its metrics."""
        self.store.after_fork()
        freeze_heap()
        self.store.listeners.append(_freeze_after_swap)
        self.store.step_listeners.append(freeze_heap)
        logs.hand_off_access_log()
        metrics.observe(self.store)
        metrics.start_flushing()
        self.store.watch(self.settings.reload_interval, notify=self.settings.reload_notify)


def freeze_heap() -> None:
    """Take what lives now (mostly the snapshot: millions of objects that never form garbage
    cycles) out of the cyclic collector's sight, so that its full collections stop walking
    it; in a worker at start and after each swap. Refcounting still frees an old snapshot."""
    gc.collect()
    gc.freeze()


def _freeze_after_swap(swapped: bool, error: str | None) -> None:
    if swapped:
        freeze_heap()


def build(settings: Settings) -> Service:
    """Load the build and the keys (SnapshotError, KeyFileError, SettingsError say what
    is wrong), wire the application and start polling the build directory."""
    store = Store(settings.directory)
    store.start()
    keys = load_keys(settings.api_keys) if settings.api_keys is not None else None
    default = settings.default_environment
    if default is not None and default not in store.current.environments:
        raise SettingsError(
            f"FLAGSERVE_DEFAULT_ENVIRONMENT: {default!r} is not an environment of the build "
            f"({', '.join(store.current.environments)})"
        )
    try:
        tokens = Tokens.from_file(settings.stream_secret)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"FLAGSERVE_STREAM_SECRET_FILE: {exc}") from None
    # Without keys there is nothing to check: resources read no scope as "everything".
    access = AccessControl(keys, tokens) if keys is not None else None
    app = create_app(
        store,
        observers=[logs.note_access, metrics.note_request],
        middleware=[access] if access is not None else [],
        default_environment=default,
        metrics_route=settings.metrics_bind is None,
        links=dashboard.SourceLinks(settings.repository_url, settings.flags_path),
        tokens=tokens,
        keepalive=settings.stream_keepalive,
    )
    store.watch(settings.reload_interval, notify=settings.reload_notify)
    return Service(settings, store, access, app)


def get_app(settings: Settings | None = None) -> falcon.App[falcon.Request, falcon.Response]:
    return build(settings or Settings.from_env()).app


@functools.cache
def started() -> Service:
    """The service of this process, started on first use (by gunicorn's `server.wsgi:app`):
    a start-up that fails prints why and exits with status 2."""
    try:
        return build(Settings.from_env())
    except (SettingsError, SnapshotError, KeyFileError) as exc:
        print(f"flagserve: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def __getattr__(name: str) -> Any:
    """`app` and `service`, made when first asked for, so that importing this module (in
    tests, say) starts nothing."""
    if name == "app":
        return started().app
    if name == "service":
        return started()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
