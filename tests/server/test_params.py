"""`server.params`: a query parameter is given at most once, and a page is `limit` (1 to
MAX_LIMIT, DEFAULT_LIMIT when not named) and `offset` (0 or more) in ASCII digits; anything
else is a 400 `invalid-parameter` naming the parameter and, for a number, the value. Held
here once, over every parameter and every paged route of the served document; the pages a
route then returns are its own tests' (test_flags, test_audit_api)."""

from __future__ import annotations

from urllib.parse import urlencode

import falcon.testing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from server.errors import PROBLEM_BASE, PROBLEM_JSON, Problem
from server.params import page
from tests.server.contract import api_parameters

PAGES = [
    ("", Page(DEFAULT_LIMIT, 0)),
    ("limit=1", Page(1, 0)),
    (f"limit={MAX_LIMIT}&offset=00", Page(MAX_LIMIT, 0)),
    ("offset=" + "9" * 15, Page(DEFAULT_LIMIT, 10**15 - 1)),
    ("limit=0010&offset=3", Page(10, 3)),
]
REFUSED = [
    ("limit=0", f"limit must be between 1 and {MAX_LIMIT}."),
    (f"limit={MAX_LIMIT + 1}", f"limit must be between 1 and {MAX_LIMIT}."),
    ("limit=-1", "limit must be a whole number, not '-1'."),
    ("limit=abc", "limit must be a whole number, not 'abc'."),
    ("limit=1.5", "limit must be a whole number, not '1.5'."),
    ("limit=", "limit must be a whole number, not ''."),
    ("limit=%2B5", "limit must be a whole number, not '+5'."),
    ("limit=1_0", "limit must be a whole number, not '1_0'."),
    ("limit=%C2%B2", "limit must be a whole number, not '²'."),  # str.isdigit says yes
    ("limit=%201", "limit must be a whole number, not ' 1'."),
    ("offset=-1", "offset must be a whole number, not '-1'."),
    ("offset=x", "offset must be a whole number, not 'x'."),
    ("offset=" + "9" * 16, f"offset must be a whole number, not '{'9' * 16}'."),
    ("limit=1&limit=2", "Give limit at most once."),
    ("offset=1&offset=1", "Give offset at most once."),
]


@pytest.mark.parametrize(("query", "expected"), PAGES)
def test_a_page(query: str, expected: Page) -> None:
    assert page(falcon.testing.create_req(query_string=query)) == expected


@pytest.mark.parametrize(("query", "detail"), REFUSED)
def test_a_page_that_does_not_parse_is_refused_naming_it(query: str, detail: str) -> None:
    with pytest.raises(Problem) as refused:
        page(falcon.testing.create_req(query_string=query))
    assert (refused.value.kind, refused.value.description) == ("invalid-parameter", detail)


@given(limit=st.text(max_size=20), offset=st.text(max_size=20))
def test_any_values_are_a_page_in_range_or_a_refusal(limit: str, offset: str) -> None:
    query = urlencode({"limit": limit, "offset": offset})
    request = falcon.testing.create_req(query_string=query)
    try:
        found = page(request)
    except Problem as refused:
        assert refused.kind == "invalid-parameter"
        return
    assert 1 <= found.limit <= MAX_LIMIT
    assert found.offset >= 0
    assert found == Page(int(limit), int(offset))  # ASCII digits only, as written


def paged(client: falcon.testing.TestClient) -> list[str]:
    """The routes whose documented parameters include `limit`."""
    return sorted({path for path, name in api_parameters(client) if name == "limit"})


def test_every_paged_route_refuses_a_page_that_does_not_parse(
    client: falcon.testing.TestClient,
) -> None:
    routes = paged(client)
    assert len(routes) >= 3  # the flag list and both audit logs
    for path in routes:
        for query, detail in REFUSED:
            answer = client.simulate_get(path, query_string=query)
            assert answer.status_code == 400, (path, query)
            assert answer.headers["Content-Type"] == PROBLEM_JSON
            assert answer.json["type"] == PROBLEM_BASE + "invalid-parameter"
            assert answer.json["detail"] == detail, (path, query)


def test_every_parameter_given_twice_is_refused_naming_it(
    client: falcon.testing.TestClient,
) -> None:
    """Every documented query parameter of every route is read with `param`: a repeated one
    is a 400, never the first or the last taken as a guess."""
    for path, name in api_parameters(client):
        answer = client.simulate_get(path, query_string=f"{name}=a&{name}=b")
        assert answer.status_code == 400, (path, name)
        said = answer.json.get("detail", answer.json.get("errorDetails"))  # OFREP's shape
        assert said == f"Give {name} at most once.", (path, name)
