"""gitflags server (`flagserve`): serves a build of flagc read-only, under gunicorn.

`app` wires the routes to `resources/` and `dashboard/`, which only look answers up in the
`store` (the current build, a `core.snapshot.Snapshot`, reloaded when OUT changes), read
their query with `params` and answer with `send` (ETag, 304, gzip); `exchange` is the
middleware every request passes through (request id, security headers, logs and metrics);
`auth` and `access` decide who may ask, from what each routed resource declares; `worker`
is the gunicorn worker that never waits on a client (`reading` says when a request is
whole); `gunicorn_conf`, `wsgi` and `cli` run it. See docs/serving.md and docs/architecture.md.
"""
