"""OFREP event streams (server.streams, server.resources.events, the worker's held
connections): tokens, the hub's news, the resource in-process, and streams held by a real
gunicorn flagserve across real builds."""

from __future__ import annotations

import os
import signal
import socket
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import falcon.testing
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.store import Store
from server.streams import PATH, Grant, Hub, Tokens, event
from tests.server.conftest import Built, Live, start_server, stop_server, wait_until_served
from tests.server.helpers import (
    BANNER_ON,
    SECRET,
    STAGING_SECRET,
    Listener,
    keys_file,
    wait_until,
    workers,
)

BULK = "/ofrep/v1/evaluate/flags"
PUSH_SECONDS = 1.0  # a build landing -> its event on a stream
BANNER_IN_STAGING = (
    "description: Free shipping banner\nowner: team-growth\nenabled: false\n"
    "environments:\n  development: true\n  staging: true\n"
)


# Tokens ----------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_names_its_grant_until_it_expires() -> None:
    clock = Clock()
    tokens = Tokens(b"k" * 32, clock, lifetime=600)
    grant = Grant("ops", "production", "web")
    token = tokens.issue(grant)
    assert tokens.check(token) == grant
    assert SECRET not in token and "production" not in token  # base64: opaque, not secret
    clock.now += 600  # valid for the rest of its window and one more
    assert tokens.check(token) == grant
    clock.now += 600
    assert tokens.check(token) is None


def test_tokens_of_one_window_are_the_same_bytes() -> None:
    """So a bulk answer with its token can be made once per window and kept."""
    clock = Clock(1_800_000_000.0)
    tokens = Tokens(b"k" * 32, clock, lifetime=600)
    first = tokens.issue(Grant("ops", "production", None))
    clock.now += 599 - clock.now % 600
    assert tokens.issue(Grant("ops", "production", None)) == first


@pytest.mark.parametrize("now", [1_800_000_000.0, 1_796_440_000.0, 1_900_000_123.0])
def test_a_token_is_refused_when_changed_or_signed_with_another_secret(now: float) -> None:
    """Any character changed to any other is refused, the last ones included, whose low
    bits base64 decoding ignores (one spelling per token)."""
    tokens = Tokens(b"k" * 32, Clock(now))
    token = tokens.issue(Grant("staging", "staging", None))
    assert tokens.check(token) is not None
    assert Tokens(b"j" * 32, Clock(now)).check(token) is None
    alphabet = string.ascii_letters + string.digits + "-_."
    for at in range(len(token)):
        for other in alphabet.replace(token[at], ""):
            assert tokens.check(token[:at] + other + token[at + 1 :]) is None, (at, other)


@given(st.text(max_size=300))
def test_any_string_is_a_clean_refusal(text: str) -> None:
    assert Tokens(b"k" * 32).check(text) is None


def test_a_secret_file_must_be_a_regular_file_of_32_bytes(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    with pytest.raises(ValueError, match="holds 31 bytes"):
        Tokens.from_file(short)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        Tokens.from_file(fifo)  # refused, never a read that waits for a writer
    good = tmp_path / "good"
    good.write_bytes(b"s" * 32 + b"\n")
    one, two = Tokens.from_file(good), Tokens.from_file(good)
    assert two.check(one.issue(Grant("ops", "staging", None))) is not None


# The hub ---------------------------------------------------------------------------------


@pytest.fixture
def hub(store: Store) -> Hub:
    return Hub(store)


def news_of(hub: Hub) -> list[dict[str, Any]]:
    heard: list[dict[str, Any]] = []
    hub.subscribe(heard.append)
    return heard


def test_the_hub_tells_of_the_environments_a_build_changes(
    built: Built, store: Store, hub: Hub
) -> None:
    heard = news_of(hub)
    before = {name: hub.tag(name) for name in ("staging", "production")}
    built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    assert store.reload()
    assert list(heard[0]) == ["staging"]
    tag, data = heard[0]["staging"]
    assert tag == hub.tag("staging") != before["staging"]
    assert hub.tag("production") == before["production"]
    assert data == event(tag, store.current.last_modified)
    assert data.startswith(b"id: " + tag.encode() + b"\nevent: message\ndata: ")
    payload = orjson.loads(data.split(b"data: ")[1])
    assert payload == {
        "type": "refetchEvaluation",
        "etag": tag,
        "lastModified": payload["lastModified"],
    }


def test_a_build_that_changes_nothing_served_is_no_news(
    built: Built, store: Store, hub: Hub
) -> None:
    """A new revision alone (a description, another file) changes no tag."""
    heard = news_of(hub)
    banner = (built.flags / "growth/banner.yaml").read_text()
    built.commit("Reword", {"growth/banner.yaml": banner.replace("Free shipping", "Free delivery")})
    assert store.reload()
    assert heard == []


def test_a_vanished_environment_is_news_without_an_event(
    built: Built, store: Store, hub: Hub
) -> None:
    heard = news_of(hub)
    project = "environments: [staging, production]\napplications: [web, ios, android]\n"
    banner = BANNER_ON
    built.commit("Drop development", {"_project.yaml": project, "growth/banner.yaml": banner})
    assert store.reload()
    assert heard[0]["development"] is None
    assert hub.news("development") is None


def test_catching_up_waits_for_the_build_that_brings_a_tag(
    built: Built, store: Store, hub: Hub
) -> None:
    old = hub.tag("staging")
    assert old is not None
    started = time.monotonic()
    hub.catch_up("staging", old, 5)  # current: at once
    hub.catch_up("staging", "f" * 32, 0.2)  # unknown: gives up after its timeout
    assert time.monotonic() - started < 2
    built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    new = Store(built.out).start().definition_tags["staging"]
    threading.Timer(0.3, store.reload).start()
    hub.catch_up("staging", new, 30)
    assert hub.tag("staging") == new
    started = time.monotonic()
    hub.catch_up("staging", old, 30)  # served before: old news, no wait
    assert time.monotonic() - started < 2


def test_one_request_waits_to_catch_up_at_a_time(hub: Hub) -> None:
    """Any client can name a tag that never comes: while one request waits for it, the
    others are answered at once rather than each holding a thread."""
    waiting = threading.Thread(target=hub.catch_up, args=("staging", "a" * 32, 3))
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    hub.catch_up("staging", "b" * 32, 30)
    assert time.monotonic() - started < 1
    waiting.join()


# The resource, in-process (a test client holds nothing: the stream ends after its start) --


def test_a_stream_starts_with_its_retry_and_nothing_else(
    client: falcon.testing.TestClient,
) -> None:
    answer = client.simulate_get(PATH, params={"environment": "production"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/event-stream"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Accel-Buffering"] == "no"
    assert answer.text == "retry: 1000\n: gitflags\n\n"


def test_a_client_that_missed_a_change_hears_of_it_at_once(
    client: falcon.testing.TestClient, store: Store
) -> None:
    tag = store.current.definition_tags["production"]
    for seen in ({"Last-Event-ID": "0" * 32}, {}):
        params = {"environment": "production", "since": "1" * 32}
        answer = client.simulate_get(PATH, params=params, headers=seen)
        assert f"id: {tag}\nevent: message\n" in answer.text
    for headers, params in (({"Last-Event-ID": tag}, {}), ({}, {"since": tag})):
        answer = client.simulate_get(
            PATH, params={"environment": "production", **params}, headers=headers
        )
        assert "event:" not in answer.text


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"environment": "nowhere"}, 400, "INVALID_CONTEXT"),
        ({"environment": "production", "application": "fridge"}, 400, "INVALID_CONTEXT"),
        ({}, 400, "INVALID_CONTEXT"),  # no environment and no default
        ({"environment": ["staging", "production"]}, 400, "GENERAL"),  # which? not a guess
        ({"environment": "staging", "since": ["a", "b"]}, 400, "GENERAL"),
    ],
)
def test_a_stream_of_nothing_is_refused_in_ofreps_shape(
    client: falcon.testing.TestClient, params: dict[str, str], status: int, code: str
) -> None:
    answer = client.simulate_get(PATH, params=params)
    assert answer.status_code == status
    assert answer.json["errorCode"] == code


@pytest.mark.parametrize("seen", ["x" * 5000, "\u00e9t\u00e9", "", " ", "id\x7f"])
def test_any_tag_a_client_names_is_only_compared(
    client: falcon.testing.TestClient, seen: str
) -> None:
    params = {"environment": "staging", "since": seen}
    answer = client.simulate_get(PATH, params=params)
    assert answer.status_code == 200
    assert "event: message" in answer.text  # none is the tag served, "" included


def test_head_answers_the_streams_headers_and_holds_nothing(
    client: falcon.testing.TestClient,
) -> None:
    answer = client.simulate_head(PATH, params={"environment": "staging"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/event-stream"
    assert answer.content == b""


def test_the_bulk_answer_offers_its_stream_and_is_revalidated(
    client: falcon.testing.TestClient, store: Store
) -> None:
    context = {"context": {"environment": "production", "application": "web"}}
    answer = client.simulate_post(BULK, json=context)
    (stream,) = answer.json["eventStreams"]
    assert stream["type"] == "sse" and stream["inactivityDelaySec"] == 120
    uri = urlsplit(stream["endpoint"]["requestUri"])
    assert uri.path == PATH
    tag = store.current.definition_tags["production"]
    assert parse_qs(uri.query) == {
        "environment": ["production"],
        "application": ["web"],
        "since": [tag],
    }
    etag = answer.headers["ETag"]
    again = client.simulate_post(BULK, json=context, headers={"If-None-Match": etag})
    assert again.status_code == 304
    # After a stream's event naming the tag served here: the same revalidation.
    told = client.simulate_post(
        BULK, json=context, params={"flagConfigEtag": tag}, headers={"If-None-Match": etag}
    )
    assert told.status_code == 304


def test_a_bulk_request_told_of_an_unknown_tag_is_never_a_304(
    client: falcon.testing.TestClient,
) -> None:
    context = {"context": {"environment": "production"}}
    etag = client.simulate_post(BULK, json=context).headers["ETag"]
    told = client.simulate_post(
        BULK, json=context, params={"flagConfigEtag": "e" * 32}, headers={"If-None-Match": etag}
    )
    assert told.status_code == 200
    assert told.headers["ETag"] == etag


# Held by a real flagserve -----------------------------------------------------------------


def bulk(live: Live, environment: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = live.post(BULK, json={"context": {"environment": environment}}, headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def stream_path(answer: dict[str, Any]) -> str:
    path: str = answer["eventStreams"][0]["endpoint"]["requestUri"]
    return path


@pytest.fixture
def quick(built: Built, tmp_path: Path) -> Iterator[Live]:
    """flagserve whose streams send a keep-alive comment every half second."""
    live = start_server(
        built.out, tmp_path / "flagserve.log", {"FLAGSERVE_STREAM_KEEPALIVE": "0.5"}
    )
    yield live
    stop_server(live)


def test_a_build_reaches_the_streams_of_what_it_changed_within_a_second(
    quick: Live, built: Built
) -> None:
    staging = Listener(quick, stream_path(bulk(quick, "staging")))
    production = Listener(quick, stream_path(bulk(quick, "production")))
    assert staging.status == 200
    assert staging.head["transfer-encoding"] == "chunked"
    built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    landed = time.monotonic()
    came = staging.read_until(5)
    assert came - landed < PUSH_SECONDS, f"{came - landed:.3f} s"
    (heard,) = staging.events
    assert heard["event"] == "message"
    data = orjson.loads(heard["data"])
    assert data["type"] == "refetchEvaluation" and data["etag"] == heard["id"]
    # What the event names is what a refetch gets, with the stream's URL moved on to it.
    refetched = bulk(quick, "staging")
    assert parse_qs(urlsplit(stream_path(refetched)).query)["since"] == [heard["id"]]
    assert {flag["key"]: flag["value"] for flag in refetched["flags"]}["banner"] is True
    # Production serves what it did: no event, and keep-alive comments all along.
    production.read_until(1.5)
    assert production.events == [] and production.comments >= 2
    assert scraped(quick, "flagserve_event_streams") == 2
    assert scraped(quick, "flagserve_stream_events_total") == 1
    staging.close()
    production.close()
    wait_until(lambda: scraped(quick, "flagserve_event_streams") == 0, what="streams closed")


def scraped(live: Live, name: str) -> float:
    """A sample's value in flagserve's /metrics (summed over its workers)."""
    for line in live.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_a_reconnecting_client_hears_of_what_it_missed(quick: Live, built: Built) -> None:
    path = stream_path(bulk(quick, "staging"))
    first = Listener(quick, path)
    built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    first.read_until(5)
    heard = first.events[0]["id"]
    first.close()
    built.commit("Banner off again", {"growth/banner.yaml": BANNER_ON.replace("true", "false")})
    wait_until_served(quick, built.git("rev-parse", "HEAD").strip())
    late = Listener(quick, path, {"Last-Event-ID": heard})  # as EventSource reconnects
    late.read_until(5)
    assert late.events and late.events[0]["id"] != heard
    current = Listener(quick, path, {"Last-Event-ID": late.events[0]["id"]})
    current.read_until(1)
    assert current.events == []
    for listener in (late, current):
        listener.close()


def test_streams_hold_no_thread(quick: Live, built: Built) -> None:
    """Far more streams than threads (2 workers x 4), and requests are still answered at
    once; a build reaches every stream."""
    path = stream_path(bulk(quick, "staging"))
    listeners = [Listener(quick, path) for _ in range(40)]
    for _ in range(20):
        assert quick.get("/api/v1/environments/production/flags").status_code == 200
    built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    for listener in listeners:
        listener.read_until(10)
        assert len(listener.events) == 1
        listener.close()


def test_a_stream_over_http_1_0_is_its_bytes_until_the_connection_ends(
    quick: Live, built: Built
) -> None:
    port = urlsplit(quick.url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + PATH.encode() + b"?environment=staging HTTP/1.0\r\n\r\n")
        received = b""
        while b": keep-alive" not in received:
            received += sock.recv(4096)
        built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
        while b"refetchEvaluation" not in received:
            received += sock.recv(4096)
    head, _, content = received.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert content.startswith(b"retry: 1000\n: gitflags\n\n")
    assert b"\nevent: message\ndata: {" in content


def test_a_stopping_worker_ends_its_streams_at_once(built: Built, tmp_path: Path) -> None:
    """SIGHUP replaces the workers: their streams end then (the clients reconnect to the new
    ones), not after the graceful timeout."""
    live = start_server(built.out, tmp_path / "flagserve.log")
    try:
        listener = Listener(live, PATH + "?environment=staging")
        before = set(workers(live.process.pid))
        os.kill(live.process.pid, signal.SIGHUP)
        ended = time.monotonic()
        with pytest.raises(AssertionError, match="the stream ended"):
            listener.read_until(20)
        assert time.monotonic() - ended < 10
        wait_until(lambda: not before & set(workers(live.process.pid)), timeout=20)
        again = Listener(live, PATH + "?environment=staging")
        assert again.status == 200
        again.close()
    finally:
        stop_server(live)


# With API keys ---------------------------------------------------------------------------


def test_under_api_keys_the_stream_url_carries_a_token_not_the_key(
    keyed_live: Live, built: Built
) -> None:
    answer = bulk(keyed_live, "staging", {"Authorization": f"Bearer {STAGING_SECRET}"})
    path = stream_path(answer)
    query = parse_qs(urlsplit(path).query)
    assert set(query) == {"token", "since"}
    assert STAGING_SECRET not in path and SECRET not in path
    listener = Listener(keyed_live, path)  # no header: as EventSource connects
    assert listener.status == 200
    built.commit("Banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    listener.read_until(5)
    assert len(listener.events) == 1
    listener.close()
    access = keyed_live.log.read_text()
    assert query["token"][0] not in access  # the access log never shows a query string


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (PATH + "?environment=staging", {}, 401),
        (PATH + "?environment=staging&token=not-a-token", {}, 401),
        (PATH + "?environment=production", {"Authorization": f"Bearer {STAGING_SECRET}"}, 403),
        (PATH + "?environment=staging", {"X-API-Key": STAGING_SECRET}, 200),
        (PATH + "?environment=production", {"Authorization": f"Bearer {SECRET}"}, 200),
    ],
)
def test_a_stream_needs_a_key_or_a_token_for_its_environment(
    keyed_live: Live, path: str, headers: dict[str, str], status: int
) -> None:
    answer = keyed_live.get(path, headers=headers, stream=True)
    assert answer.status_code == status
    if status != 200:
        assert answer.json()["errorCode"] == "GENERAL"
    answer.close()


def test_a_token_from_another_server_is_refused_unless_they_share_the_secret(
    built: Built, tmp_path: Path
) -> None:
    keys = str(keys_file(tmp_path / "keys.yaml"))
    secret = tmp_path / "stream-secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    shared = {"FLAGSERVE_API_KEYS": keys, "FLAGSERVE_STREAM_SECRET_FILE": str(secret)}
    one = start_server(built.out, tmp_path / "one.log", shared)
    two = start_server(built.out, tmp_path / "two.log", shared)
    other = start_server(built.out, tmp_path / "other.log", {"FLAGSERVE_API_KEYS": keys})
    try:
        path = stream_path(bulk(one, "production", {"Authorization": f"Bearer {SECRET}"}))
        with two.get(path, stream=True) as answer:
            assert answer.status_code == 200
        with other.get(path, stream=True) as answer:
            assert answer.status_code == 401
            assert "fetch the flags again" in answer.json()["errorDetails"]
    finally:
        for live in (one, two, other):
            stop_server(live)
