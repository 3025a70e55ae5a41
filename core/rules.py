"""The rules in force in each environment, in the normalized form the snapshot carries
(docs/flags.md, "Rules and rollouts"), and what they can serve.

Rules: an environment's own `rules` replace the top-level ones there; an environment given
as a bare value has none. A condition that is a value or a list becomes `{"in": [...]}`; a
`semver` text becomes `[operator, version]` (no operator means `=`). A rollout lists its
weights in bucket order (every variant other than `off` in the order of `variants`, on for
boolean flags, then `off`), with `by` (default targetingKey) and `seed` (default the flag
key) filled in, so that the same file always gives the same snapshot and the same buckets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from core.keys import TARGETING_KEY
from core.model import EnvironmentOverride, Flag, Operators, Rule

_SEMVER = re.compile(r"\s*(!=|<=|>=|=|<|>|\^|~)?\s*(.*?)\s*", re.DOTALL)


def rules_in(flag: Flag, environment: str) -> list[Rule]:
    """The rules in force in `environment`."""
    override = flag.environments.get(environment)
    if isinstance(override, EnvironmentOverride) and override.rules is not None:
        return override.rules
    if override is None or isinstance(override, EnvironmentOverride):
        return flag.rules or []
    return []  # a bare value: a kill switch, no rules


def bucket_order(flag: Flag) -> list[str]:
    """The order of a rollout's buckets: every variant but `off`, as declared, then `off`."""
    off = flag.off_variant
    names = [name for name in flag.variant_values if name != off]
    return names if off is None else [*names, off]


def normalized(key: str, flag: Flag, rules: list[Rule]) -> list[dict[str, Any]]:
    """`rules` in the snapshot's form."""
    return [_rule(key, flag, rule) for rule in rules]


def _rule(key: str, flag: Flag, rule: Rule) -> dict[str, Any]:
    # Sorted, as the snapshot's canonical JSON has them: the same order whether a rule is
    # read from a file or from a snapshot.
    when = {attribute: condition(value) for attribute, value in sorted((rule.when or {}).items())}
    if rule.serve is not None:
        return {"when": when, "serve": rule.serve}
    weights = rule.rollout or {}
    return {
        "when": when,
        "rollout": [[name, weights.get(name, 0)] for name in bucket_order(flag)],
        "by": rule.by or TARGETING_KEY,
        "seed": rule.seed if rule.seed is not None else key,
    }


def condition(value: Any) -> dict[str, Any]:
    """One condition as a mapping of operators."""
    if not isinstance(value, Operators):
        return {"in": value if isinstance(value, list) else [value]}
    found = value.model_dump(by_alias=True, exclude_none=True)
    if "semver" in found:
        found["semver"] = list(split_semver(found["semver"]))
    return dict(sorted(found.items()))


def split_semver(text: str) -> tuple[str, str]:
    """`>=2.3.0` -> (`>=`, `2.3.0`); no operator means `=`."""
    matched = _SEMVER.fullmatch(text)
    assert matched is not None  # the pattern matches every text
    return matched.group(1) or "=", matched.group(2)


def attribute_problem(name: str) -> str | None:
    """Why the context attribute `name` (a `when` key, a rollout's `by`) would not be read
    alike by every output, or None. flagd's `var` reads a dotted name as a path into nested
    objects (and a step into a string or a list as an index or `length`), and the flat
    map's query parameters cannot send nested objects; flagd puts its own `$flagd` (the
    flag key, the time) over the context's. Any other name is one top-level key of the
    context wherever it is read."""
    if name.startswith("$"):
        return (
            "starts with '$', which flagd keeps for its own attributes (it puts `$flagd`, the "
            "flag key and the time, over the context's), so flagd and the server could read "
            "different values"
        )
    if "." in name:
        return (
            "has a '.', which flagd reads as a path into nested objects, and the flat map's "
            "query parameters cannot send those, so the outputs would part"
        )
    return None


ValueKind = Literal["string", "boolean", "number"]


def value_key(value: Any) -> tuple[ValueKind, Any] | None:
    """What a condition's value (`in`, `not`) or a context's value is compared by: two
    values are equal when their keys are. Strings, booleans and numbers are kept apart
    (`"1"` is not `1`, `true` is not `1`), numbers compare by value (`1` is `1.0`); null,
    lists and objects have no key and equal nothing. This is flagd's meaning of the
    conditions core.flagd writes (tests/core/test_evaluate.py holds the two equal), and
    the one definition core.evaluate, compiler.variants and compiler.dependency_proofs
    share."""
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, bool):  # before numbers: a bool is an int in Python
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    return None


def value_kind(value: Any) -> ValueKind | None:
    """The kind `value_key` keeps `value` apart by, or None."""
    key = value_key(value)
    return None if key is None else key[0]


def value_keys(values: Iterable[Any]) -> frozenset[tuple[ValueKind, Any]]:
    """The keys of `values` (those that have one)."""
    return frozenset(key for key in map(value_key, values) if key is not None)


def served(rule: Rule) -> set[str]:
    """The variants a rule can serve (a rollout: those with a weight above 0)."""
    if rule.serve is not None:
        return {rule.serve}
    return {name for name, weight in (rule.rollout or {}).items() if weight > 0}
