"""Prometheus metrics, correct under several gunicorn workers.

Every worker is a process with its own counters, so prometheus_client runs in multiprocess
mode: `server.gunicorn_conf` points PROMETHEUS_MULTIPROC_DIR at a fresh temporary directory
in the master, before this module is first imported (the mode is chosen at import), each
worker writes its values to memory-mapped files there, a scrape sums them over the files
(`MultiProcessCollector`), and the master forgets a dead worker's gauges (`child_exit`).
Outside gunicorn (tests, a single process) the ordinary registry is used.

What is measured, per worker and summed:

- `flagserve_requests_total{method,route,status}` and
  `flagserve_request_duration_seconds{method,route,status}`, where `route` is the route
  template (`/api/v1/flags/{key}`), never the raw path, and `unmatched` for no route;
- `flagserve_snapshot_info{revision,digest}`: 1 for each build a live worker serves, 0 for
  builds it has served before (so that a rollout shows as two revisions for a while);
- `flagserve_snapshot_loaded_timestamp_seconds` (the newest among live workers) and
  `flagserve_snapshot_load_seconds` (how long loading and checking it took);
- `flagserve_reloads_total{result="success"|"failure"}`: builds swapped in or refused;
- `flagserve_next_step_timestamp_seconds`: when a scheduled step next changes what is
  served (Unix time), NaN when no step is ahead (the value of the worker that set it last),
  and `flagserve_steps_applied_total`: steps taken in without a new build (server.store);
- `flagserve_event_streams` (OFREP event streams open) and `flagserve_stream_events_total`
  (events sent on them), kept by each worker's event loop (server.worker).

The master does not record: it only polls the build for the workers it forks, and counting
its reloads too would count every build once more than there are workers.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Final

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_wsgi_server,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from server.store import Store

MULTIPROC_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
UNMATCHED: Final = "unmatched"
METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

REQUESTS = Counter(
    "flagserve_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "flagserve_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
SNAPSHOT = Gauge(
    "flagserve_snapshot_info",
    "The build being served: 1 for the revision a live worker serves, 0 for earlier ones",
    ["revision", "digest"],
    multiprocess_mode="livemax",
)
LOADED_AT = Gauge(
    "flagserve_snapshot_loaded_timestamp_seconds",
    "When the build being served was loaded (Unix time; the newest among workers)",
    multiprocess_mode="livemax",
)
LOAD_TIME = Gauge(
    "flagserve_snapshot_load_seconds",
    "Time it took to read and check the build being served (the longest among workers)",
    multiprocess_mode="livemax",
)
RELOADS = Counter(
    "flagserve_reloads",
    "Builds swapped in (success) or refused, the old one kept serving (failure)",
    ["result"],
)
NEXT_STEP = Gauge(
    "flagserve_next_step_timestamp_seconds",
    "When a scheduled step next changes what is served (Unix time); NaN: no step ahead",
    multiprocess_mode="livemostrecent",  # NaN compares with nothing: no min or max of it
)
STEPS = Counter(
    "flagserve_steps_applied",
    "Scheduled steps taken in without a new build, each counted once per worker",
)
STREAMS = Gauge(
    "flagserve_event_streams",
    "OFREP event streams held open (server.streams)",
    multiprocess_mode="livesum",
)
STREAM_EVENTS = Counter(
    "flagserve_stream_events",
    "refetchEvaluation events sent on OFREP event streams",
)


def exposition() -> bytes:
    """The text a scrape gets: summed over every worker's files in multiprocess mode."""
    flush()
    if os.environ.get(MULTIPROC_DIR):
        return generate_latest(multiprocess_registry())
    return generate_latest(REGISTRY)


def multiprocess_registry() -> CollectorRegistry:
    """A registry that reads every process's files at each collection."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def serve(bind: str) -> Callable[[], None]:
    """Serve the workers' metrics on `bind` (HOST:PORT) from this process, in a thread:
    the master's, for --metrics-bind. OSError when the address cannot be bound. Returns
    what closes the listening socket, for a forked child (which has no such thread)."""
    host, _, port = bind.rpartition(":")
    server, _thread = start_wsgi_server(
        int(port), host.strip("[]"), registry=multiprocess_registry()
    )
    return server.socket.close


def forget(pid: int) -> None:
    """After a worker exits: drop its live gauges (its counters still count)."""
    mark_process_dead(pid)  # type: ignore[no-untyped-call]


def observe(store: Store) -> None:
    """Publish the build `store` serves and its next step, and count its reloads and steps
    (once per worker process)."""
    served: list[tuple[str, str]] = []

    def publish() -> None:
        snapshot = store.current
        labels = (snapshot.revision, snapshot.digest)
        for earlier in served:
            if earlier != labels:
                SNAPSHOT.labels(*earlier).set(0)
        SNAPSHOT.labels(*labels).set(1)
        served[:] = [labels]
        LOADED_AT.set(snapshot.loaded_at)
        LOAD_TIME.set(store.last_load_seconds)
        publish_step()

    def publish_step() -> None:
        step = store.next_step
        NEXT_STEP.set(math.nan if step is None else step)

    def listener(swapped: bool, error: str | None) -> None:
        RELOADS.labels("success" if swapped else "failure").inc()
        if swapped:
            publish()

    def stepped() -> None:
        STEPS.inc()
        publish_step()

    for result in ("success", "failure"):
        RELOADS.labels(result)  # present, at 0, from the start
    publish()
    store.listeners.append(listener)
    store.step_listeners.append(stepped)


def note_request(req: falcon.Request, resp: falcon.Response, elapsed: float) -> None:
    """An observer (server.exchange.Exchange): count and time a request by route template
    and status.

    A request only notes its duration; the counters and the histogram (each update a write
    to a shared memory-mapped file, under a lock) are updated in batches by `flush`, which
    runs before every scrape this process answers and every FLUSH_EVERY seconds in a
    worker (so a scrape answered by another process may lag by that much)."""
    method = req.method if req.method in METHODS else "other"  # bounded label values
    labels = (method, req.uri_template or UNMATCHED, str(resp.status_code))
    with _PENDING_LOCK:
        _pending.setdefault(labels, []).append(elapsed)


FLUSH_EVERY: Final = 1.0
Labels = tuple[str, str, str]
_pending: dict[Labels, list[float]] = {}
_PENDING_LOCK = threading.Lock()


def flush() -> None:
    """Record the requests noted since the last flush: one count per label set, and each
    duration observed (prometheus_client has no public way to observe many at once; one
    `observe` is 2.8 us in multiprocess mode, here in this thread instead of a request's)."""
    global _pending
    with _PENDING_LOCK:
        noted, _pending = _pending, {}
    for labels, durations in noted.items():
        REQUESTS.labels(*labels).inc(len(durations))
        latency = LATENCY.labels(*labels)
        for duration in durations:
            latency.observe(duration)


def start_flushing() -> threading.Thread:
    """In a worker: flush every FLUSH_EVERY seconds, and once more when it exits."""

    def loop() -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            flush()

    atexit.register(flush)
    thread = threading.Thread(target=loop, name="flagserve-metrics", daemon=True)
    thread.start()
    return thread
