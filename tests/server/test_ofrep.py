"""OFREP over the real store: every evaluation against what the compiler resolved (read from
the built snapshot.json), every error in OFREP's own shape, bulk ETags, body limits, the
default environment and API keys scoped to environments."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import falcon
import falcon.testing
import pytest

from core.rows import expanded
from server.app import create_app
from server.store import Store
from tests.server.conftest import Built, Live

SINGLE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"
LIMIT = 64 * 1024
Result = falcon.testing.Result


def snapshot(built: Built) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((built.out / "snapshot.json").read_bytes())
    return expanded(document)  # every application's cell, as flagserve reads it


def contexts(document: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    for environment in document["environments"]:
        for application in [None, *document["applications"]]:
            yield environment, application


def context(environment: str | None, application: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"targetingKey": "user-1"}
    if environment is not None:
        found["environment"] = environment
    if application is not None:
        found["application"] = application
    return {"context": found}


def expected(
    document: dict[str, Any], key: str, environment: str, application: str | None
) -> dict[str, Any]:
    """What OFREP must answer, from the compiler's resolution in snapshot.json."""
    row = document["flags"][key]["resolved"][environment]
    resolved = row if application is None else row["applications"][application]
    value, source = resolved["value"], resolved["source"]
    return {
        "key": key,
        "value": value,
        "variant": "on" if value else "off",
        "reason": "STATIC" if source == "default" else "TARGETING_MATCH",
        "metadata": {"revision": document["revision"], "source": source},
    }


def assert_error(
    result: Result, status: int, code: str, key: str | None = None, fragment: str = ""
) -> None:
    assert result.status_code == status, result.text
    assert result.headers["Content-Type"] == "application/json"
    body = result.json
    assert set(body) == ({"errorCode", "errorDetails"} | ({"key"} if key else set()))
    assert body["errorCode"] == code
    assert body.get("key") == key
    assert fragment in body["errorDetails"]


class Scope:
    """Stands in for the auth middleware: the environments the request's API key may read."""

    def __init__(self, environments: frozenset[str] | None) -> None:
        self.environments = environments

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.environments = self.environments


def scoped(
    store: Store, environments: set[str] | None, default: str | None = None
) -> falcon.testing.TestClient:
    scope = None if environments is None else frozenset(environments)
    app = create_app(store, middleware=[Scope(scope)], default_environment=default)
    return falcon.testing.TestClient(app)


# Evaluations


def test_every_flag_in_every_context(client: falcon.testing.TestClient, built: Built) -> None:
    document = snapshot(built)
    seen = set()
    for environment, application in contexts(document):
        for key in document["flags"]:
            result = client.simulate_post(
                SINGLE.format(key), json=context(environment, application)
            )
            assert result.status_code == 200, result.text
            assert result.headers["Content-Type"] == "application/json"
            assert result.json == expected(document, key, environment, application)
            seen.add((result.json["reason"], result.json["variant"]))
    # the example flags cover every combination of reason and variant
    assert seen == {(r, v) for r in ("STATIC", "TARGETING_MATCH") for v in ("on", "off")}


def test_every_source_gives_its_reason(client: falcon.testing.TestClient, built: Built) -> None:
    document = snapshot(built)
    reasons: dict[str, set[str]] = {}
    for environment, application in contexts(document):
        for key in document["flags"]:
            body = client.simulate_post(
                SINGLE.format(key), json=context(environment, application)
            ).json
            reasons.setdefault(body["metadata"]["source"], set()).add(body["reason"])
    assert reasons == {
        "default": {"STATIC"},
        "application": {"TARGETING_MATCH"},
        "environment": {"TARGETING_MATCH"},
        "environment-application": {"TARGETING_MATCH"},
    }


def test_targeting_key_and_other_attributes_change_nothing(
    client: falcon.testing.TestClient, built: Built
) -> None:
    document = snapshot(built)
    want = expected(document, "new-checkout", "production", "web")
    for extra in ({}, {"targetingKey": "someone-else"}, {"plan": "free", "country": "CA"}):
        body = {"context": {"environment": "production", "application": "web", **extra}}
        result = client.simulate_post(SINGLE.format("new-checkout"), json=body)
        assert result.json == want


def test_bulk_in_every_context(client: falcon.testing.TestClient, built: Built) -> None:
    document = snapshot(built)
    etags: dict[bytes, set[str]] = {}
    for environment, application in contexts(document):
        result = client.simulate_post(BULK, json=context(environment, application))
        assert result.status_code == 200, result.text
        answer = result.json
        streams = answer.pop("eventStreams")  # server.streams: tested in test_streams
        assert [stream["type"] for stream in streams] == ["sse"]
        assert answer == {
            "flags": [
                expected(document, key, environment, application)
                for key in sorted(document["flags"])
            ],
            "metadata": {"revision": document["revision"]},
        }
        etags.setdefault(result.content, set()).add(result.headers["ETag"])
    # one ETag per distinct body: contexts that answer alike share it, and only they
    assert all(len(tags) == 1 for tags in etags.values())
    assert len(set().union(*etags.values())) == len(etags) > 1


def test_bulk_is_the_same_bytes_for_the_same_target(client: falcon.testing.TestClient) -> None:
    """The body depends on the environment and application only (other attributes, their
    order: nothing), so its ETag revalidates for that target and no other. (ETag, 304 and
    gzip themselves: tests/server/test_send.py.)"""
    first = client.simulate_post(BULK, json=context("production", "web"))
    again = client.simulate_post(
        BULK, json={"context": {"application": "web", "environment": "production", "x": 1}}
    )
    assert again.content == first.content
    etag = first.headers["ETag"]
    assert again.headers["ETag"] == etag
    other = client.simulate_post(
        BULK, json=context("production", "ios"), headers={"If-None-Match": etag}
    )
    assert other.status_code == 200
    assert other.headers["ETag"] != etag


def test_a_new_build_changes_values_and_etag(
    client: falcon.testing.TestClient, store: Store, built: Built
) -> None:
    before = client.simulate_post(BULK, json=context("development", "web"))
    built.commit("Turn the banner off in development", {"growth/banner.yaml": BANNER_OFF})
    assert store.reload()
    document = snapshot(built)
    assert document["flags"]["banner"]["resolved"]["development"]["value"] is False

    after = client.simulate_post(
        BULK, json=context("development", "web"), headers={"If-None-Match": before.headers["ETag"]}
    )
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert expected(document, "banner", "development", "web") in after.json["flags"]
    single = client.simulate_post(SINGLE.format("banner"), json=context("development", "web"))
    assert single.json == expected(document, "banner", "development", "web")


BANNER_OFF = "description: Free shipping banner\nowner: team-growth\nenabled: false\n"


# Errors


def test_unknown_flag(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post(SINGLE.format("no-such-flag"), json=context("production"))
    assert_error(result, 404, "FLAG_NOT_FOUND", "no-such-flag", "no-such-flag")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (context("prod"), "environment 'prod'"),
        (context("production", "desktop"), "application 'desktop'"),
        (context(None), "must name an environment"),
        (context(None, "web"), "must name an environment"),
        ({"context": {"environment": 3}}, "context.environment must be a string"),
        ({"context": {"environment": "staging", "application": ["web"]}}, "application"),
        ({"context": {"environment": ""}}, "environment ''"),
        ({}, "must name an environment"),
    ],
)
def test_invalid_context(
    client: falcon.testing.TestClient, body: dict[str, Any], fragment: str
) -> None:
    single = client.simulate_post(SINGLE.format("banner"), json=body)
    assert_error(single, 400, "INVALID_CONTEXT", "banner", fragment)
    bulk = client.simulate_post(BULK, json=body)
    assert_error(bulk, 400, "INVALID_CONTEXT", None, fragment)


def test_context_errors_come_before_an_unknown_flag(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post(SINGLE.format("no-such-flag"), json=context("prod"))
    assert_error(result, 400, "INVALID_CONTEXT", "no-such-flag")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b'{"context": {"environment": "staging"}} trailing', "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[]", "must be an object"),
        (b'"context"', "must be an object"),
        (b"null", "must be an object"),
        (b'{"context": "production"}', "context must be an object"),
        (b'{"context": null}', "context must be an object"),
        (b'{"context": []}', "context must be an object"),
    ],
)
def test_parse_error(client: falcon.testing.TestClient, body: bytes, fragment: str) -> None:
    headers = {"Content-Type": "application/json"}
    single = client.simulate_post(SINGLE.format("banner"), body=body, headers=headers)
    assert_error(single, 400, "PARSE_ERROR", "banner", fragment)
    bulk = client.simulate_post(BULK, body=body, headers=headers)
    assert_error(bulk, 400, "PARSE_ERROR", None, fragment)


def padded(size: int) -> bytes:
    """A valid request of exactly `size` bytes."""
    start = json.dumps(context("staging")).encode()
    return start + b" " * (size - len(start))


def test_body_at_the_limit_is_read(client: falcon.testing.TestClient) -> None:
    result = client.simulate_post(SINGLE.format("banner"), body=padded(LIMIT))
    assert result.status_code == 200
    assert client.simulate_post(BULK, body=padded(LIMIT)).status_code == 200


def test_body_over_the_limit(client: falcon.testing.TestClient) -> None:
    single = client.simulate_post(SINGLE.format("banner"), body=padded(LIMIT + 1))
    assert_error(single, 413, "GENERAL", "banner", str(LIMIT))
    bulk = client.simulate_post(BULK, body=padded(LIMIT + 1))
    assert_error(bulk, 413, "GENERAL", None, str(LIMIT))


def test_a_large_content_length_is_refused_unread(client: falcon.testing.TestClient) -> None:
    class Unreadable(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise AssertionError("the body was read")

        readline = read

    result = client.simulate_request(
        "POST",
        BULK,
        headers={"Content-Length": str(LIMIT + 1)},
        extras={"wsgi.input": Unreadable()},
    )
    assert_error(result, 413, "GENERAL")


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 200), (LIMIT + 1, 413)])
def test_a_body_without_content_length_is_read_to_the_limit(
    client: falcon.testing.TestClient, size: int, status: int
) -> None:
    result = client.simulate_request(
        "POST",
        BULK,
        headers={"Transfer-Encoding": "chunked"},
        extras={"wsgi.input": io.BytesIO(padded(size))},
    )
    assert result.status_code == status


def test_chunked_bodies_from_gunicorn(live: Live) -> None:
    def chunks(data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    small = live.post(BULK, data=chunks(padded(LIMIT)))
    assert small.status_code == 200, small.text
    assert "Content-Length" not in small.request.headers
    large = live.post(BULK, data=chunks(padded(LIMIT * 4)))
    assert large.status_code == 413
    assert large.json()["errorCode"] == "GENERAL"
    assert live.get("/readyz").status_code == 200


def test_ofrep_errors_are_not_problem_json(live: Live) -> None:
    result = live.post(SINGLE.format("nope"), json=context("staging"))
    assert result.status_code == 404
    assert result.headers["Content-Type"] == "application/json"
    assert result.json() == {
        "key": "nope",
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "there is no flag 'nope'",
    }


# The default environment and API keys scoped to environments


def test_default_environment(store: Store, built: Built) -> None:
    document = snapshot(built)
    client = scoped(store, None, default="staging")
    for body in ({"context": {"application": "ios"}}, {}):
        application = body.get("context", {}).get("application")
        result = client.simulate_post(SINGLE.format("new-checkout"), json=body)
        assert result.json == expected(document, "new-checkout", "staging", application)
    named = client.simulate_post(SINGLE.format("new-checkout"), json=context("production", "ios"))
    assert named.json == expected(document, "new-checkout", "production", "ios")
    bulk = client.simulate_post(BULK, json={"context": {}})
    assert bulk.content == client.simulate_post(BULK, json=context("staging")).content


def test_a_default_environment_that_the_build_lacks(store: Store) -> None:
    client = scoped(store, None, default="qa")
    result = client.simulate_post(SINGLE.format("banner"), json={"context": {}})
    assert_error(result, 400, "INVALID_CONTEXT", "banner", "environment 'qa'")


def test_a_key_for_one_environment_reads_it_by_default(store: Store, built: Built) -> None:
    document = snapshot(built)
    for default in (None, "production"):  # the key's one environment beats the server's
        client = scoped(store, {"development"}, default=default)
        result = client.simulate_post(SINGLE.format("banner"), json={"context": {}})
        assert result.json == expected(document, "banner", "development", None)
        named = client.simulate_post(SINGLE.format("banner"), json=context("development", "ios"))
        assert named.json == expected(document, "banner", "development", "ios")


def test_a_key_may_not_read_other_environments(store: Store) -> None:
    client = scoped(store, {"development"})
    for environment in ("production", "prod"):
        single = client.simulate_post(SINGLE.format("banner"), json=context(environment))
        assert_error(single, 403, "GENERAL", "banner", f"environment {environment!r}")
        bulk = client.simulate_post(BULK, json=context(environment))
        assert_error(bulk, 403, "GENERAL", None, f"environment {environment!r}")


def test_a_key_for_several_environments(store: Store, built: Built) -> None:
    document = snapshot(built)
    both = {"development", "staging"}
    unnamed = scoped(store, both).simulate_post(SINGLE.format("banner"), json={"context": {}})
    assert_error(unnamed, 400, "INVALID_CONTEXT", "banner", "development, staging")
    outside = scoped(store, both, default="production")
    result = outside.simulate_post(SINGLE.format("banner"), json={"context": {}})
    assert_error(result, 400, "INVALID_CONTEXT", "banner", "development, staging")
    inside = scoped(store, both, default="staging")
    result = inside.simulate_post(SINGLE.format("banner"), json={"context": {}})
    assert result.json == expected(document, "banner", "staging", None)
    named = inside.simulate_post(BULK, json=context("development"))
    assert named.status_code == 200


def test_a_key_for_every_environment(store: Store, built: Built) -> None:
    document = snapshot(built)
    client = scoped(store, None)
    result = client.simulate_post(SINGLE.format("banner"), json=context("development"))
    assert result.json == expected(document, "banner", "development", None)
    unnamed = client.simulate_post(BULK, json={"context": {}})
    assert_error(unnamed, 400, "INVALID_CONTEXT", None, ", ".join(document["environments"]))


# Falcon's own errors under /ofrep/


class Failing:
    """A middleware that fails the way a bug would."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", BULK, 405),
        ("PUT", SINGLE.format("banner"), 405),
        ("POST", "/ofrep/v1/evaluate", 404),
        ("POST", "/ofrep/v2/evaluate/flags", 404),
    ],
)
def test_falcon_errors_have_the_ofrep_shape(
    client: falcon.testing.TestClient, method: str, path: str, status: int
) -> None:
    result = client.simulate_request(method, path, json=context("staging"))
    assert_error(result, status, "GENERAL")


def test_an_unexpected_error_is_a_500_in_the_ofrep_shape(store: Store) -> None:
    client = falcon.testing.TestClient(create_app(store, middleware=[Failing()]))
    result = client.simulate_post(BULK, json=context("staging"))
    assert_error(result, 500, "GENERAL")
    assert "a bug" not in result.text
    problem = client.simulate_get("/api/v1/snapshot")
    assert problem.status_code == 500
    assert problem.headers["Content-Type"] == "application/problem+json"
