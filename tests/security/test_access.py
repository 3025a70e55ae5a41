"""Issue 12, part 1 and two items of 7: access control follows the resource the router
picked, never a second reading of the path; a key learns nothing outside its scope; history
is read with a '*' key only.

Every route of the served OpenAPI document (and every dashboard page) is asked under other
spellings of its path (`//`, `///`, `/./`, `/x/../`, `%2F`, a trailing slash, mixed case)
with no key, a wrong key, a `staging` key and a `*` key: each answer is the canonical
path's or a 404.
The Falcon test client runs the tables; a real flagserve (gunicorn) gets the raw paths too,
as http.client sends them, since gunicorn reads the request line itself.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import falcon
import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.access import declared
from server.app import create_app
from server.auth import AccessControl, load_keys
from server.store import Store
from tests.server.conftest import Built, Live, start_server, stop_server
from tests.server.helpers import SECRET, STAGING_SECRET, keys_file

App = falcon.App[falcon.Request, falcon.Response]
Headers = dict[str, str]

CREDENTIALS: dict[str, Headers] = {
    "no key": {},
    "wrong key": {"Authorization": "Bearer not-a-key", "X-API-Key": "not-a-key"},
    "staging key": {"Authorization": f"Bearer {STAGING_SECRET}"},
    "staging X-API-Key": {"X-API-Key": STAGING_SECRET},
    "* key": {"Authorization": f"Bearer {SECRET}"},
}
SPELLINGS: dict[str, Callable[[str], str]] = {
    "//": lambda path: "/" + path,
    "///": lambda path: "//" + path,
    "/./": lambda path: "/." + path,
    "/x/../": lambda path: "/x/.." + path,
    "inner //": lambda path: path.replace("/", "//", 2).replace("//", "/", 1),
    "%2F": lambda path: "/" + path[1:].replace("/", "%2F"),
    "trailing /": lambda path: path + "/",
    "mixed case": lambda path: "".join(c.upper() if i % 2 else c for i, c in enumerate(path)),
}
EXAMPLES = {"key": "new-checkout", "application": "web"}
HISTORY = ("created_at", "created_by", "updated_at", "updated_by", "updated_reason")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return keys_file(tmp_path / "keys.yaml")


@pytest.fixture
def guarded(store: Store, keys: Path) -> falcon.testing.TestClient:
    """The app as flagserve builds it with a keys file: `ops` ('*') and `staging`."""
    return falcon.testing.TestClient(create_app(store, middleware=[AccessControl(load_keys(keys))]))


def routed(app: App) -> Iterator[tuple[str, object]]:
    """(URI template, resource) of every route the app's router holds."""
    nodes: list[Any] = list(app._router._roots)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        if node.resource is not None:
            yield node.uri_template, node.resource


def requests_of(client: falcon.testing.TestClient) -> list[tuple[str, str, bytes | None]]:
    """(method, concrete path, body) for every operation of the served /openapi.json and
    every dashboard page, each environment in the path both `staging` and `production`."""
    document = client.simulate_get("/openapi.json").json
    operations = {
        (method, template)
        for template, item in document["paths"].items()
        for method in item
        if method in ("get", "post")
    }
    pages = {("get", t) for t, r in routed(client.app) if type(r).__module__.endswith("views")}
    found = []
    for method, template in sorted(operations | pages):
        for environment in ("staging", "production"):
            values = {**EXAMPLES, "environment": environment, "name": "dashboard.css"}
            path = template.format_map(values)
            body = json.dumps({"context": {"environment": environment}}).encode()
            found.append((method.upper(), path, body if method == "post" else None))
    return sorted(set(found))


def ask(
    client: falcon.testing.TestClient, method: str, path: str, headers: Headers, body: bytes | None
) -> falcon.testing.Result:
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    return client.simulate_request(method, path, headers=headers, body=body)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_gets_the_canonical_decision_or_404(
    guarded: falcon.testing.TestClient, spelling: str
) -> None:
    spell = SPELLINGS[spelling]
    asked = requests_of(guarded)
    assert len({path for _, path, _ in asked}) >= 15  # the document's routes and the pages
    wrong = []
    for method, path, body in asked:
        for who, headers in CREDENTIALS.items():
            canonical = ask(guarded, method, path, headers, body)
            spelled = ask(guarded, method, spell(path), headers, body)
            same = spelled.status_code == canonical.status_code
            if not same and spelled.status_code != 404:
                wrong.append(f"{method} {spell(path)} ({who}): {spelled.status_code}, "
                             f"but {path} answers {canonical.status_code}")  # fmt: skip
            elif same and spelled.headers.get("Content-Type") != canonical.headers.get(
                "Content-Type"
            ):
                wrong.append(f"{method} {spell(path)} ({who}): not {path}'s error shape")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("method", "path", "who", "context", "status", "shape"),
    [
        ("GET", "//api/v1/snapshot", "no key", None, 401, "problem"),
        ("GET", "///api/v1/snapshot", "no key", None, 401, "problem"),
        ("GET", "/api%2Fv1%2Fsnapshot", "no key", None, 401, "problem"),
        ("GET", "//api/v1/snapshot", "staging key", None, 403, "problem"),
        ("GET", "//api/v1/snapshot", "* key", None, 200, "json"),
        ("GET", "//api/v1/audit", "staging key", None, 403, "problem"),
        ("GET", "//api/v1/environments/production/flags", "no key", None, 401, "problem"),
        ("GET", "//api/v1/environments/production/flags", "staging key", None, 403, "problem"),
        ("POST", "//ofrep/v1/evaluate/flags/banner", "no key", "production", 401, "ofrep"),
        ("POST", "//ofrep/v1/evaluate/flags", "no key", "production", 401, "ofrep"),
        ("POST", "//ofrep/v1/evaluate/flags/banner", "wrong key", "staging", 401, "ofrep"),
        ("POST", "//ofrep/v1/evaluate/flags/banner", "staging X-API-Key", "production", 403,
         "ofrep"),
        ("POST", "//ofrep/v1/evaluate/flags/banner", "staging X-API-Key", "staging", 200,
         "json"),
        ("GET", "//ofrep/v1/evaluate/flags", "* key", None, 405, "ofrep"),
        ("GET", "//audit", "no key", None, 401, "problem"),
        ("GET", "//", "staging key", None, 403, "problem"),
        ("GET", "//healthz", "no key", None, 200, "json"),
        ("GET", "//api/v1/nothing", "* key", None, 404, "problem"),
        ("GET", "//api/v1/nothing", "no key", None, 404, "problem"),
    ],
)  # fmt: skip
def test_the_attacks_of_the_issue(
    guarded: falcon.testing.TestClient,
    method: str,
    path: str,
    who: str,
    context: str | None,
    status: int,
    shape: str,
) -> None:
    body = json.dumps({"context": {"environment": context}}).encode() if context else None
    answer = ask(guarded, method, path, CREDENTIALS[who], body)
    assert answer.status_code == status, answer.text
    if shape == "ofrep":
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json["errorCode"] == "GENERAL"
    elif shape == "problem":
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json["status"] == status
    if status in (401, 403):
        assert '"flags"' not in answer.text and "new-checkout" not in answer.text


class _Undeclared:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"secret": True}


def test_every_routed_resource_declares_its_access(store: Store) -> None:
    found = dict(routed(create_app(store)))
    assert "/api/v1/snapshot" in found
    assert [template for template, resource in found.items() if declared(resource) is None] == []


def test_a_resource_that_declares_nothing_is_refused(store: Store, keys: Path) -> None:
    app = create_app(store, middleware=[AccessControl(load_keys(keys))])
    app.add_route("/api/v1/undeclared", _Undeclared())
    client = falcon.testing.TestClient(app)
    for who, headers in CREDENTIALS.items():
        answer = client.simulate_get("/api/v1/undeclared", headers=headers)
        assert answer.status_code == 403, who
        assert "secret" not in answer.text


# A key learns nothing outside its scope ---------------------------------------------------

OUTSIDE = ("production", "PRODUCTION", "qa", "Staging", "staging ", "%00")


@pytest.mark.parametrize("environment", OUTSIDE)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/api/v1/environments/{}/flags"),
        ("GET", "/api/v1/environments/{}/flags?application=web"),
        ("GET", "/api/v1/environments/{}/flags?application=nope"),
        ("GET", "/api/v1/environments/{}/applications/web/flags"),
        ("GET", "/api/v1/environments/{}/applications/nope/flags"),
        ("GET", "/api/v1/environments/{}/flagd.json"),
        ("GET", "/api/v1/flags?environment={}"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        ("POST", "/ofrep/v1/evaluate/flags/banner"),
        ("POST", "/ofrep/v1/evaluate/flags/nope"),
    ],
)
def test_outside_its_scope_a_key_gets_403_whether_it_exists_or_not(
    guarded: falcon.testing.TestClient, method: str, template: str, environment: str
) -> None:
    path, _, query = template.format(quote(environment, safe="%")).partition("?")
    body = json.dumps({"context": {"environment": environment}}).encode()
    answer = guarded.simulate_request(
        method,
        path,
        query_string=query,
        headers=CREDENTIALS["staging key"],
        body=body if method == "POST" else None,
    )
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/environments/PRODUCTION/flags", 404),
        ("/api/v1/environments/production/applications/nope/flags", 404),
        ("/api/v1/environments/PRODUCTION/flagd.json", 404),
    ],
)
def test_inside_its_scope_a_key_learns_what_does_not_exist(
    guarded: falcon.testing.TestClient, path: str, status: int
) -> None:
    assert guarded.simulate_get(path, headers=CREDENTIALS["* key"]).status_code == status


@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/"), min_size=1))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_name_but_its_own_is_403_for_a_scoped_key(
    guarded: falcon.testing.TestClient, environment: str
) -> None:
    path = f"/api/v1/environments/{quote(environment, safe='')}/flags"
    answer = guarded.simulate_get(path, headers=CREDENTIALS["staging key"])
    if environment == "staging":
        assert answer.status_code == 200
    elif environment in (".", ".."):  # dot segments: the router matches them as names too
        assert answer.status_code in (403, 404)
    else:
        assert answer.status_code == 403, (environment, answer.status_code)


# History: who changed a flag, when and why --------------------------------------------------


@pytest.mark.parametrize(
    ("who", "history"), [("staging key", False), ("staging X-API-Key", None), ("* key", True)]
)
def test_history_is_read_with_a_star_key_only(
    guarded: falcon.testing.TestClient, who: str, history: bool | None
) -> None:
    """The rule: a flag's history (the audit log, the dashboard, and the list's and detail's
    created_*/updated_* fields) is read only by keys allowed every environment."""
    headers = CREDENTIALS[who]
    listing = guarded.simulate_get("/api/v1/flags", headers=headers)
    detail = guarded.simulate_get("/api/v1/flags/new-checkout", headers=headers)
    log = guarded.simulate_get("/api/v1/flags/new-checkout/audit", headers=headers)
    page = guarded.simulate_get("/flags/new-checkout", headers=headers)
    if history is None:  # X-API-Key is OFREP's: the API answers 401
        assert {a.status_code for a in (listing, detail, log, page)} == {401}
        return
    items = [*listing.json["items"], detail.json]
    shown = {name: item[name] for item in items for name in HISTORY if item[name] is not None}
    if history:
        assert set(shown) == set(HISTORY)
        assert (log.status_code, page.status_code) == (200, 200)
    else:
        assert shown == {}
        assert "CHG-1234" not in listing.text + detail.text  # the commit's reason
        assert (log.status_code, page.status_code) == (403, 403)


# A real flagserve, raw paths -------------------------------------------------------------


def raw(
    live: Live, method: str, path: str, headers: Headers, body: bytes | None
) -> tuple[int, str]:
    """(status, body) for `path` exactly as given on the request line."""
    connection = http.client.HTTPConnection(live.url.removeprefix("http://"), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.fixture
def guarded_live(built: Built, keys: Path, tmp_path: Path) -> Iterator[Live]:
    server = start_server(built.out, tmp_path / "flagserve.log", {"FLAGSERVE_API_KEYS": str(keys)})
    yield server
    stop_server(server)


LIVE = [
    ("GET", "//api/v1/snapshot", "no key", None, {401}),
    ("GET", "///api/v1/snapshot", "no key", None, {401}),
    ("GET", "/api%2Fv1%2Fsnapshot", "no key", None, {401, 404}),
    ("GET", "/./api/v1/snapshot", "no key", None, {401, 404}),
    ("GET", "/x/../api/v1/snapshot", "no key", None, {401, 404}),
    ("GET", "/API/v1/snapshot", "* key", None, {404}),
    ("GET", "//", "no key", None, {401}),
    ("GET", "//api/v1/snapshot", "staging key", None, {403}),
    ("GET", "//api/v1/snapshot", "* key", None, {200}),
    ("GET", "//api/v1/environments/PRODUCTION/flags", "staging key", None, {403}),
    ("GET", "//api/v1/audit", "staging key", None, {403}),
    ("POST", "//ofrep/v1/evaluate/flags/banner", "no key", "production", {401}),
    ("POST", "//ofrep/v1/evaluate/flags", "wrong key", "production", {401}),
    ("POST", "//ofrep/v1/evaluate/flags", "staging X-API-Key", "production", {403}),
    ("GET", "//audit", "no key", None, {401}),
]


def test_a_real_flagserve_decides_raw_paths_by_their_route(guarded_live: Live) -> None:
    wrong = []
    for method, path, who, context, statuses in LIVE:
        body = json.dumps({"context": {"environment": context}}).encode() if context else None
        headers = {**CREDENTIALS[who], **({"Content-Type": "application/json"} if body else {})}
        status, text = raw(guarded_live, method, path, headers, body)
        if status not in statuses or (status != 200 and "new-checkout" in text):
            wrong.append(f"{method} {path} ({who}): {status} {text[:120]}")
    assert not wrong, "\n".join(wrong)
