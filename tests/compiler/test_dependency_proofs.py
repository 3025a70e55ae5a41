"""dependency-partial: the compiler accepts a dependency only when it can prove it, and
what it accepts holds for every context (brute force over generated trees and contexts)."""

from __future__ import annotations

import copy
import datetime
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import emit
from compiler.diagnostics import Severity
from compiler.pipeline import compile_tree
from core.evaluate import Evaluator

PROJECT = {"environments": ["staging", "production"], "applications": ["web"]}
COUNTRIES = ["NL", "BE", "DE"]
PLANS = ["free", "pro"]
SEEDS = ["shared", "other"]
KEYS = [f"user-{n}" for n in range(60)]
CONTEXTS = [
    {
        **({"targetingKey": key} if key is not None else {}),
        **({"country": country} if country is not None else {}),
        **({"plan": plan} if plan is not None else {}),
    }
    for key, country, plan in itertools.product([*KEYS, None], [*COUNTRIES, None], [*PLANS, None])
]


def write_tree(root: Path, flags: dict[str, dict[str, Any]]) -> Path:
    folder = root / "flags"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    (folder / "_project.yaml").write_text(yaml.safe_dump(PROJECT), encoding="utf-8")
    for key, flag in flags.items():
        text = yaml.safe_dump({"description": key, "owner": "me", **flag}, sort_keys=False)
        (folder / f"{key}.yaml").write_text(text, encoding="utf-8")
    return folder


def compiled(folder: Path) -> tuple[list[str], dict[str, Any] | None]:
    result = compile_tree(folder, today=datetime.date(2026, 1, 1))
    errors = [d.code for d in result.diagnostics if d.severity is Severity.ERROR]
    if errors or result.grid is None:
        return errors, None
    return [], emit.snapshot(result.grid, result.flags, result.resolved)


def ungated(document: dict[str, Any]) -> Evaluator:
    """Each flag as declared: what it would serve with no dependency gating."""
    plain = copy.deepcopy(document)
    for flag in plain["flags"].values():
        flag["depends_on"], flag["dependents"] = [], []
    return Evaluator(plain)


def broken_context(document: dict[str, Any]) -> tuple[str, str, str | None, Any] | None:
    """A (dependent, dependency, cell, context) where the dependent is on and the
    dependency off, as declared; None when there is none."""
    evaluator = ungated(document)
    flags = document["flags"]
    for environment in document["environments"]:
        for application in [None, *document["applications"]]:
            for context in CONTEXTS:
                found = evaluator.evaluate_all(environment, application, context)
                for key, flag in flags.items():
                    if found[key].variant == flag["off"]:
                        continue
                    for dependency in flag["depends_on"]:
                        if found[dependency].variant == flags[dependency]["off"]:
                            return key, dependency, f"{environment}/{application}", context
    return None


conditions = st.one_of(
    st.sampled_from(COUNTRIES).map(lambda c: {"country": c}),
    st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=2, unique=True).map(
        lambda cs: {"country": cs}
    ),
    st.sampled_from(PLANS).map(lambda p: {"plan": {"not": [p]}}),
    st.tuples(st.sampled_from(COUNTRIES), st.sampled_from(PLANS)).map(
        lambda cp: {"country": cp[0], "plan": cp[1]}
    ),
)


@st.composite
def rules(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for _ in range(draw(st.integers(0, 2))):
        rule: dict[str, Any] = {}
        if draw(st.booleans()):
            rule["when"] = draw(conditions)
        if draw(st.booleans()):
            on = draw(st.sampled_from([0, 10, 20, 50, 100]))
            rule["rollout"] = {"on": on, "off": 100 - on}
            rule["seed"] = draw(st.sampled_from(SEEDS))
        else:
            rule["serve"] = draw(st.sampled_from(["on", "off"]))
        found.append(rule)
    return found


@st.composite
def trees(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    count = draw(st.integers(2, 3))
    flags: dict[str, dict[str, Any]] = {}
    for index in range(count):
        flag: dict[str, Any] = {"enabled": draw(st.booleans())}
        if index > 0:
            flag["depends_on"] = [f"f{draw(st.integers(0, index - 1))}"]
        top = draw(rules())
        if top:
            flag["rules"] = top
        if draw(st.booleans()):
            flag["environments"] = {"production": {"rules": draw(rules())}}
        flags[f"f{index}"] = flag
    return flags


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=trees())
def test_an_accepted_tree_keeps_every_dependency_for_every_context(
    tmp_path: Path, tree: dict[str, dict[str, Any]]
) -> None:
    _, document = compiled(write_tree(tmp_path, tree))
    if document is None:
        return
    assert broken_context(document) is None, tree


def rollout(on: int, seed: str = "shared", **more: Any) -> dict[str, Any]:
    return {"rollout": {"on": on, "off": 100 - on}, "seed": seed, **more}


PROVED = [
    pytest.param(
        {"enabled": False, "rules": [rollout(20)]},
        {"enabled": False, "rules": [rollout(10)]},
        id="the same seed and by, a smaller share",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"country": ["NL", "BE"]}, "serve": "on"}]},
        {"enabled": False, "rules": [{"when": {"country": "NL"}, "serve": "on"}]},
        id="narrower conditions",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"plan": {"not": ["free"]}}, "serve": "on"}]},
        {"enabled": False, "rules": [{"when": {"plan": "pro"}, "serve": "on"}]},
        id="a listed value the other's `not` allows",
    ),
    pytest.param(
        {"enabled": True, "rules": [{"when": {"country": "DE"}, "serve": "off"}]},
        {"enabled": False, "rules": [{"when": {"country": "NL"}, "serve": "on"}]},
        id="the dependency's off rule cannot match",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"seats": [1.0, 2]}, "serve": "on"}]},
        {"enabled": False, "rules": [{"when": {"seats": [2.0, 1]}, "serve": "on"}]},
        id="1 is 1.0",
    ),
]


@pytest.mark.parametrize(("dependency", "dependent"), PROVED)
def test_a_proof_the_compiler_knows_is_accepted(
    tmp_path: Path, dependency: dict[str, Any], dependent: dict[str, Any]
) -> None:
    tree = {"base": dependency, "top": {**dependent, "depends_on": ["base"]}}
    assert compiled(write_tree(tmp_path, tree))[0] == []


UNPROVED = [
    pytest.param(
        {"enabled": False, "rules": [rollout(10)]},
        {"enabled": False, "rules": [rollout(20)]},
        id="a larger share",
    ),
    pytest.param(
        {"enabled": False, "rules": [rollout(20, seed="other")]},
        {"enabled": False, "rules": [rollout(10)]},
        id="another seed",
    ),
    pytest.param(
        {"enabled": False, "rules": [rollout(20, by="account")]},
        {"enabled": False, "rules": [rollout(10)]},
        id="another by",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"country": "NL"}, "serve": "on"}]},
        {"enabled": False, "rules": [{"when": {"country": ["NL", "BE"]}, "serve": "on"}]},
        id="wider conditions",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"country": "NL"}, "serve": "on"}]},
        {"enabled": True},
        id="a dependent on everywhere",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"beta": [1]}, "serve": "on"}]},
        {"enabled": False, "rules": [{"when": {"beta": [True]}, "serve": "on"}]},
        id="true is not 1",
    ),
    pytest.param(
        {"enabled": False, "rules": [{"when": {"beta": {"not": [0]}}, "serve": "on"}]},
        {"enabled": False, "rules": [{"when": {"beta": {"not": [False]}}, "serve": "on"}]},
        id="false is not 0",
    ),
]


@pytest.mark.parametrize(("dependency", "dependent"), UNPROVED)
def test_what_the_compiler_cannot_prove_is_a_partial_dependency(
    tmp_path: Path, dependency: dict[str, Any], dependent: dict[str, Any]
) -> None:
    tree = {"base": dependency, "top": {**dependent, "depends_on": ["base"]}}
    assert compiled(write_tree(tmp_path, tree))[0] == ["dependency-partial"]
