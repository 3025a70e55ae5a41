"""Schemathesis against a running flagserve, from the server's own /openapi.json: every
operation, with valid and invalid input, answers without a 5xx and as the document says
(status codes, content types, headers and response schemas).

Bounded: a fixed seed, few examples per operation, no shrinking, and a deadline per call;
about 20 s on the development machine.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, checks

from tests.server.conftest import Live

MAX_EXAMPLES = 60  # per operation and phase

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260102,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "no-shrink": True},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 10,
    }
)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def api_schema(live: Live) -> Any:
    return schemathesis.openapi.from_url(live.url + "/openapi.json", config=CONFIG)


@pytest.fixture(autouse=True)
def _node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis' lazy schemas read and rename `request.node._nodeid` (to show each
    operation), which pytest 9 no longer has: give it one to work on."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# The event stream never ends (its test is tests/server/test_streams.py): every call would
# wait for the request timeout.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/ofrep/v1/events")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_answers_as_its_document_says(case: Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS)
