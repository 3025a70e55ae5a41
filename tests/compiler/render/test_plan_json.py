"""A plan as JSON (compiler.render.plan_json): the document follows schemas/plan.schema.json,
and the schema is strict enough to refuse what the document must not be."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler.render.plan_json import to_json
from tests.compiler.helpers import plan_of, plan_validator
from tests.conftest import PROJECT

A = "description: A\nowner: team-a\nenabled: false\n"
BASE = {"_project.yaml": PROJECT, "team/a.yaml": A, "team/gone.yaml": A}
HEAD = {
    "_project.yaml": PROJECT,
    "moved/a.yaml": A.replace("false", "true"),
    "team/new.yaml": A,
}


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    """A plan with a moved, an added and a removed flag, as its JSON document."""
    return to_json(plan_of(tmp_path, BASE, HEAD))


def test_the_document_follows_the_schema(document: dict[str, Any]) -> None:
    plan_validator().validate(document)
    assert [(flag["key"], flag["kind"]) for flag in document["flags"]] == [
        ("a", "moved"),
        ("gone", "removed"),
        ("new", "added"),
    ]


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda d: {**d, "extra": 1}, id="unknown-key"),
        pytest.param(lambda d: {**d, "format": 2}, id="other-format"),
        pytest.param(
            lambda d: {**d, "flags": [{**d["flags"][0], "kind": "renamed"}]}, id="unknown-kind"
        ),
        pytest.param(
            lambda d: {**d, "flags": [{**d["flags"][2], "base_path": "x.yaml"}]},
            id="added-with-a-base-path",
        ),
        pytest.param(
            lambda d: {**d, "summary": {**d["summary"], "added": -1}}, id="negative-count"
        ),
        pytest.param(lambda d: {**d, "base": {**d["base"], "commit": "main"}}, id="not-a-sha"),
    ],
)
def test_the_schema_is_not_vacuous(
    document: dict[str, Any], broken: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    assert not plan_validator().is_valid(broken(document))
