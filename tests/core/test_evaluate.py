"""core.evaluate against the flagd evaluator the project pins (openfeature-flagd-core 2.0.0
over panzi-json-logic), loaded with core.flagd's definitions of the same flags: tables of
each operator, reason and gating case, the bucketing's pieces, and a differential test on
generated format-2 flag sets and contexts. Until the compiler emits format 2, the flags are
built by `make_flag` (tests/core/flagd_oracle.py, with the oracle and the generators)."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2
import mmh3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_logic.builtins import to_string
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import sem_ver

from compiler.cli import main
from core import flagd
from core.evaluate import Evaluation, Evaluator, bucket_hash, cat_text
from core.rules import attribute_problem, value_key
from tests.core.flagd_oracle import (
    APPLICATIONS,
    ENVIRONMENTS,
    ask_flagd,
    contexts,
    flag_sets,
    make_document,
    make_flag,
    oracle,
    our_context,
    rollout,
    when,
)


def agree(document: Mapping[str, Any], key: str, application: str | None, context: Any) -> str:
    """The variant both evaluators serve (asserting they agree) in every environment."""
    served = set()
    evaluator = Evaluator(document)
    full = our_context(application, context)
    for environment in ENVIRONMENTS:
        ours = evaluator.evaluate(key, environment, application, full)
        core = oracle(document, environment)
        kind = document["flags"][key]["type"]
        assert ask_flagd(core, kind, key, application, full) == (ours.variant, ours.value)
        served.add(ours.variant)
    assert len(served) == 1
    return served.pop()


# Operators ---------------------------------------------------------------------------------

ABSENT = object()
OPERATORS = [  # attribute, operator, argument, the attribute's value, matches
    ("country", "in", ["NL", "BE"], "NL", True),
    ("country", "in", ["NL", "BE"], "DE", False),
    ("country", "in", ["NL", "BE"], ABSENT, False),
    ("country", "in", ["NL", "BE"], None, False),
    ("country", "in", ["NL", "BE"], ["NL"], False),
    ("seats", "in", [1, 2.5], 1, True),
    ("seats", "in", [1, 2.5], 1.0, True),
    ("seats", "in", [1, 2.5], 2.5, True),
    ("seats", "in", [1, 2.5], True, False),
    ("seats", "in", [1, 2.5], "1", False),
    ("seats", "in", [0], False, False),
    ("seats", "in", [0], 0.0, True),
    ("beta", "in", [True], True, True),
    ("beta", "in", [True], 1, False),
    ("beta", "in", [True], 1.0, False),
    ("beta", "in", [True], "true", False),
    ("beta", "in", [False], 0, False),
    ("beta", "in", [False, "x", 3], False, True),
    ("beta", "in", [False, "x", 3], 3.0, True),
    ("beta", "in", [False, "x", 3], "x", True),
    ("beta", "in", [False, "x", 3], "3", False),
    ("plan", "not", ["free"], "pro", True),
    ("plan", "not", ["free"], "free", False),
    ("plan", "not", ["free"], ABSENT, False),
    ("plan", "not", ["free"], None, False),
    ("plan", "not", ["free"], 3, True),
    ("plan", "not", [1], True, True),
    ("plan", "not", [1], 1, False),
    ("email", "starts_with", "ab", "abc", True),
    ("email", "starts_with", "ab", "xab", False),
    ("email", "starts_with", "1", 12, False),
    ("email", "starts_with", "ab", ["abc"], False),
    ("email", "ends_with", "@example.com", "a@example.com", True),
    ("email", "ends_with", "@example.com", "a@example.org", False),
    ("email", "ends_with", "@example.com", ABSENT, False),
    ("seats", "gt", 10, 11, True),
    ("seats", "gt", 10, 10, False),
    ("seats", "gt", 10, 10.5, True),
    ("seats", "gt", 10, "11", False),
    ("seats", "gt", 0, True, False),
    ("seats", "gte", 10, 10.0, True),
    ("seats", "gte", 10, 9, False),
    ("seats", "lt", 1, 0, True),
    ("seats", "lt", 1, False, False),
    ("seats", "lt", 1, None, False),
    ("seats", "lt", 1, "0", False),
    ("seats", "lte", 1, True, False),
    ("seats", "lte", 1, 1, True),
    ("seats", "lte", 1.5, -(10**30), True),
    ("version", "semver", [">=", "2.3.0"], "2.3.0", True),
    ("version", "semver", [">=", "2.3.0"], "2.2.9", False),
    ("version", "semver", [">=", "2.3.0"], "v2.4", True),
    ("version", "semver", [">=", "2.3.0"], "2.3", True),
    ("version", "semver", [">=", "2.3.0"], "2", False),
    ("version", "semver", [">=", "2.3.0"], 3, False),
    ("version", "semver", [">=", "2.3.0"], 3.5, False),
    ("version", "semver", [">=", "2.3.0"], "abc", False),
    ("version", "semver", [">=", "2.3.0"], ABSENT, False),
    ("version", "semver", [">=", "2.3.0"], "2.3.0-beta", False),
    ("version", "semver", [">=", "2.3.0"], "3.0.0+build.5", True),
    ("version", "semver", ["^", "2.3.0"], "2.9.1", True),
    ("version", "semver", ["^", "2.3.0"], "3.0.0", False),
    ("version", "semver", ["~", "2.3.0"], "2.3.9", True),
    ("version", "semver", ["~", "2.3.0"], "2.4.0", False),
    ("version", "semver", ["!=", "2.3.0"], "2.3.1", True),
    ("version", "semver", ["!=", "2.3.0"], "junk", False),
    ("version", "semver", ["=", "1.2.0"], "1.2", True),
    ("version", "semver", ["=", "1.2.0"], "V1.2.0", True),
    ("version", "semver", ["<", "1.2.0"], "1.2.0-rc.1", True),
    ("version", "semver", ["<=", "1.2.0"], "1.1.99", True),
    ("version", "semver", [">", "1.2.0"], "1.2.0", False),
    # flagd's `var`: a dotted name is a path into nested objects (the documented quirk).
    ("user.tier", "in", ["gold"], {"tier": "gold"}, True),
    ("name.length", "gt", 3, "abcd", True),
    ("tags.1", "in", ["b"], ["a", "b"], True),
    ("tags.01", "in", ["b"], ["a", "b"], False),
    ("tags.9", "in", ["b"], ["a", "b"], False),
    ("tags.x", "in", ["b"], ["a", "b"], False),
    ("tags.x", "in", ["b"], 5, False),
]


@pytest.mark.parametrize(
    ("attribute", "operator", "argument", "value", "matches"),
    OPERATORS,
    ids=[f"{a}-{o}-{g!r}-{v!r}" for a, o, g, v, _ in OPERATORS],
)
def test_each_operator_means_what_flagd_makes_of_its_targeting(
    attribute: str, operator: str, argument: Any, value: Any, matches: bool
) -> None:
    document = make_document(
        {"f": make_flag(rules={e: [when(attribute, operator, argument)] for e in ENVIRONMENTS})}
    )
    name = attribute.split(".", maxsplit=1)[0]
    context: dict[str, Any] = {"targetingKey": "user-1"}
    if value is not ABSENT:
        context[name] = value
    assert agree(document, "f", None, context) == ("on" if matches else "off")


EQUALITY_VALUES = st.one_of(
    st.sampled_from(
        [True, False, 0, 1, -1, 0.0, 1.0, 2.5, "1", "True", "true", "", 2**53, 2**53 + 1]
    ),
    st.integers(-3, 3),
    st.floats(-3, 3).map(lambda x: round(x * 2) / 2),
    st.text(max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(EQUALITY_VALUES, EQUALITY_VALUES)
def test_value_key_is_the_equality_flagd_gives_in_and_not(listed: Any, given_: Any) -> None:
    """`core.rules.value_key`, which compiler.variants and compiler.dependency_proofs use
    too: two values are equal exactly where flagd's `in` (and so `not`) says so."""
    equal = value_key(listed) == value_key(given_)
    for operator, matches in (("in", equal), ("not", not equal)):
        document = make_document(
            {"f": make_flag(rules={e: [when("x", operator, [listed])] for e in ENVIRONMENTS})}
        )
        assert agree(document, "f", None, {"x": given_}) == ("on" if matches else "off")


def test_a_dotted_key_is_not_read_as_one_attribute() -> None:
    document = make_document(
        {"f": make_flag(rules={e: [when("user.tier", "in", ["gold"])] for e in ENVIRONMENTS})}
    )
    assert agree(document, "f", None, {"user.tier": "gold"}) == "off"


NAMES = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8).filter(
    lambda name: name.strip() != "" and attribute_problem(name) is None
)


@settings(max_examples=60, deadline=None)
@given(NAMES)
def test_a_name_flagc_accepts_is_one_top_level_key_to_flagd_too(name: str) -> None:
    """What a flat context (OFREP's, the flat map's query parameters) sends under a name is
    what both evaluators compare, for every name core.rules.attribute_problem accepts."""
    conditions = [when(name, "in", ["x"])]
    by = [rollout([("on", 100), ("off", 0)], by=name)]
    for rules in (conditions, by):
        document = make_document({"f": make_flag(rules=dict.fromkeys(ENVIRONMENTS, rules))})
        assert agree(document, "f", None, {name: "x"}) == "on"
        assert agree(document, "f", None, {f"{name}!": "x"}) == "off"


def test_the_names_flagc_refuses_are_read_differently_by_flagd() -> None:
    """`$flagd...` is flagd's own, and the two evaluators part on it: flagc refuses it, and
    every `$` name. It refuses dotted names too: both read them as paths into nested
    objects (the table above), which the flat map's query parameters cannot send."""
    rules = {e: [when("$flagd.flagKey", "in", ["f"])] for e in ENVIRONMENTS}
    document = make_document({"f": make_flag(rules=rules)})
    evaluator, core = Evaluator(document), oracle(document, "production")
    assert evaluator.evaluate("f", "production", None, {}).variant == "off"
    assert ask_flagd(core, "boolean", "f", None, {}) == ("on", True)
    assert attribute_problem("$flagd.flagKey") is not None
    assert attribute_problem("user.tier") is not None
    assert attribute_problem("$region") is not None
    assert attribute_problem("account tier") is None


def test_all_conditions_of_a_rule_must_hold_and_the_first_rule_that_matches_serves() -> None:
    variants = {"blue": "#00f", "green": "#0f0", "red": "#f00"}
    rules = [
        {"when": {"country": {"in": ["NL"]}, "plan": {"not": ["free"]}}, "serve": "green"},
        {"when": {"country": {"in": ["NL", "BE"]}}, "serve": "red"},
    ]
    document = make_document(
        {
            "f": make_flag(
                variants=variants,
                off="blue",
                cell=("blue", "default"),
                rules=dict.fromkeys(ENVIRONMENTS, rules),
                kind="string",
            )
        }
    )
    assert agree(document, "f", None, {"country": "NL", "plan": "pro"}) == "green"
    assert agree(document, "f", None, {"country": "NL", "plan": "free"}) == "red"
    assert agree(document, "f", None, {"country": "NL"}) == "red"
    assert agree(document, "f", None, {"country": "DE", "plan": "pro"}) == "blue"


# Reasons and gating -------------------------------------------------------------------------


def evaluate(
    flags: Mapping[str, dict[str, Any]], key: str, app: str | None, **context: Any
) -> Evaluation:
    document = make_document(flags)
    result = Evaluator(document).evaluate(key, "production", app, our_context(app, context))
    agree(document, key, app, context)  # flagd serves the same, wherever it is asked
    return result


ON_IN_WEB = {
    "production": {"web": ("on", "application")},
    "staging": {"web": ("on", "application")},
}
COUNTRY_RULE = {e: [when("country", "in", ["NL"])] for e in ENVIRONMENTS}
ROLLOUT_RULE = {e: [rollout([("on", 50), ("off", 50)], by="account")] for e in ENVIRONMENTS}

REASONS = [  # flag, application, context, expected evaluation
    (make_flag(), None, {}, Evaluation("off", False, "STATIC")),
    (make_flag(cell=("on", "environment")), None, {}, Evaluation("on", True, "TARGETING_MATCH")),
    (make_flag(applications=ON_IN_WEB), "web", {}, Evaluation("on", True, "TARGETING_MATCH")),
    (make_flag(applications=ON_IN_WEB), "ios", {}, Evaluation("off", False, "STATIC")),
    (make_flag(applications=ON_IN_WEB), "tv", {}, Evaluation("off", False, "STATIC")),
    (
        make_flag(rules=COUNTRY_RULE),
        None,
        {"country": "NL"},
        Evaluation("on", True, "TARGETING_MATCH"),
    ),
    (make_flag(rules=COUNTRY_RULE), None, {"country": "BE"}, Evaluation("off", False, "DEFAULT")),
    (
        make_flag(rules=COUNTRY_RULE, applications=ON_IN_WEB),
        "web",
        {},
        Evaluation("on", True, "DEFAULT"),
    ),
    (make_flag(rules=ROLLOUT_RULE), None, {"account": "a-1"}, Evaluation("off", False, "SPLIT")),
    (make_flag(rules=ROLLOUT_RULE), None, {"account": "a-9"}, Evaluation("on", True, "SPLIT")),
    (
        make_flag(rules=ROLLOUT_RULE),
        None,
        {"targetingKey": "a-3"},
        Evaluation("off", False, "DEFAULT"),
    ),
]


@pytest.mark.parametrize(("flag", "app", "context", "expected"), REASONS)
def test_the_reason_says_which_step_decided(
    flag: dict[str, Any], app: str | None, context: dict[str, Any], expected: Evaluation
) -> None:
    assert evaluate({"f": flag}, "f", app, **context) == expected


ON = make_flag(cell=("on", "environment"))
OFF = make_flag()


def test_a_dependency_that_is_off_disables_its_dependent_first_of_its_direct_ones() -> None:
    flags = {
        "a": ON,
        "b": OFF,
        "c": OFF,
        "f": make_flag(cell=("on", "environment"), depends_on=["a", "b", "c"]),
    }
    assert evaluate(flags, "f", None) == Evaluation("off", False, "DISABLED", "b")
    # Even where the flag is off anyway, the reason names the dependency.
    flags["f"] = make_flag(depends_on=["c"])
    assert evaluate(flags, "f", None) == Evaluation("off", False, "DISABLED", "c")


def test_gating_is_transitive_and_names_the_direct_dependency() -> None:
    flags = {
        "root": make_flag(rules=COUNTRY_RULE),
        "middle": make_flag(cell=("on", "environment"), depends_on=["root"]),
        "top": make_flag(cell=("on", "environment"), depends_on=["middle"]),
    }
    assert evaluate(flags, "top", None, country="BE") == Evaluation(
        "off", False, "DISABLED", "middle"
    )
    assert evaluate(flags, "middle", None, country="BE") == Evaluation(
        "off", False, "DISABLED", "root"
    )
    assert evaluate(flags, "top", None, country="NL") == Evaluation("on", True, "TARGETING_MATCH")
    every = Evaluator(make_document(flags)).evaluate_all("production", None, {"country": "BE"})
    assert [every[key].reason for key in ("root", "middle", "top")] == [
        "DEFAULT",
        "DISABLED",
        "DISABLED",
    ]


def test_gating_follows_the_application() -> None:
    flags = {
        "dep": make_flag(applications=ON_IN_WEB),
        "f": make_flag(cell=("on", "environment"), depends_on=["dep"]),
    }
    assert evaluate(flags, "f", "web") == Evaluation("on", True, "TARGETING_MATCH")
    assert evaluate(flags, "f", "ios") == Evaluation("off", False, "DISABLED", "dep")
    assert evaluate(flags, "f", None) == Evaluation("off", False, "DISABLED", "dep")


def test_a_flag_or_dependency_without_off_is_never_gated_or_off() -> None:
    colours = {"blue": "b", "green": "g"}
    flags = {
        "dep": make_flag(variants=colours, off=None, cell=("blue", "default"), kind="string"),
        "f": make_flag(cell=("on", "environment"), depends_on=["dep"]),
        "g": make_flag(
            variants=colours,
            off=None,
            cell=("green", "environment"),
            depends_on=["f"],
            kind="string",
        ),
        "off": OFF,
    }
    assert evaluate(flags, "f", None) == Evaluation("on", True, "TARGETING_MATCH")
    flags["f"] = make_flag(cell=("on", "environment"), depends_on=["off"])
    assert evaluate(flags, "g", None) == Evaluation("green", "g", "TARGETING_MATCH")


def test_targeted_names_the_flags_whose_cell_depends_on_the_context() -> None:
    flags = {
        "ruled": make_flag(rules={"production": [when("country", "in", ["NL"])]}),
        "gated": make_flag(cell=("on", "environment"), depends_on=["ruled"]),
        "off-anyway": make_flag(depends_on=["ruled"]),
        "web-only": make_flag(
            applications={"production": {"web": ("on", "application")}}, depends_on=["ruled"]
        ),
        "static": ON,
        "on-static": make_flag(cell=("on", "environment"), depends_on=["static"]),
        "deep": make_flag(cell=("on", "environment"), depends_on=["gated"]),
    }
    evaluator = Evaluator(make_document(flags))
    assert evaluator.targeted("production", None) == {"ruled", "gated", "deep"}
    assert evaluator.targeted("production", "web") == {"ruled", "gated", "deep", "web-only"}
    assert evaluator.targeted("staging", None) == set()


def test_a_dependency_cycle_is_refused() -> None:
    flags = {"a": make_flag(depends_on=["b"]), "b": make_flag(depends_on=["a"])}
    with pytest.raises(ValueError, match="cycle"):
        Evaluator(make_document(flags))


def test_typed_values_are_served_as_declared() -> None:
    flags = {
        "limit": make_flag(
            variants={"low": 10, "high": 1000},
            off="low",
            cell=("high", "environment"),
            kind="integer",
        ),
        "ratio": make_flag(
            variants={"half": 0.5, "all": 1.0}, off=None, cell=("all", "default"), kind="float"
        ),
        "layout": make_flag(
            variants={"a": {"cols": 2}, "b": {"cols": [1, 2]}},
            off="a",
            cell=("b", "environment"),
            kind="object",
        ),
    }
    assert evaluate(flags, "limit", None).value == 1000
    assert evaluate(flags, "ratio", None) == Evaluation("all", 1.0, "STATIC")
    assert evaluate(flags, "layout", None).value == {"cols": [1, 2]}


# Bucketing ---------------------------------------------------------------------------------

TEXTS = st.text(max_size=300) | st.sampled_from(
    ["", "a" * 23, "b" * 24, "c" * 255, "d" * 256, "é" * 40]
)


@given(TEXTS)
def test_the_bucket_hash_is_murmur3_of_the_canonical_cbor_of_the_text(text: str) -> None:
    assert bucket_hash(text) == mmh3.hash(cbor2.dumps(text, canonical=True), signed=False)


def test_the_bucket_hash_of_a_long_text() -> None:
    text = "x" * 70_000
    assert bucket_hash(text) == mmh3.hash(cbor2.dumps(text, canonical=True), signed=False)


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=6,
)


@given(VALUES)
def test_cat_text_is_json_logics_to_string(value: Any) -> None:
    assert cat_text(value) == to_string(value)


@given(
    keys=st.lists(st.text(min_size=1, max_size=12), min_size=20, max_size=60, unique=True),
    shares=st.tuples(st.integers(0, 100), st.integers(0, 100)).map(sorted),
)
def test_a_rollout_is_sticky_and_monotonic(keys: list[str], shares: list[int]) -> None:
    low, high = shares

    def on_for(share: int) -> set[str]:
        rules = {e: [rollout([("on", share), ("off", 100 - share)])] for e in ENVIRONMENTS}
        evaluator = Evaluator(make_document({"f": make_flag(rules=rules)}))
        return {
            k
            for k in keys
            if evaluator.evaluate("f", "production", None, {"targetingKey": k}).variant == "on"
        }

    assert on_for(low) == on_for(low)
    assert on_for(low) <= on_for(high)
    if low == 0:
        assert on_for(low) == set()
    if high == 100:
        assert on_for(high) == set(keys)


# The differential test ----------------------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flags=flag_sets(), generated=st.lists(contexts(), min_size=3, max_size=8))
def test_the_evaluator_serves_what_flagd_serves_from_our_definitions(
    flags: dict[str, dict[str, Any]], generated: list[dict[str, Any]]
) -> None:
    document = make_document(flags)
    evaluator = Evaluator(document)
    for environment in ENVIRONMENTS:
        core = oracle(document, environment)
        for application in [None, *APPLICATIONS, "tv"]:  # tv: an application of no row
            for context in generated:
                full = our_context(application, context)
                every = evaluator.evaluate_all(environment, application, full)
                for key, flag in flags.items():
                    ours = evaluator.evaluate(key, environment, application, full)
                    assert every[key] == ours
                    theirs = ask_flagd(core, flag["type"], key, application, full)
                    assert theirs == (ours.variant, ours.value), (
                        key,
                        environment,
                        application,
                        context,
                    )


def test_the_definitions_are_json_flagd_reads() -> None:
    flags = {
        "dep": make_flag(rules=COUNTRY_RULE),
        "f": make_flag(cell=("on", "environment"), depends_on=["dep"]),
    }
    definition = json.loads(flagd.definitions(make_document(flags))["production"])
    gate = definition["flags"]["f"]["targeting"]["if"]
    assert gate[0] == {"===": [definition["flags"]["dep"]["targeting"], "off"]}
    assert gate[1:] == ["off", "on"]


# End to end: `flagc build`'s snapshot and flagd files ---------------------------------------

ROOT = Path(__file__).resolve().parents[2]
TREES = {
    "example": ROOT / "flags",
    "typed-rules": ROOT / "tests" / "compiler" / "corpus" / "valid-typed-rules" / "flags",
}
NOISE = [None, True, False, 0, 1, 3, 12.5, 50, 1000, "zz", "", "2.3.0", "v3", "a@example.com"]


def attribute_values(document: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Per attribute a rule of `document` reads, values worth trying: its rules' own
    arguments (and a little beyond them) and some noise."""
    found: dict[str, list[Any]] = {}
    for flag in document["flags"].values():
        for row in flag["resolved"].values():
            for rule in row["rules"]:
                if "by" in rule:
                    found.setdefault(rule["by"], [])
                for attribute, operators in rule["when"].items():
                    values = found.setdefault(attribute, [])
                    for operator, argument in operators.items():
                        if operator in ("in", "not"):
                            values.extend(argument)
                        elif operator == "semver":
                            values.extend([argument[1], f"{argument[1]}-rc.1", "99.0"])
                        elif operator in ("starts_with", "ends_with"):
                            values.extend([f"x{argument}", f"{argument}x"])
                        else:
                            values.extend([argument, argument + 1, argument - 0.5])
    return {attribute: [*values, *NOISE] for attribute, values in found.items()}


def sample_contexts(document: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    generator = random.Random(15)
    values = attribute_values(document)
    contexts = []
    for index in range(count):
        context: dict[str, Any] = {"targetingKey": f"user-{index}"}
        for attribute, pool in values.items():
            if generator.random() < 0.75:
                context[attribute] = generator.choice(pool)
        contexts.append(context)
    return contexts


@pytest.mark.parametrize("tree", TREES.values(), ids=TREES.keys())
def test_a_built_tree_is_served_alike_by_the_evaluator_and_by_flagd(
    tree: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(tree, tmp_path / "flags")
    assert main(["build", str(folder), "-o", str(tmp_path / "out")]) == 0
    document = json.loads((tmp_path / "out" / "snapshot.json").read_bytes())
    evaluator = Evaluator(document)
    contexts = sample_contexts(document, 200)
    reasons: set[str] = set()
    for environment in document["environments"]:
        core = FlagdCore()
        core.set_flags((tmp_path / "out" / "flagd" / f"{environment}.json").read_text())
        for application in [None, *document["applications"]]:
            for context in contexts:
                full = our_context(application, context)
                every = evaluator.evaluate_all(environment, application, full)
                for key, flag in document["flags"].items():
                    found = every[key]
                    reasons.add(found.reason)
                    theirs = ask_flagd(core, flag["type"], key, application, full)
                    assert theirs == (found.variant, found.value), (key, environment, context)
    assert {"TARGETING_MATCH", "SPLIT", "DEFAULT"} <= reasons


def test_a_bucketing_value_that_is_not_unicode_does_not_match_the_rollout() -> None:
    rules = {e: [rollout([("on", 100), ("off", 0)], by="account")] for e in ENVIRONMENTS}
    evaluator = Evaluator(make_document({"f": make_flag(rules=rules)}))
    found = evaluator.evaluate("f", "production", None, {"account": "\ud800"})
    assert found == Evaluation("off", False, "DEFAULT")


def test_an_unknown_application_has_the_environments_cell_and_no_cache_of_its_own() -> None:
    flags = {"f": make_flag(rules=COUNTRY_RULE), "g": make_flag(applications=ON_IN_WEB)}
    evaluator = Evaluator(make_document(flags))
    for name in ("tv", "radio"):
        assert evaluator.targeted("production", name) == evaluator.targeted("production", None)
        assert evaluator.evaluate_all("production", name, {}) == evaluator.evaluate_all(
            "production", None, {}
        )
    with pytest.raises(KeyError):
        evaluator.evaluate_all("nowhere", None, {})


IDENTIFIERS = st.sampled_from(["alpha", "beta", "rc", "0", "1", "2", "10", "x-1", "01", "1a"])
VERSION_TEXTS = st.one_of(
    st.builds(
        lambda prefix, numbers, pre, build: prefix + ".".join(map(str, numbers)) + pre + build,
        st.sampled_from(["", "v", "V"]),
        st.lists(st.integers(0, 12), min_size=1, max_size=4),
        st.lists(IDENTIFIERS, max_size=3).map(lambda ids: "-" + ".".join(ids) if ids else ""),
        st.sampled_from(["", "+b1", "+build.5", "+"]),
    ),
    st.text(max_size=8),
)


@settings(max_examples=300)
@given(VERSION_TEXTS, st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~"]), VERSION_TEXTS)
def test_semver_decides_as_flagds_sem_ver(found: str, operator: str, wanted: str) -> None:
    """Our version keys against flagd's sem_ver itself (which compares semver.Version)."""
    rules = {e: [when("version", "semver", [operator, wanted])] for e in ENVIRONMENTS}
    evaluator = Evaluator(make_document({"f": make_flag(rules=rules)}))
    ours = evaluator.evaluate("f", "production", None, {"version": found}).variant == "on"
    theirs = sem_ver({}, found, operator, wanted)
    assert ours == bool(theirs)
