"""Rule and rollout changes (compiler.rule_changes) and their words (compiler.render.words):
tables of normalized rules, each behaviour once, and the moved share against brute force."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.render.words import condition, rule_change, rule_lines
from compiler.rule_changes import FlagAt, changed_rules, flag_rule_changes, moved_share
from compiler.yamlsource import Parsed, parse
from core.model import Flag

Rule = dict[str, Any]


def serve(variant: str, **when: dict[str, Any]) -> Rule:
    return {"when": when, "serve": variant}


def roll(
    *weights: tuple[str, int],
    by: str = "targetingKey",
    seed: str = "k",
    when: dict[str, Any] | None = None,
) -> Rule:
    return {"when": when or {}, "rollout": [list(w) for w in weights], "by": by, "seed": seed}


NL_BE = {"country": {"in": ["NL", "BE"]}}
PAID = {"plan": {"not": ["free"]}}
TEN = roll(("green", 10), ("blue", 90))

# (BASE's rules, HEAD's rules, the lines in production); `blue` is the flag's off variant.
CASES: dict[str, tuple[list[Rule], list[Rule], list[str]]] = {
    "unchanged": ([serve("green", **NL_BE), TEN], [serve("green", **NL_BE), TEN], []),
    "rollout share": (
        [TEN],
        [roll(("green", 25), ("blue", 75))],
        ["production: rollout of green 10% -> 25% (moves 15% of users)"],
    ),
    "rollout down": (
        [TEN],
        [roll(("green", 5), ("blue", 95))],
        ["production: rollout of green 10% -> 5% (moves 5% of users)"],
    ),
    "rollout of several variants": (
        [roll(("green", 10), ("red", 10), ("blue", 80))],
        [roll(("green", 20), ("red", 10), ("blue", 70))],
        ["production: rollout of green 10% -> 20% (moves 20% of users)"],
    ),
    "each variant whose share changed": (
        [roll(("green", 10), ("red", 10), ("blue", 80))],
        [roll(("green", 5), ("red", 30), ("blue", 65))],
        ["production: rollout of green 10% -> 5%, red 10% -> 30% (moves 20% of users)"],
    ),
    "rollout by another attribute": (
        [TEN],
        [roll(("green", 10), ("blue", 90), by="account_id")],
        [
            "production: rollout by targetingKey -> account_id "
            "(every user is re-bucketed: up to 100% move)"
        ],
    ),
    "rollout with another seed and share": (
        [TEN],
        [roll(("green", 25), ("blue", 75), seed="k-2027")],
        [
            "production: rollout of green 10% -> 25%, seed k -> k-2027 "
            "(every user is re-bucketed: up to 100% move)"
        ],
    ),
    "conditional rollout": (
        [serve("green", **PAID), roll(("green", 10), ("blue", 90), when=NL_BE)],
        [serve("green", **PAID), roll(("green", 50), ("blue", 50), when=NL_BE)],
        [
            "production: rule 2 (country in NL, BE): rollout of green 10% -> 50% "
            "(moves 40% of users)"
        ],
    ),
    "rule serves another variant": (
        [serve("blue", **PAID), serve("blue", **NL_BE)],
        [serve("blue", **PAID), serve("green", **NL_BE)],
        ["production: rule 2 (country in NL, BE) now serves green (was blue)"],
    ),
    "rollout becomes a serve": (
        [TEN],
        [serve("green")],
        [
            "production: rule 1 (everyone) now serves green "
            "(was a rollout of green 10%, blue 90%; moves 90% of users)"
        ],
    ),
    "serve becomes a rollout": (
        [serve("blue")],
        [TEN],
        [
            "production: rule 1 (everyone) now rolls out green 10%, blue 90% "
            "(was blue; moves 10% of users)"
        ],
    ),
    "rule added in front": (
        [serve("green", **NL_BE), TEN],
        [serve("green", **PAID), serve("green", **NL_BE), TEN],
        ["production: new rule 1 (plan not free) serves green"],
    ),
    "rollout added": (
        [],
        [roll(("green", 10), ("blue", 90), by="account_id")],
        ["production: new rule 1 (everyone) rolls out green 10%, blue 90% by account_id"],
    ),
    "rule removed": (
        [serve("green", **PAID), serve("green", **NL_BE), TEN],
        [serve("green", **PAID), TEN],
        ["production: rule 2 (country in NL, BE) removed"],
    ),
    "every rule removed": ([serve("green", **NL_BE), TEN], [], ["production: rules removed"]),
    "rule moved": (
        [serve("green", **NL_BE), serve("red", **PAID), TEN],
        [serve("red", **PAID), serve("green", **NL_BE), TEN],
        ["production: rule 2 (plan not free) is now rule 1"],
    ),
    "conditions changed": (
        [serve("green", country={"in": ["NL"]})],
        [serve("green", **NL_BE)],
        ["production: rule 1 conditions: country is NL -> country in NL, BE"],
    ),
    "a boolean condition becomes a number": (  # Python holds true == 1; flagd does not
        [serve("green", beta={"in": [True]})],
        [serve("green", beta={"in": [1]})],
        ["production: rule 1 conditions: beta is true -> beta is 1"],
    ),
    "conditions and what it serves": (
        [serve("green", country={"in": ["NL"]}), TEN],
        [serve("red", **NL_BE), TEN],
        [
            "production: rule 1 conditions: country is NL -> country in NL, BE",
            "production: rule 1 (country in NL, BE) now serves red (was green)",
        ],
    ),
}


@pytest.mark.parametrize(("before", "after", "expected"), CASES.values(), ids=CASES)
def test_rule_changes_in_words(before: list[Rule], after: list[Rule], expected: list[str]) -> None:
    changes = changed_rules("production", before, after)
    assert rule_lines(replace(change, off="blue") for change in changes) == expected


CONDITIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    "one of": ("country", {"in": ["NL", "BE"]}, "country in NL, BE"),
    "one value": ("beta", {"in": [True]}, "beta is true"),
    "none of": ("plan", {"not": ["free"]}, "plan not free"),
    "semver": ("app_version", {"semver": [">=", "2.3.0"]}, "app_version >=2.3.0"),
    "ends with": ("email", {"ends_with": "@example.com"}, "email ends with @example.com"),
    "starts with": ("email", {"starts_with": "admin"}, "email starts with admin"),
    "number": ("seats", {"gte": 10}, "seats >= 10"),
    "below": ("seats", {"lt": 2.5}, "seats < 2.5"),
    "several operators": (
        "region",
        {"in": ["eu", "us"], "not": ["eu-west"]},
        "region in eu, us and region not eu-west",
    ),
    "quoted": ("city", {"in": ["a, b", " x", ""]}, 'city in "a, b", " x", ""'),
}


@pytest.mark.parametrize(
    ("attribute", "operators", "expected"), CONDITIONS.values(), ids=CONDITIONS
)
def test_conditions_read_compactly(
    attribute: str, operators: dict[str, Any], expected: str
) -> None:
    assert condition(attribute, operators) == expected


def test_several_conditions_and_no_condition() -> None:
    new = changed_rules("production", [], [serve("green", **NL_BE, **PAID), serve("blue")])
    assert [rule_change(change) for change in new] == [
        "new rule 1 (country in NL, BE and plan not free) serves green",
        "new rule 2 (everyone) serves blue",
    ]


def test_the_changes_carry_numbers_and_shares() -> None:
    (change,) = changed_rules("staging", [TEN], [roll(("green", 25), ("blue", 75))])
    assert (change.environment, change.kind, change.rule, change.previous) == (
        "staging",
        "rollout",
        1,
        1,
    )
    assert (change.moved_share, change.rebucketed) == (15, False)


# The moved share: exact from the ranges, and the same as counting the 100 buckets.


@st.composite
def layouts(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Variants (some of a, b, c, d, in any order) with whole-percent weights summing to
    100, zeros included."""
    names = draw(st.permutations("abcd").map(lambda p: p[: draw(st.integers(1, 4))]))
    cuts = sorted(
        draw(st.lists(st.integers(0, 100), min_size=len(names) - 1, max_size=len(names) - 1))
    )
    bounds = [0, *cuts, 100]
    return [(name, bounds[i + 1] - bounds[i]) for i, name in enumerate(names)]


def variant_of(layout: list[tuple[str, int]], bucket: int) -> str:
    end = 0
    for name, weight in layout:
        end += weight
        if bucket < end:
            return name
    raise AssertionError("weights sum to 100")


@given(layouts(), layouts())
def test_the_moved_share_is_the_buckets_that_change_variant(
    before: list[tuple[str, int]], after: list[tuple[str, int]]
) -> None:
    brute = sum(variant_of(before, b) != variant_of(after, b) for b in range(100))
    assert moved_share(before, after) == brute
    # At least what the variants that grew gained, however the buckets are laid out.
    old, new = dict(before), dict(after)
    gained = sum(max(0, new.get(name, 0) - old.get(name, 0)) for name in {*old, *new})
    assert moved_share(before, after) >= gained


# The rules in force per environment, from two versions of a flag.

FLAG = """description: Button colour
owner: team-growth
type: string
variants: {green: "#2da44e", red: "#cf222e", blue: "#1f6feb"}
default: blue
off: blue
rules:
  - when: {country: [NL, BE]}
    serve: green
  - rollout: {green: 10, blue: 90}
environments:
  staging: green
  production:
    default: blue
"""


def flag(text: str) -> Flag:
    parsed = parse(text, "button.yaml")
    assert isinstance(parsed, Parsed)
    return Flag.model_validate(parsed.data)


ENVIRONMENTS = ("development", "staging", "production")


def test_top_level_rules_change_in_every_environment_that_has_them() -> None:
    before = flag(FLAG)
    after = flag(FLAG.replace("green: 10, blue: 90", "green: 25, blue: 75"))
    changes = flag_rule_changes(
        ENVIRONMENTS, FlagAt("button", before, ENVIRONMENTS), FlagAt("button", after, ENVIRONMENTS)
    )
    assert rule_lines(changes) == [
        "development, production: rollout of green 10% -> 25% (moves 15% of users)"
    ]


def test_an_environment_with_its_own_rules_and_a_new_environment() -> None:
    before = flag(FLAG)
    after = flag(FLAG + "    rules:\n      - when: {seats: {gte: 10}}\n        serve: red\n")
    changes = flag_rule_changes(
        [*ENVIRONMENTS, "qa"],
        FlagAt("button", before, ENVIRONMENTS),
        FlagAt("button", after, [*ENVIRONMENTS, "qa"]),
    )
    assert rule_lines(changes) == [
        "production: rule 2 (everyone) removed",
        "production: rule 1 conditions: country in NL, BE -> seats >= 10",
        "production: rule 1 (seats >= 10) now serves red (was green)",
        "qa: new rule 1 (country in NL, BE) serves green",
        "qa: new rule 2 (everyone) rolls out green 10%, blue 90%",
    ]


def test_a_new_flag_and_flags_without_rules() -> None:
    new = FlagAt("button", flag(FLAG), ENVIRONMENTS)
    assert rule_lines(flag_rule_changes(["production"], FlagAt("button", None, ()), new)) == [
        "production: new rule 1 (country in NL, BE) serves green",
        "production: new rule 2 (everyone) rolls out green 10%, blue 90%",
    ]
    plain = flag("description: x\nowner: y\nenabled: true\n")
    assert (
        flag_rule_changes(ENVIRONMENTS, FlagAt("x", plain, ENVIRONMENTS), new._replace(flag=plain))
        == ()
    )


def test_a_boolean_rollout_names_on() -> None:
    text = "description: x\nowner: y\nenabled: false\nrules:\n  - rollout: {on: 5, off: 95}\n"
    changes = flag_rule_changes(
        ["production"],
        FlagAt("x", flag(text), ["production"]),
        FlagAt("x", flag(text.replace("on: 5, off: 95", "on: 20, off: 80")), ["production"]),
    )
    assert rule_lines(changes) == ["production: rollout of on 5% -> 20% (moves 15% of users)"]
