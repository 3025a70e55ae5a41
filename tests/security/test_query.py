"""Issue 12, item 7: a query parameter that does not parse is a 400, never a 500 with a
traceback: problem+json for the API, an HTML page for the dashboard. `str.isdigit` takes
'²' and '①', which `int` refuses: that was `/?page=²`'s 500.

The API's parameters come from the served /openapi.json; the dashboard's are its forms'.
"""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.bodies import JSON
from server.errors import PROBLEM_JSON
from tests.server.contract import api_parameters

HTML = "text/html; charset=utf-8"
PAGES = {
    "/": ("q", "tag", "owner", "environment", "sort", "page"),
    "/audit": ("actor", "flag", "offset"),
}
NASTY = [
    "²",
    "①",
    "\u0661",
    "-1",
    "1e3",
    "+1",
    "1.0",
    "0x10",
    "0",
    " ",
    "\x00",
    "1\x00",
    "%",
    "9" * 40,
]
DATES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "2026-01-02", "2026-13-01"]
VALUES = st.one_of(
    st.sampled_from([*NASTY, *DATES, "a" * 10_000]),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
)


def assert_refused_cleanly(
    answer: falcon.testing.Result, page: bool, what: object, *, ofrep: bool = False
) -> None:
    """Answered, or refused with a 4xx in the surface's own shape (HTML for pages, OFREP's
    JSON under /ofrep/, problem+json elsewhere), never a 500."""
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text, what
    if answer.status_code == 400:
        shape = HTML if page else JSON if ofrep else PROBLEM_JSON
        assert answer.headers["Content-Type"] == shape, what


@pytest.mark.parametrize(
    ("path", "query", "content_type", "says"),
    [
        ("/", "page=²", HTML, "page must be a whole number"),
        ("/", "page=①", HTML, "page must be a whole number"),
        ("/", "page=-1", HTML, "page must be a whole number"),
        ("/", "page=1e3", HTML, "page must be a whole number"),
        ("/", "page=0", HTML, "page must be a whole number"),
        ("/", "page=%00", HTML, "page must be a whole number"),
        ("/audit", "offset=²", HTML, "offset must be a whole number"),
        ("/audit", "offset=%D9%A1", HTML, "offset must be a whole number"),  # Arabic-Indic 1
        ("/", "sort=%C2%B2", HTML, "Sort by one of"),
        ("/api/v1/flags", "limit=²", PROBLEM_JSON, "limit must be a whole number"),
        ("/api/v1/flags", "offset=①", PROBLEM_JSON, "offset must be a whole number"),
        ("/api/v1/audit", "offset=²", PROBLEM_JSON, "offset must be a whole number"),
        ("/api/v1/audit", "since=²", PROBLEM_JSON, "since must be an ISO 8601"),
        ("/api/v1/audit", "since=%00", PROBLEM_JSON, "since must be an ISO 8601"),
        ("/api/v1/environments/production/flags", "application=a&application=b",
         PROBLEM_JSON, "Give application at most once"),
    ],
)  # fmt: skip
def test_a_parameter_that_does_not_parse_is_a_400(
    client: falcon.testing.TestClient, path: str, query: str, content_type: str, says: str
) -> None:
    answer = client.simulate_get(path, query_string=query)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.headers["Content-Type"] == content_type
    assert says in answer.text


def test_the_document_names_the_api_parameters(client: falcon.testing.TestClient) -> None:
    names = {name for _, name in api_parameters(client)}
    assert {"limit", "offset", "since", "actor", "flag", "tag", "environment"} <= names


FUZZING = settings(  # one client for all examples: the fixture is not per example
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@given(data=st.data())
@FUZZING
def test_no_api_parameter_value_is_a_500(
    client: falcon.testing.TestClient, data: st.DataObject
) -> None:
    path, name = data.draw(st.sampled_from(api_parameters(client)))
    values: Any = data.draw(st.one_of(VALUES, st.lists(VALUES, min_size=2, max_size=3)))
    answer = client.simulate_get(path, params={name: values})
    ofrep = path.startswith("/ofrep/")
    assert_refused_cleanly(answer, page=False, what=(path, name, values), ofrep=ofrep)


@given(data=st.data())
@FUZZING
def test_no_dashboard_parameter_value_is_a_500(
    client: falcon.testing.TestClient, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(sorted(PAGES)))
    values = st.one_of(VALUES, st.lists(VALUES, min_size=2, max_size=3))  # repeated: first
    query: Any = data.draw(st.dictionaries(st.sampled_from(PAGES[path]), values, min_size=1))
    answer = client.simulate_get(path, params=query)
    assert_refused_cleanly(answer, page=True, what=(path, query))
    if answer.status_code == 400:
        assert "<html" in answer.text.lower()
