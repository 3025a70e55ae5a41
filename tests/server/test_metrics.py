"""Metrics: route templates and statuses, the snapshot served and its reloads, in one
process, and summed over the workers of a real gunicorn."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import falcon
import falcon.testing
import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from server import metrics
from server.app import create_app
from server.store import Store
from tests.server.conftest import Built, Live
from tests.server.helpers import FLAT, access_lines, running, sample, wait_until

FLAT_ROUTE = "/api/v1/environments/{environment}/flags"
BANNER_ON = "description: Free shipping banner\nowner: team-growth\nenabled: true\n"


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")
def test_requests_are_counted_by_route_template_and_status(store: Store) -> None:
    client = falcon.testing.TestClient(create_app(store, observers=[metrics.note_request]))
    cases = [
        ("GET", FLAT, FLAT_ROUTE, "200"),
        ("GET", "/api/v1/environments/qa/flags", FLAT_ROUTE, "404"),
        ("GET", "/api/v1/flags/banner", "/api/v1/flags/{key}", "200"),
        ("GET", "/no/such/path", "unmatched", "404"),
        ("DELETE", FLAT, FLAT_ROUTE, "405"),
    ]
    for method, path, route, status in cases:
        labels = {"method": method, "route": route, "status": status}
        before = sample("flagserve_requests_total", **labels)
        latency = sample("flagserve_request_duration_seconds_count", **labels)
        client.simulate_request(method, path)
        assert sample("flagserve_requests_total", **labels) == before + 1, (method, path)
        assert sample("flagserve_request_duration_seconds_count", **labels) == latency + 1
    before = _with_method("other")
    client.simulate_request("BREW", FLAT)  # a label value per made-up method: never
    assert _with_method("other") == before + 1
    assert _with_method("BREW") == 0


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([0.0001, 0.0005], {"0.0005": 2, "0.001": 2, "+Inf": 2}),  # a bound is in its bucket
        ([0.0006, 0.3], {"0.0005": 0, "0.001": 1, "0.25": 1, "0.5": 2, "+Inf": 2}),
        ([7.0], {"1.0": 0, "+Inf": 1}),
    ],
)
def test_a_batch_of_durations_lands_in_the_buckets_it_falls_in(
    durations: list[float], expected: dict[str, float]
) -> None:
    """`flush` records a batch with the histogram's public `observe`: cumulative buckets,
    each counting the durations at most its bound, and their sum."""
    labels = {"method": "PATCH", "route": f"/batch/{durations}", "status": "200"}
    req = falcon.testing.create_req(method="PATCH")
    resp = falcon.Response()
    req.uri_template = labels["route"]
    for duration in durations:
        metrics.note_request(req, resp, duration)
    buckets = {
        bound: sample("flagserve_request_duration_seconds_bucket", **labels, le=bound)
        for bound in expected
    }
    assert buckets == expected
    assert sample("flagserve_request_duration_seconds_sum", **labels) == pytest.approx(
        sum(durations)
    )
    assert sample("flagserve_requests_total", **labels) == len(durations)


def _with_method(method: str) -> float:
    metrics.flush()
    return sum(
        found.value
        for family in REGISTRY.collect()
        if family.name == "flagserve_requests"
        for found in family.samples
        if found.name == "flagserve_requests_total" and found.labels["method"] == method
    )


def test_the_served_snapshot_and_its_reloads(built: Built, store: Store) -> None:
    metrics.observe(store)
    first = store.current
    info = {"revision": first.revision, "digest": first.digest}
    assert sample("flagserve_snapshot_info", **info) == 1
    assert sample("flagserve_snapshot_loaded_timestamp_seconds") == first.loaded_at
    assert sample("flagserve_snapshot_load_seconds") == store.last_load_seconds > 0
    assert math.isnan(sample("flagserve_next_step_timestamp_seconds"))  # a build without steps
    success = sample("flagserve_reloads_total", result="success")
    failure = sample("flagserve_reloads_total", result="failure")

    built.commit("Turn the banner on everywhere", {"growth/banner.yaml": BANNER_ON})
    assert store.reload()
    second = store.current
    assert sample("flagserve_reloads_total", result="success") == success + 1
    assert sample("flagserve_snapshot_info", **info) == 0
    assert sample("flagserve_snapshot_info", revision=second.revision, digest=second.digest) == 1

    (built.out / "snapshot.json").write_text("{", encoding="utf-8")
    assert not store.reload()
    assert sample("flagserve_reloads_total", result="failure") == failure + 1
    assert sample("flagserve_snapshot_info", revision=second.revision, digest=second.digest) == 1


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {
        (found.name, tuple(sorted(found.labels.items()))): found.value
        for family in text_string_to_metric_families(answer.text)
        for found in family.samples
    }


def value(
    scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_add_up_across_two_workers(built: Built, tmp_path: Path) -> None:
    log = tmp_path / "flagserve.log"
    with running([str(built.out), "--log-format", "json"], log, {"FLAGSERVE_WORKERS": "2"}) as live:
        sent = _until_both_workers_answered(live, log)
        ok = {"method": "GET", "route": FLAT_ROUTE, "status": "200"}
        # The worker answering a scrape records its own requests first; the other one
        # records its within metrics.FLUSH_EVERY seconds.
        wait_until(
            lambda: value(scrape(live.url + "/metrics"), "flagserve_requests_total", **ok) == sent,
            what="every worker's requests counted",
        )
        scraped = scrape(live.url + "/metrics")
        assert value(scraped, "flagserve_requests_total", **ok) == sent
        assert value(scraped, "flagserve_request_duration_seconds_count", **ok) == sent
        first = live.get("/readyz").json()["revision"]
        digest = live.get("/api/v1/snapshot").json()["digest"]
        assert value(scraped, "flagserve_snapshot_info", revision=first, digest=digest) == 1
        assert value(scraped, "flagserve_reloads_total", result="success") == 0

        (built.out / "snapshot.json").write_text('{"format": 1', encoding="utf-8")
        wait_until(lambda: reloads(live, "failure") == 2, what="both workers refusing it")
        assert live.get("/readyz").json()["revision"] == first

        built.commit("Turn the banner on everywhere", {"growth/banner.yaml": BANNER_ON})
        wait_until(lambda: reloads(live, "success") == 2, what="both workers taking it")
        scraped = scrape(live.url + "/metrics")
        second = live.get("/readyz").json()["revision"]
        assert second != first
        assert value(scraped, "flagserve_snapshot_info", revision=first, digest=digest) == 0
        assert value(scraped, "flagserve_snapshot_load_seconds") > 0


def reloads(live: Live, result: str) -> float:
    return value(scrape(live.url + "/metrics"), "flagserve_reloads_total", result=result)


def _until_both_workers_answered(live: Live, log: Path) -> int:
    """Send the flat map request from 8 threads, each on a new connection, until both
    workers have answered some; the number sent."""
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            statuses = list(pool.map(lambda _: live.get(FLAT).status_code, range(40)))
            assert statuses == [200] * 40
            sent += 40
            wait_until(_logged(log, sent), what="the access lines")
            if len({line["pid"] for line in access_lines(log)}) >= 2:
                return sent
    raise AssertionError("one worker answered every request")


def _logged(log: Path, count: int) -> Callable[[], bool]:
    return lambda: log.read_text().count(FLAT) >= count
