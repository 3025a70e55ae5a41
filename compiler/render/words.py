"""Wording shared by every output that shows a change to people: `flagc audit`'s text and
`flagc diff`'s text and Markdown say a value and a declared field the same way."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from core.keys import TARGETING_KEY

if TYPE_CHECKING:  # only named here: render/diagnostics is imported before the models
    from collections.abc import Callable

    from compiler.rule_changes import NormalizedRule, RuleChange, RuleChangeKind
    from compiler.yamlsource import Data
    from core.resolve import CellValue


def state(value: CellValue | None) -> str:
    """A resolved value: `on`, `off` (boolean flags), the variant's name (typed flags), or
    `(absent)` where the cell does not exist (None)."""
    if value is None:
        return "(absent)"
    if isinstance(value, str):
        return value
    return "on" if value else "off"


def literal(value: Data) -> str:
    """A declared value as it reads in YAML-ish JSON; None is the absence of a value."""
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


def plural(count: int, noun: str) -> str:
    """`1 flag`, `2 flags`: English's regular plural, all the nouns used here need."""
    return f"{count} {noun}{'s' * (count != 1)}"


# Rules and rollouts, in the words of docs/diff.md: `production: rule 2 (country in NL, BE)
# now serves green (was blue)`, `production: rollout of green 10% -> 25% (moves 15% of users)`.

_OPERATOR_WORDS = {
    "starts_with": "starts with",
    "ends_with": "ends with",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
}
EVERYONE = "everyone"  # a rule without conditions


def scalar(value: object) -> str:
    """A value of a condition as people write it: `NL`, `10`, `true`; quoted only where the
    bare text would read as something else (empty, spaces at either end, a comma, a quote)."""
    if isinstance(value, str):
        bare = value and value == value.strip() and not {",", '"'} & set(value)
        return value if bare else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def condition(attribute: str, operators: Mapping[str, Any]) -> str:
    """One attribute's normalized condition: `country in NL, BE`, `country is NL`, `plan not
    free`, `app_version >=2.3.0`, `email ends with @example.com`, `seats >= 10`; several
    operators on one attribute each name it (`region in eu, us and region not eu-west`)."""
    parts = []
    for operator, argument in operators.items():
        if operator in ("in", "not"):
            verb = "is" if operator == "in" and len(argument) == 1 else operator
            parts.append(f"{attribute} {verb} {', '.join(scalar(value) for value in argument)}")
        elif operator == "semver":
            parts.append(f"{attribute} {argument[0]}{argument[1]}")
        else:
            words = _OPERATOR_WORDS.get(operator, operator)
            parts.append(f"{attribute} {words} {scalar(argument)}")
    return " and ".join(parts)


def conditions(when: Mapping[str, Mapping[str, Any]]) -> str:
    """A rule's `when`, its conditions joined by `and`; `everyone` when it has none."""
    return " and ".join(condition(name, ops) for name, ops in when.items()) or EVERYONE


def rollout(rule: NormalizedRule) -> str:
    """`green 10%, blue 90%` (variants at 0% left out), then `by account_id` unless it
    buckets by the targeting key."""
    shares = ", ".join(f"{name} {weight}%" for name, weight in rule["rollout"] if weight)
    return shares if rule["by"] == TARGETING_KEY else f"{shares} by {rule['by']}"


def rule_change(change: RuleChange) -> str:
    """A rule change, without its environment: `new rule 1 (plan not free) serves green`,
    `rule 2 (country in NL, BE) now serves green (was blue)`, `rollout of green 10% -> 25%
    (moves 15% of users)`."""
    return _RULE_WORDS[change.kind](change, change.before or {}, change.after or {})


Words: TypeAlias = "Callable[[RuleChange, NormalizedRule, NormalizedRule], str]"


def _cleared(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    return "rules removed"


def _removed(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    return f"rule {change.previous} ({conditions(before['when'])}) removed"


def _added(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    return f"new {_named(change, after)} {_serves(after)}"


def _moved(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    return f"rule {change.previous} ({conditions(after['when'])}) is now rule {change.rule}"


def _conditions(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    old, new = conditions(before["when"]), conditions(after["when"])
    return f"rule {change.rule} conditions: {old} -> {new}"


def _serve(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    if "serve" in before:
        return f"{_named(change, after)} now serves {after['serve']} (was {before['serve']})"
    was = f"a rollout of {rollout(before)}; {_moves(change)}"
    return f"{_named(change, after)} now serves {after['serve']} (was {was})"


def _rollout(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    named = _named(change, after)
    if "serve" in before:
        was = f"was {before['serve']}; {_moves(change)}"
        return f"{named} now rolls out {rollout(after)} ({was})"
    subject = f"{named}: rollout" if after["when"] else "rollout"
    return f"{subject} {_difference(change, before, after)} ({_moves(change)})"


_RULE_WORDS: dict[RuleChangeKind, Words] = {
    "cleared": _cleared,
    "removed": _removed,
    "added": _added,
    "moved": _moved,
    "conditions": _conditions,
    "serve": _serve,
    "rollout": _rollout,
}


def _named(change: RuleChange, rule: NormalizedRule) -> str:
    return f"rule {change.rule} ({conditions(rule['when'])})"


def _serves(rule: NormalizedRule) -> str:
    return f"serves {rule['serve']}" if "serve" in rule else f"rolls out {rollout(rule)}"


def _moves(change: RuleChange) -> str:
    if change.rebucketed:
        return "every user is re-bucketed: up to 100% move"
    share = change.moved_share or 0
    return f"moves {share}% of users" if share else "moves no users"


def _difference(change: RuleChange, before: NormalizedRule, after: NormalizedRule) -> str:
    """`of green 10% -> 25%`: the shares that changed, but for the `off` variant's (the
    complement of the others'), and `by`, `seed` where they changed."""
    old, new = dict(before["rollout"]), dict(after["rollout"])
    changed = [name for name in {**new, **old} if old.get(name, 0) != new.get(name, 0)]
    shown = [name for name in changed if name != change.off] or changed
    parts = [f"{name} {old.get(name, 0)}% -> {new.get(name, 0)}%" for name in shown]
    if parts:
        parts[0] = f"of {parts[0]}"
    parts += [
        f"{field} {before[field]} -> {after[field]}"
        for field in ("by", "seed")
        if before[field] != after[field]
    ]
    return ", ".join(parts) or "buckets laid out anew"


def rule_groups(changes: Iterable[RuleChange]) -> list[tuple[str, str]]:
    """(environments, words), one per change, in order; a change alike in several
    environments (the top-level rules) is one, naming them all: `staging, production`."""
    environments: dict[str, list[str]] = {}
    for change in changes:
        environments.setdefault(rule_change(change), []).append(change.environment)
    return [(", ".join(names), text) for text, names in environments.items()]


def rule_lines(changes: Iterable[RuleChange]) -> list[str]:
    """`production: rollout of green 10% -> 25% (moves 15% of users)`, one line per change
    (`rule_groups`)."""
    return [f"{names}: {text}" for names, text in rule_groups(changes)]
