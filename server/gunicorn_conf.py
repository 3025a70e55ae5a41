"""gunicorn settings from FLAGSERVE_*: `gunicorn -c python:server.gunicorn_conf server.wsgi:app`.

gthread workers keep connections alive, which is what services polling flags do.
"""

from __future__ import annotations

from server.settings import Settings

_settings = Settings.from_env()

bind = [_settings.bind]
workers = _settings.workers
threads = _settings.threads
worker_class = "gthread"
keepalive = 5
graceful_timeout = 10
accesslog = "-"
errorlog = "-"
