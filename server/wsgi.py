"""The WSGI entry point for gunicorn: `server.wsgi:app`, configured by FLAGSERVE_*."""

from __future__ import annotations

import falcon

from server.app import create_app
from server.settings import Settings
from server.store import Store


def get_app(settings: Settings | None = None) -> falcon.App[falcon.Request, falcon.Response]:
    """Read the settings once, load the build (SnapshotError if there is no good one) and
    watch its directory for new builds."""
    settings = settings or Settings.from_env()
    store = Store(settings.directory)
    store.start()
    store.watch(settings.reload_interval)
    return create_app(store)


app = get_app()
