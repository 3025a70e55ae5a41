"""OFREP in a real browser: OpenFeature's web SDK and OFREP web provider, the unmodified npm
packages (tests/js), in Debian's chromium, against a real flagserve serving a real build. The
provider evaluates as flagserve's bulk answer says, follows each build over the event stream
without polling, and a key that may not read the environment gets the provider's error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.server import browser as shared
from tests.server.browser import BULK, NEEDS_CHROMIUM, NEEDS_NPM, OfrepPage, OpenOfrep
from tests.server.conftest import Built, Live, start_server, stop_server
from tests.server.helpers import SECRET, STAGING_SECRET, keys_file

pytestmark = [NEEDS_CHROMIUM, NEEDS_NPM]
browser, ofrep_pages = shared.browser, shared.ofrep_pages  # the fixtures, found here by name

ENVIRONMENTS = ("development", "staging", "production")  # tests/server/conftest.py's FLAGS
APPLICATIONS = (None, "web", "ios", "android")
PUSH_SECONDS = 1.0  # a build landing -> the page's value, with no polling
BANNER_IN_STAGING = (
    "description: Free shipping banner\nowner: team-growth\nenabled: false\n"
    "environments:\n  development: true\n  staging: true\n"
)


@dataclass
class Served:
    """flagserve, and the key its pages send (None when it checks no API keys)."""

    live: Live
    key: str | None

    def bulk(self, environment: str, application: str | None) -> list[dict[str, Any]]:
        """flagserve's own OFREP bulk answer for the context the page sends."""
        context = {"targetingKey": "user-1", "environment": environment}
        context |= {"application": application} if application else {}
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        answer = self.live.post(BULK, json={"context": context}, headers=headers)
        assert answer.status_code == 200, answer.text
        flags: list[dict[str, Any]] = answer.json()["flags"]
        return flags


@pytest.fixture(params=[False, True], ids=["keys off", "keys on"])
def served(request: pytest.FixtureRequest, built: Built, tmp_path: Path) -> Iterator[Served]:
    keys = request.param
    env = {"FLAGSERVE_API_KEYS": str(keys_file(tmp_path / "keys.yaml"))} if keys else {}
    live = start_server(built.out, tmp_path / "flagserve.log", env)
    yield Served(live, SECRET if keys else None)
    stop_server(live)


def shown(page: OfrepPage, key: str) -> dict[str, Any]:
    """What the page's client resolves for `key`, in the shape of an OFREP bulk entry."""
    details = page.details(key)
    assert details["flagKey"] == key and details.get("errorCode") is None, details
    return {
        "key": key,
        "value": details["value"],
        "variant": details["variant"],
        "reason": details["reason"],
        "metadata": details["flagMetadata"],
    }


def test_the_provider_evaluates_as_the_bulk_answer_says(
    served: Served, ofrep_pages: OpenOfrep
) -> None:
    values = set()
    for environment in ENVIRONMENTS:
        for application in APPLICATIONS:
            page = ofrep_pages(served.live, environment, application, served.key)
            assert page.started == "ready"
            flags = served.bulk(environment, application)
            assert [shown(page, flag["key"]) for flag in flags] == flags, (environment, application)
            assert page.details("no-such-flag")["errorCode"] == "FLAG_NOT_FOUND"
            values |= {flag["value"] for flag in flags}
            (sent,) = page.bulk_requests()
            authorization = sent.headers.get("authorization")
            assert authorization == (f"Bearer {served.key}" if served.key else None)
    assert values == {True, False}


def test_a_build_is_pushed_to_the_page_within_a_second_without_polling(
    served: Served, ofrep_pages: OpenOfrep, built: Built
) -> None:
    page = ofrep_pages(served.live, "staging", "web", served.key)
    assert page.started == "ready"
    assert page.value("banner") is False
    stream = page.wait_for_stream()
    assert stream.status == 200, stream.text()
    (asked,) = page.stream_requests()
    if served.key:  # EventSource sends no headers: the URL carries a token, never the key
        assert parse_qs(urlsplit(asked.url).query), asked.url
        assert served.key not in asked.url and "authorization" not in asked.headers

    built.commit("Show the banner in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    landed, landed_at = time.monotonic(), time.time()
    page.page.wait_for_function("() => window.flagValue('banner') === true", polling=10)
    seconds = time.monotonic() - landed
    changed = page.changes()
    print(  # the measured latency, shown with `pytest -s`
        f"pushed in {seconds * 1000:.0f} ms (the change event after "
        f"{changed[-1]['at'] - landed_at * 1000:.0f} ms)"
    )
    timeline = page.timeline(landed_at)
    assert seconds < PUSH_SECONDS, f"pushed in {seconds:.3f} s; requests:\n{timeline}"
    assert len(changed) == 1 and "banner" in changed[0]["flags"]  # each flag's revision too

    page.page.wait_for_timeout(3_000)  # a poll would ask again in the meantime
    timeline = page.timeline(landed_at)
    first, *refetched = [urlsplit(request.url).query for request in page.bulk_requests()]
    assert first == "", timeline
    # the provider names the stream event's tag only in a refetch that event asked for
    assert len(refetched) == 1 and "flagConfigEtag" in parse_qs(refetched[0]), timeline
    assert page.stream_requests() == [asked], timeline  # the one stream, never reconnected


@pytest.mark.parametrize(
    ("environment", "key", "status"),
    [("production", STAGING_SECRET, 403), ("staging", "no-such-key-0123456789", 401)],
    ids=["outside its scope", "unknown key"],
)
def test_a_key_that_may_not_read_the_environment_gets_the_providers_error(
    keyed_live: Live, ofrep_pages: OpenOfrep, environment: str, key: str, status: int
) -> None:
    allowed = ofrep_pages(keyed_live, "staging", key=STAGING_SECRET)
    assert allowed.started == "ready" and allowed.value("pricing-engine") is True
    page = ofrep_pages(keyed_live, environment, key=key)
    assert page.started.startswith("ProviderFatalError"), page.started
    (sent,) = page.bulk_requests()
    answer = sent.response()
    assert answer is not None and answer.status == status, answer and answer.text()
    details = page.details("pricing-engine")  # on everywhere
    assert details["value"] is False  # not a value: the default the page asked with
    assert (details["reason"], details["errorCode"]) == ("ERROR", "PROVIDER_FATAL")
    assert page.stream_requests() == []
