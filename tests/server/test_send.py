"""`server.send`: every route that sends a precomputed body answers it the same way (strong
ETag, If-None-Match and 304, gzip when accepted, HEAD). Each rule is asserted here once,
over every such route; the route's own tests assert only what is its own (its bytes, and
what its ETag depends on)."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.bodies import GZIP_AT_LEAST
from server.send import accepts_gzip
from tests.server.conftest import Live
from tests.server.contract import routes


@dataclass(frozen=True)
class Sent:
    """A request answered by `send`, and the route template that answers it."""

    template: str
    path: str
    query: str = ""
    method: str = "GET"
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def ask(self, client: falcon.testing.TestClient, **headers: str) -> falcon.testing.Result:
        return client.simulate_request(
            self.method,
            self.path,
            query_string=self.query or None,
            json=self.json,
            headers={**self.headers, **headers},
        )


FLAT = "/api/v1/environments/{environment}/flags"
BULK = "/ofrep/v1/evaluate/flags"
OFREP_CONTEXT = {"context": {"environment": "production", "application": "web"}}
SENT = {
    "snapshot": Sent("/api/v1/snapshot", "/api/v1/snapshot"),
    "flat map": Sent(FLAT, "/api/v1/environments/production/flags"),
    "flat map, ?application": Sent(
        FLAT, "/api/v1/environments/production/flags", "application=web"
    ),
    "flat map, application path": Sent(
        "/api/v1/environments/{environment}/applications/{application}/flags",
        "/api/v1/environments/production/applications/web/flags",
    ),
    "flagd": Sent(
        "/api/v1/environments/{environment}/flagd.json",
        "/api/v1/environments/production/flagd.json",
    ),
    "flag list": Sent("/api/v1/flags", "/api/v1/flags"),
    "flag list, filtered": Sent(
        "/api/v1/flags", "/api/v1/flags", "environment=staging&application=ios&tag=checkout"
    ),
    "one flag": Sent("/api/v1/flags/{key}", "/api/v1/flags/new-checkout"),
    "a flag's audit": Sent("/api/v1/flags/{key}/audit", "/api/v1/flags/new-checkout/audit"),
    "audit": Sent("/api/v1/audit", "/api/v1/audit"),
    "audit, filtered": Sent(
        "/api/v1/audit", "/api/v1/audit", "actor=ada@example.com&since=2026-01-01&limit=2"
    ),
    "openapi": Sent("/openapi.json", "/openapi.json"),
    "OFREP bulk": Sent(BULK, BULK, method="POST", json=OFREP_CONTEXT),
    "overview page": Sent("/", "/"),
    "overview page 1": Sent("/", "/", "page=1"),
    "flag page": Sent("/flags/{key}", "/flags/new-checkout"),
    "audit page": Sent("/audit", "/audit"),
    "graph page": Sent("/graph", "/graph"),
    "stylesheet": Sent("/static/{name}", "/static/dashboard.css"),
    "script": Sent("/static/{name}", "/static/dashboard.js"),
}  # fmt: skip
NOT_SENT = {  # answered without a precomputed body: fresh each time, or an evaluation
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/metrics", "get"),
    ("/ofrep/v1/evaluate/flags/{key}", "post"),
    ("/ofrep/v1/events", "get"),  # a stream (test_streams)
}
BIG = ["snapshot", "flagd", "flag list", "audit", "openapi", "overview page", "flag page"]
GETS = [name for name, sent in SENT.items() if sent.method == "GET"]
ETAG = re.compile(r'"[0-9a-f]{32}"')


def test_the_table_names_every_route_that_sends_a_body(client: falcon.testing.TestClient) -> None:
    """A new route is either in SENT (and so held to every rule below) or in NOT_SENT."""
    in_table = {(sent.template, sent.method.lower()) for sent in SENT.values()}
    assert in_table | NOT_SENT == routes(client.app, pages=True)
    assert not in_table & NOT_SENT


@pytest.mark.parametrize("name", SENT)
def test_a_strong_etag_of_the_bytes_revalidated_by_a_304(
    client: falcon.testing.TestClient, name: str
) -> None:
    """The ETag is the SHA-256 of the bytes (its first 32 hex digits), the same on every
    ask; If-None-Match naming it (alone, in a list, weak, or `*`) is a 304 with the ETag and
    no content nor content type; naming another is the body again."""
    sent = SENT[name]
    first = sent.ask(client, **{"Accept-Encoding": "identity"})
    assert first.status_code == 200, first.text
    etag = first.headers["ETag"]
    assert ETAG.fullmatch(etag)
    assert etag == f'"{hashlib.sha256(first.content).hexdigest()[:32]}"'
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["Vary"] == "Accept-Encoding"
    for tags in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = sent.ask(client, **{"If-None-Match": tags})
        assert (again.status_code, again.content) == (304, b""), tags
        assert again.headers["ETag"] == etag
        assert "Content-Type" not in again.headers
    assert sent.ask(client, **{"If-None-Match": '"other"'}).status_code == 200
    assert sent.ask(client).headers["ETag"] == etag  # stable


@pytest.mark.parametrize("name", SENT)
def test_gzip_when_accepted_and_worth_it(client: falcon.testing.TestClient, name: str) -> None:
    """Gzipped when Accept-Encoding accepts it and the body is GZIP_AT_LEAST bytes or more
    (smaller ones gain nothing), with the same ETag (the gzip variant is of the same
    bytes); never when gzip is refused (q=0) or not named."""
    sent = SENT[name]
    plain = sent.ask(client)
    assert "Content-Encoding" not in plain.headers
    zipped = sent.ask(client, **{"Accept-Encoding": "br, gzip, deflate"})
    assert zipped.headers["ETag"] == plain.headers["ETag"]
    if len(plain.content) < GZIP_AT_LEAST:
        assert "Content-Encoding" not in zipped.headers
        assert zipped.content == plain.content
        return
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) == len(zipped.content) < len(plain.content)
    assert gzip.decompress(zipped.content) == plain.content
    for refused in ("gzip;q=0", "identity", "br", "gzip; q=0.000, identity"):
        assert "Content-Encoding" not in sent.ask(client, **{"Accept-Encoding": refused}).headers
    for accepted in ("*", "gzip;q=0.5", "identity;q=1, *;q=0.1"):
        assert sent.ask(client, **{"Accept-Encoding": accepted}).content == zipped.content


@pytest.mark.parametrize("name", BIG)
def test_the_big_answers_are_compressed(client: falcon.testing.TestClient, name: str) -> None:
    """So that the rule above is not only ever tested on its small-body branch."""
    assert (
        SENT[name].ask(client, **{"Accept-Encoding": "gzip"}).headers["Content-Encoding"] == "gzip"
    )


@pytest.mark.parametrize("name", GETS)
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_head_has_the_headers_of_get_and_no_body(
    client: falcon.testing.TestClient, name: str, encoding: str
) -> None:
    sent = SENT[name]
    get = sent.ask(client, **{"Accept-Encoding": encoding})
    head = Sent(sent.template, sent.path, sent.query, "HEAD").ask(
        client, **{"Accept-Encoding": encoding}
    )
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert _without_request_id(head.headers) == _without_request_id(get.headers)
    assert int(head.headers["Content-Length"]) == len(get.content)


def _without_request_id(headers: Any) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() != "x-request-id"}


THE_ETAG = "<etag>"  # stands for the answer's ETag in a drawn header
TAGS = st.one_of(
    st.sampled_from([THE_ETAG, f"W/{THE_ETAG}", "*", '"other"', "W/", '""', THE_ETAG[1:]]),
    st.text(alphabet=st.sampled_from('"abcdef0123456789W/*;=x'), max_size=12),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tags=st.lists(TAGS, max_size=4), separator=st.sampled_from([",", ", ", " ,\t"]))
def test_any_if_none_match_is_a_200_or_a_304(
    client: falcon.testing.TestClient, tags: list[str], separator: str
) -> None:
    """A 304 exactly when the header names the ETag (strong or weak: a GET compares weakly)
    or is `*` among its tags; whatever else it holds is the body, never an error."""
    sent = SENT["flag list"]
    etag = sent.ask(client).headers["ETag"]
    named = [tag.replace(THE_ETAG, etag) for tag in tags]
    answer = sent.ask(client, **{"If-None-Match": separator.join(named)})
    revalidated = any(tag.strip().removeprefix("W/") in (etag, "*") for tag in named)
    assert answer.status_code == (304 if revalidated else 200), named


ACCEPT_ENCODING = [
    (None, False),
    ("", False),
    ("gzip", True),
    ("GZIP", True),
    ("br, gzip, deflate", True),
    ("*", True),
    ("identity", False),
    ("br", False),
    ("gzip;q=0", False),
    ("gzip; q=0.000, identity", False),
    ("gzip;q=0.5", True),
    ("gzip;q=0.001", True),
    ("identity;q=1, *;q=0.1", True),
    ("*;q=0", False),
    ("*;q=0, gzip", True),  # named beats the wildcard
    ("gzip;q=0, *", False),
]


@pytest.mark.parametrize(("header", "accepted"), ACCEPT_ENCODING)
def test_accept_encoding(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


CODINGS = st.sampled_from(["gzip", "br", "deflate", "identity", "*", "compress", "zstd"])


@given(codings=st.lists(CODINGS, max_size=5), spaces=st.sampled_from(["", " ", "  "]))
def test_without_weights_gzip_is_accepted_when_named_or_wildcarded(
    codings: list[str], spaces: str
) -> None:
    header = ("," + spaces).join(codings)
    assert accepts_gzip(header) is ("gzip" in codings or "*" in codings)


@given(st.text(max_size=80))
def test_any_accept_encoding_is_a_yes_or_a_no(header: str) -> None:
    assert accepts_gzip(header) in (True, False)


@pytest.mark.parametrize("name", ["snapshot", "OFREP bulk", "overview page"])
def test_through_gunicorn(live: Live, name: str) -> None:
    """The worker writes what `send` chose, unchanged (http.client: the bytes as sent):
    the gzip bytes with their length, the 304 without a body, HEAD's length without bytes."""
    sent = SENT[name]
    body = json.dumps(sent.json).encode() if sent.json else None
    json_type = {"Content-Type": "application/json"} if body else {}

    def ask(method: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(urlsplit(live.url).netloc, timeout=10)
        try:
            connection.request(method, sent.path, body=body, headers={**json_type, **headers})
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    status, headers, plain = ask(sent.method, **{"Accept-Encoding": "identity"})
    assert status == 200
    status, zipped_headers, zipped = ask(sent.method, **{"Accept-Encoding": "gzip"})
    assert zipped_headers["content-encoding"] == "gzip"
    assert int(zipped_headers["content-length"]) == len(zipped)
    assert gzip.decompress(zipped) == plain
    status, _, nothing = ask(sent.method, **{"If-None-Match": headers["etag"]})
    assert (status, nothing) == (304, b"")
    if sent.method == "GET":
        status, head_headers, nothing = ask("HEAD")
        assert (status, nothing, head_headers["content-length"]) == (200, b"", str(len(plain)))
