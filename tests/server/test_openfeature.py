"""The unmodified OpenFeature SDK, with its OFREP provider, against a running flagserve: it
gets exactly what the compiler resolved, and OpenFeature's error codes where it should.

The Python OFREP provider evaluates one flag per request (`POST /ofrep/v1/evaluate/flags/
{key}`); it has no bulk or caching mode. The bulk cycle that client-side providers run
(evaluate everything, keep the ETag, poll with If-None-Match) is tested here over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import (
    EvaluationContext,
    clear_evaluation_context,
    set_evaluation_context,
)
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from core.rows import expanded
from tests.server.conftest import Built, Live, start_server, stop_server

BULK = "/ofrep/v1/evaluate/flags"


@pytest.fixture
def openfeature(live: Live) -> Iterator[OpenFeatureClient]:
    """An OpenFeature client whose provider is OFREP on the live server, in its own domain."""
    domain = f"gitflags-{uuid.uuid4().hex}"
    api.set_provider(OFREPProvider(live.url), domain)
    yield api.get_client(domain)
    api.clear_providers()


def snapshot(built: Built) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((built.out / "snapshot.json").read_bytes())
    return expanded(document)  # every application's cell, as flagserve reads it


def resolved(
    document: dict[str, Any], key: str, environment: str, application: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = document["flags"][key]["resolved"][environment]
    return row if application is None else row["applications"][application]


def evaluation_context(
    environment: str | None, application: str | None = None
) -> EvaluationContext:
    attributes = {"environment": environment, "application": application}
    return EvaluationContext(
        targeting_key="user-42",
        attributes={name: value for name, value in attributes.items() if value is not None},
    )


CONTEXTS = [
    ("development", None),
    ("development", "ios"),
    ("staging", "web"),
    ("production", None),
    ("production", "web"),
    ("production", "ios"),
]


def test_values_are_what_the_compiler_resolved(
    openfeature: OpenFeatureClient, built: Built
) -> None:
    document = snapshot(built)
    for environment, application in CONTEXTS:
        ctx = evaluation_context(environment, application)
        for key in document["flags"]:
            cell = resolved(document, key, environment, application)
            for default in (True, False):  # the answer never falls back to the default
                details = openfeature.get_boolean_details(key, default, ctx)
                assert details.error_code is None, details.error_message
                assert details.value is cell["value"]
                assert details.variant == ("on" if cell["value"] else "off")
                assert details.reason == (
                    Reason.STATIC if cell["source"] == "default" else Reason.TARGETING_MATCH
                )
                assert details.flag_metadata == {
                    "revision": document["revision"],
                    "source": cell["source"],
                }
            assert openfeature.get_boolean_value(key, not cell["value"], ctx) is cell["value"]


def test_a_missing_flag_gives_the_default(openfeature: OpenFeatureClient) -> None:
    for default in (True, False):
        details = openfeature.get_boolean_details(
            "no-such-flag", default, evaluation_context("production")
        )
        assert details.value is default
        assert details.error_code == ErrorCode.FLAG_NOT_FOUND
        assert details.reason == Reason.ERROR
        assert "no-such-flag" in (details.error_message or "")


@pytest.mark.parametrize(
    "ctx",
    [
        evaluation_context("prod"),
        evaluation_context("production", "desktop"),
        evaluation_context(None, "web"),
        EvaluationContext(),
    ],
)
def test_an_invalid_context_gives_the_default(
    openfeature: OpenFeatureClient, ctx: EvaluationContext
) -> None:
    details = openfeature.get_boolean_details("pricing-engine", False, ctx)
    assert details.value is False
    assert details.error_code == ErrorCode.INVALID_CONTEXT
    assert details.reason == Reason.ERROR


def test_context_set_once_for_the_whole_api(live: Live, built: Built) -> None:
    """Services usually set the environment once, globally, and the application per client."""
    document = snapshot(built)
    domain = f"gitflags-{uuid.uuid4().hex}"
    api.set_provider(OFREPProvider(live.url), domain)
    set_evaluation_context(EvaluationContext(attributes={"environment": "production"}))
    try:
        client = api.get_client(domain)
        client.context = EvaluationContext(attributes={"application": "web"})
        cell = resolved(document, "new-checkout", "production", "web")
        assert client.get_boolean_value("new-checkout", not cell["value"]) is cell["value"]
    finally:
        clear_evaluation_context()
        api.clear_providers()


def test_the_server_default_environment(built: Built, tmp_path: Path) -> None:
    """With FLAGSERVE_DEFAULT_ENVIRONMENT, a context without an environment reads it."""
    document = snapshot(built)
    server = start_server(
        built.out, tmp_path / "default.log", {"FLAGSERVE_DEFAULT_ENVIRONMENT": "staging"}
    )
    domain = f"gitflags-{uuid.uuid4().hex}"
    try:
        api.set_provider(OFREPProvider(server.url), domain)
        client = api.get_client(domain)
        for application in (None, "ios"):
            ctx = evaluation_context(None, application)
            cell = resolved(document, "new-checkout", "staging", application)
            details = client.get_boolean_details("new-checkout", not cell["value"], ctx)
            assert details.value is cell["value"]
            assert details.error_code is None
        named = evaluation_context("production", "ios")
        cell = resolved(document, "new-checkout", "production", "ios")
        assert client.get_boolean_value("new-checkout", not cell["value"], named) is cell["value"]
    finally:
        api.clear_providers()
        stop_server(server)


def test_a_wrongly_typed_request_is_a_type_mismatch(openfeature: OpenFeatureClient) -> None:
    details = openfeature.get_string_details("banner", "x", evaluation_context("staging"))
    assert details.value == "x"
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_the_bulk_cycle_of_client_side_providers(live: Live, built: Built) -> None:
    """Evaluate every flag, keep the ETag, poll with If-None-Match (304 while nothing
    changed), and get the new values, with a new ETag, once a new build is served."""
    body = {"context": {"targetingKey": "user-42", "environment": "development"}}
    first = live.post(BULK, json=body)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    values = {flag["key"]: flag["value"] for flag in first.json()["flags"]}
    document = snapshot(built)
    assert values == {
        key: resolved(document, key, "development", None)["value"] for key in document["flags"]
    }
    assert values["banner"] is True

    unchanged = live.post(BULK, json=body, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    built.commit(
        "Turn the banner off in development",
        {"growth/banner.yaml": "description: Banner\nowner: team-growth\nenabled: false\n"},
    )
    changed = poll_until_changed(live, body, etag)
    assert changed.headers["ETag"] != etag
    flags = {flag["key"]: flag for flag in changed.json()["flags"]}
    assert flags["banner"]["value"] is False
    assert flags["banner"]["reason"] == "STATIC"
    assert changed.json()["metadata"]["revision"] == snapshot(built)["revision"]


def poll_until_changed(live: Live, body: dict[str, Any], etag: str) -> Any:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = live.post(BULK, json=body, headers={"If-None-Match": etag})
        if response.status_code == 200:
            return response
        assert response.status_code == 304
        time.sleep(0.1)
    raise AssertionError("the server did not serve the new build")


TYPED = {
    "checkout/colour.yaml": """description: Button colour
owner: team-growth
type: string
variants: {blue: "#1f6feb", green: "#2da44e"}
default: blue
rules:
  - when: {country: NL}
    serve: green
  - rollout: {green: 50, blue: 50}
""",
    "platform/page-size.yaml": """description: Page size
owner: team-search
type: integer
variants: {standard: 20, large: 50}
default: standard
""",
    "platform/base.yaml": """description: Base
owner: team-platform
enabled: true
rules:
  - when: {country: DE}
    serve: off
""",
    "platform/top.yaml": """description: Top
owner: team-platform
enabled: false
depends_on: [base]
rules:
  - when: {country: NL}
    serve: on
""",
}


def every_worker_serves(live: Live, key: str) -> None:
    """Wait until `key` is served by 20 requests in a row: each worker reloads on its own."""
    body = {"context": {"targetingKey": "user-42", "environment": "production"}}
    deadline, found = time.monotonic() + 15, 0
    while found < 20:
        assert time.monotonic() < deadline, "the workers did not all serve the new build"
        status = live.post(f"{BULK}/{key}", json=body).status_code
        found = found + 1 if status == 200 else 0
        if status != 200:
            time.sleep(0.1)


def typed_context(**attributes: Any) -> EvaluationContext:
    return EvaluationContext(
        targeting_key=attributes.pop("key", "user-42"),
        attributes={"environment": "production", **attributes},
    )


def test_typed_getters_evaluate_the_context(
    live: Live, built: Built, openfeature: OpenFeatureClient
) -> None:
    """Rules, rollouts and gating through the unmodified SDK and its OFREP provider: typed
    values, variants, OpenFeature's reasons, gatedBy, and TYPE_MISMATCH for a wrong getter."""
    built.commit("Add typed and targeted flags", TYPED)
    every_worker_serves(live, "colour")

    green = openfeature.get_string_details("colour", "x", typed_context(country="NL"))
    assert (green.value, green.variant, green.reason) == (
        "#2da44e",
        "green",
        Reason.TARGETING_MATCH,
    )
    split = {
        openfeature.get_string_details("colour", "x", typed_context(key=f"user-{n}")).reason
        for n in range(20)
    }
    assert split == {Reason.SPLIT}
    size = openfeature.get_integer_details("page-size", 0, typed_context())
    assert (size.value, size.reason) == (20, Reason.STATIC)
    mismatch = openfeature.get_boolean_details("colour", False, typed_context(country="NL"))
    assert (mismatch.value, mismatch.error_code) == (False, ErrorCode.TYPE_MISMATCH)

    on = openfeature.get_boolean_details("top", False, typed_context(country="NL"))
    assert (on.value, on.reason) == (True, Reason.TARGETING_MATCH)
    gated = openfeature.get_boolean_details("top", True, typed_context(country="DE"))
    assert (gated.value, gated.variant, gated.reason) == (False, "off", Reason.DISABLED)
    assert gated.flag_metadata["gatedBy"] == "base"


def test_the_bulk_etag_follows_the_context(live: Live, built: Built) -> None:
    built.commit("Add typed and targeted flags", TYPED)
    every_worker_serves(live, "colour")
    plain = {"context": {"targetingKey": "user-42", "environment": "production"}}
    dutch = {"context": {**plain["context"], "country": "NL"}}
    first, other = live.post(BULK, json=plain), live.post(BULK, json=dutch)
    assert first.headers["ETag"] != other.headers["ETag"]
    again = live.post(BULK, json=dutch, headers={"If-None-Match": other.headers["ETag"]})
    assert again.status_code == 304
    flags = {flag["key"]: flag for flag in other.json()["flags"]}
    assert flags["colour"]["value"] == "#2da44e"
