"""Proofs that a dependency is on for every context for which its dependent is on, in one
cell (an environment, or an environment and application), at compile time.

A flag in a cell is its rules in force there (`core.rules`, normalized) and whether its cell
value is on. The dependent can be on along paths: each of its rules that can serve a
variant other than `off` (a `serve`, or a rollout giving one a weight), and, when its cell
value is on, falling through every rule. Each path is a set of contexts: those meeting the
rule's conditions (over-approximated: an earlier rule of the dependent may have taken some
of them), and for a rollout those in its on-range, the first buckets (rollouts list every
other variant before `off`). The proof holds when, for every path, the dependency's rules
in order send each of those contexts to `on`:

- a dependency rule that cannot match any context of the path (`country in NL` against
  `country in DE`) is passed over;
- a rule that serves on to every context of the path it matches (a `serve` of another
  variant than `off`, a rollout with no weight on `off`, or a rollout with the same `seed`
  and `by` whose on-share is at least the path's: the same hash puts a user in both
  on-ranges) either matches every context of the path (its conditions are implied by the
  path's: for each attribute, the path allows a subset of what the rule allows), which
  proves the path, or lets the others go on to the next rule;
- any other rule that may match fails the proof (it may serve `off`);
- past the last rule, the dependency's cell value decides.

Conditions are compared as `core.evaluate` evaluates them: absent attributes never match,
and values are equal as `core.rules.value_key` says (a string, a boolean, a number kept
apart; 1 equals 1.0).
Everything unproved is reported: the property test in tests/compiler/test_dependency_proofs.py
checks with brute force that every accepted tree keeps its promise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.rules import value_key, value_keys

Rule = Mapping[str, Any]  # a normalized rule (core.rules)
Condition = Mapping[str, Any]  # an attribute's operators


@dataclass(frozen=True, slots=True)
class InCell:
    """A flag in one cell: its rules in force, whether its own value is on, and `off`."""

    rules: Sequence[Rule]
    value_on: bool
    off: str | None


@dataclass(frozen=True, slots=True)
class Unproved:
    """A path of the dependent the proof failed for: its rule (a 1-based position, or None
    for the cell's own value), and the dependency's rule that may serve off (or None for
    its value)."""

    rule: int | None
    blocking: int | None


def first_unproved(dependent: InCell, dependency: InCell) -> Unproved | None:
    """The first path of `dependent` for which `dependency` is not proved on, or None."""
    for position, rule, share in _on_paths(dependent):
        blocking = _blocking(rule, share, dependency)
        if blocking is not _PROVED:
            return Unproved(position, blocking if isinstance(blocking, int) else None)
    return None


_PROVED = object()
_VALUE = object()  # the dependency's own value fails


def _on_paths(flag: InCell) -> Iterator[tuple[int | None, Rule | None, int]]:
    """(position, rule, on-share) for each way `flag` can be on; the fall-through to the
    cell's value is (None, None, 100)."""
    for index, rule in enumerate(flag.rules):
        share = _on_share(rule, flag.off)
        if share > 0:
            yield index + 1, rule, share
    if flag.value_on:
        yield None, None, 100


def _on_share(rule: Rule, off: str | None) -> int:
    """The percentage of matching contexts a rule serves on to."""
    if "serve" in rule:
        return 0 if rule["serve"] == off else 100
    return sum(weight for variant, weight in rule["rollout"] if variant != off)


def _blocking(path: Rule | None, share: int, dependency: InCell) -> object:
    """_PROVED, the 1-based position of the dependency's rule that may serve off to some of
    the path's contexts, or _VALUE when its cell value is off for those left over."""
    conditions: Mapping[str, Condition] = path["when"] if path is not None else {}
    for index, rule in enumerate(dependency.rules):
        if _disjoint(conditions, rule["when"]):
            continue
        if not _serves_on(path, share, rule, dependency.off):
            return index + 1
        if _implies(conditions, rule["when"]) and _has_by(path, conditions, rule):
            return _PROVED
    return _PROVED if dependency.value_on else _VALUE


def _serves_on(path: Rule | None, share: int, rule: Rule, off: str | None) -> bool:
    """Whether `rule` serves on to every context of the path that it matches."""
    rule_share = _on_share(rule, off)
    if rule_share == 100:
        return True
    if path is None or "rollout" not in path or "rollout" not in rule:
        return False
    same_buckets = path["seed"] == rule["seed"] and path["by"] == rule["by"]
    return same_buckets and share <= rule_share


def _has_by(path: Rule | None, conditions: Mapping[str, Condition], rule: Rule) -> bool:
    """Whether every context of the path has the rule's `by` (a rollout skips the rest)."""
    if "rollout" not in rule:
        return True
    by = rule["by"]
    return by in conditions or (path is not None and "rollout" in path and path["by"] == by)


def _implies(path: Mapping[str, Condition], rule: Mapping[str, Condition]) -> bool:
    """Every context meeting `path` meets `rule`."""
    return all(
        attribute in path and _within(path[attribute], condition)
        for attribute, condition in rule.items()
    )


def _within(narrow: Condition, wide: Condition) -> bool:
    """Every value `narrow` allows, `wide` allows (sound, not complete)."""
    if _normal(narrow) == _normal(wide):
        return True
    if "in" in narrow:
        return all(
            _allows(wide, value) is True
            for value in narrow["in"]
            if _allows(narrow, value) is not False
        )
    return all(_operator_within(narrow, name, argument) for name, argument in wide.items())


def _normal(condition: Condition) -> dict[str, Any]:
    """A condition, its lists of values as the sets of values they mean (`true` is not `1`,
    which Python's == would say it is)."""
    return {
        name: value_keys(argument) if name in ("in", "not") else argument
        for name, argument in condition.items()
    }


def _operator_within(narrow: Condition, name: str, argument: Any) -> bool:
    """Every value `narrow` allows passes the one operator `name` of the wider condition."""
    if name == "not":
        return value_keys(argument) <= value_keys(narrow.get("not", []))
    if name in ("starts_with", "ends_with"):
        mine = narrow.get(name)
        if not isinstance(mine, str):
            return False
        return mine.startswith(argument) if name == "starts_with" else mine.endswith(argument)
    if name in _BOUNDS:
        return any(_bound_implies(mine, narrow[mine], name, argument) for mine in narrow)
    return bool(narrow.get(name) == argument)  # semver: the same comparison only


_BOUNDS = ("gt", "gte", "lt", "lte")


def _bound_implies(mine: str, own: Any, name: str, argument: Any) -> bool:
    """Whether the bound `mine own` implies `name argument` (x > 5 implies x >= 5)."""
    if mine not in _BOUNDS:
        return False
    if name in ("gt", "gte") and mine in ("gt", "gte"):
        return own > argument or (own == argument and (name == "gte" or mine == "gt"))
    if name in ("lt", "lte") and mine in ("lt", "lte"):
        return own < argument or (own == argument and (name == "lte" or mine == "lt"))
    return False


def _disjoint(path: Mapping[str, Condition], rule: Mapping[str, Condition]) -> bool:
    """No context meets both (judged where the path lists its values)."""
    return any(
        "in" in path[attribute]
        and all(
            _allows(condition, value) is False or _allows(path[attribute], value) is False
            for value in path[attribute]["in"]
        )
        for attribute, condition in rule.items()
        if attribute in path
    )


def _allows(condition: Condition, value: Any) -> bool | None:
    """Whether `value` meets `condition`; None when that turns on an operator not judged
    here (semver) and the others hold."""
    unknown = False
    for name, argument in condition.items():
        if name == "in" and value_key(value) not in value_keys(argument):
            return False
        if name == "not" and value_key(value) in value_keys(argument):
            return False
        if name in ("starts_with", "ends_with") and not (
            isinstance(value, str)
            and (value.startswith(argument) if name == "starts_with" else value.endswith(argument))
        ):
            return False
        if name in _BOUNDS and not (_number(value) and _compare(name, value, argument)):
            return False
        if name == "semver":
            unknown = True
    return None if unknown else True


def _compare(name: str, value: float, argument: float) -> bool:
    if name == "gt":
        return value > argument
    if name == "gte":
        return value >= argument
    return value < argument if name == "lt" else value <= argument


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
