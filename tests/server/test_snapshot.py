"""`server.resources.snapshot`: the whole snapshot is the build's bytes, and the flat map
services fetch (the hot path) holds each flag's value in an environment, for one
application or none, at a query or a path; names that are not in the build are refused.
And the skeleton end to end: a real build, served by a real gunicorn."""

from __future__ import annotations

import gc

import falcon.testing
import pytest

from core.snapshot import load
from tests.server.conftest import Built, Live

PROBLEMS = "https://gitflags.dev/problems/"


def test_the_whole_snapshot_is_the_bytes_flagc_wrote(
    client: falcon.testing.TestClient, built: Built
) -> None:
    result = client.simulate_get("/api/v1/snapshot")
    assert result.status_code == 200
    assert result.content == (built.out / "snapshot.json").read_bytes()


FLAT_MAPS = [
    ("production", None, {"banner": False, "new-checkout": False, "pricing-engine": True}),
    ("production", "web", {"banner": False, "new-checkout": True, "pricing-engine": True}),
    ("production", "ios", {"banner": False, "new-checkout": False, "pricing-engine": True}),
    ("staging", "ios", {"banner": False, "new-checkout": True, "pricing-engine": True}),
    ("development", None, {"banner": True, "new-checkout": False, "pricing-engine": True}),
]


@pytest.mark.parametrize(("environment", "application", "flags"), FLAT_MAPS)
def test_the_flat_map_at_the_query_and_at_the_path(
    client: falcon.testing.TestClient,
    environment: str,
    application: str | None,
    flags: dict[str, bool],
) -> None:
    route = f"/api/v1/environments/{environment}"
    query = client.simulate_get(
        f"{route}/flags", params={"application": application} if application else None
    )
    assert query.status_code == 200
    assert (query.json["environment"], query.json["application"]) == (environment, application)
    assert query.json["flags"] == flags
    if application:
        path = client.simulate_get(f"{route}/applications/{application}/flags")
        assert path.content == query.content


NO_QA = ("unknown-environment", "There is no environment 'qa'.")
NO_TV = ("unknown-application", "There is no application 'tv'.")
REFUSED = [
    ("/api/v1/environments/qa/flags", 404, NO_QA),
    ("/api/v1/environments/staging/flags?application=tv", 400, NO_TV),
    ("/api/v1/environments/staging/applications/tv/flags", 404, NO_TV),
    ("/api/v1/environments/qa/applications/web/flags", 404, NO_QA),
]


@pytest.mark.parametrize(("path", "status", "problem"), REFUSED)
def test_a_name_not_in_the_build_is_refused(
    client: falcon.testing.TestClient, path: str, status: int, problem: tuple[str, str]
) -> None:
    """An environment in the path that names nothing is a 404; an application in the query
    is a bad query (400), in the path a missing resource (404)."""
    route, _, query = path.partition("?")
    result = client.simulate_get(route, query_string=query or None)
    assert result.status_code == status
    kind, detail = problem
    assert (result.json["type"], result.json["detail"]) == (PROBLEMS + kind, detail)


def test_flat_map_from_gunicorn(live: Live) -> None:
    first = live.get("/api/v1/environments/production/flags", params={"application": "ios"})
    assert first.status_code == 200
    assert first.json()["flags"] == {"banner": False, "new-checkout": False, "pricing-engine": True}
    again = live.get(
        "/api/v1/environments/production/flags",
        params={"application": "ios"},
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304


def test_a_build_loads_with_its_answers_made_or_made_when_asked(built: Built) -> None:
    eager, lazy = load(built.out), load(built.out, answers=False)
    assert {"flat_maps", "evaluator", "flagd_definitions"} <= set(vars(eager))
    assert "flat_maps" not in vars(lazy) and "evaluator" not in vars(lazy)
    assert "flagd_definitions" in vars(lazy)  # verified against the files, so made
    assert lazy.flat_maps == eager.flat_maps  # the same answers, made when first asked for
    assert gc.isenabled()  # the collector runs again once a build has loaded
