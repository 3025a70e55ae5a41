"""Stage 4, variants: what the schema cannot see in variants, rules and rollouts.

Each finding is at the offending value (a variant name at its key), per flag. A schedule's
steps are levels like the others: a step's `default`, `applications` and `rules`, and a
ramp's `variant` and `by`, are checked where they are written.

- `unknown-variant` (error): `default`, `off`, an environment's or application's value, a
  rule's `serve`, a rollout's or a ramp's variant that is not one of the flag's `variants` (boolean
  flags: `serve` and rollouts name `on` or `off`), with a close name if there is one.
- `missing-off` (error): a typed flag without `off` that has `depends_on` (at `depends_on`)
  or that valid flags depend on (at `type`, naming them): nothing would say when it is off.
- `variant-type` (error): a variant's value that does not match `type`: string is text;
  integer a whole number written without a fraction (2.0 is refused: values are served as
  written) within 64 bits; float any finite number, 2 included (served as 2.0); object a
  mapping whose numbers are finite. Booleans are none of these.
- `invalid-rule` (error): a `when` attribute or a rollout's `by` whose name the outputs
  would read differently (`core.rules.attribute_problem`: a '.', which flagd reads as a
  path into nested objects, or a leading '$', where flagd puts its own `$flagd`), at the
  name; a condition that compares with .nan, .inf or -.inf, which YAML
  reads as numbers (so the schema's `number` lets them by) and JSON has no form for; the
  rule's other checks wait until it is fixed.
- `rollout-weights` (error): weights that do not sum to 100 (the schema refuses negative
  and fractional ones).
- `invalid-semver` (error): a `semver` text that is not an operator (=, !=, <, <=, >, >=,
  ^, ~; none means =) and a version as flagd's sem_ver reads it (an optional leading v,
  MAJOR[.MINOR[.PATCH]] padded with .0, then -PRERELEASE and +BUILD as SemVer 2.0 says).
- `unreachable-rule` (warning): a rule that never applies: an earlier `serve` rule matches
  every context it matches (the earlier one's conditions are some of its own, the same
  after normalizing: none at all when the earlier rule has no `when`; a rollout never
  hides a rule, as a context without its `by` goes on), or one of its conditions never
  holds (`in` values all excluded by `not` or the other operators, numeric bounds that
  leave no number, or operators that want a number and text at once). One per rule.
- `attribute-type` (warning): an attribute compared as a number (gt, gte, lt, lte, or
  number values) in one place and as text (starts_with, ends_with, semver, or string
  values) in another, across the flag's rules (top-level, every environment's and step's), once
  per attribute and flag, where the second kind first appears.
- `unused-variant` (warning): a typed flag's variant that no `default`, `off`,
  environment, application, `serve`, rollout weight above 0 or ramp (whose share is above
  0 at some time) names, in the file or its steps.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compiler.diagnostics import Diagnostic, Severity
from compiler.validate import FlagFile, did_you_mean
from core import graph
from core.evaluate import version_key
from core.model import EnvironmentOverride, Flag, Operators, Rule, Step
from core.rules import attribute_problem, split_semver, value_key, value_keys, value_kind
from core.schedule import declared

Path = tuple[str | int, ...]


def check_variants(
    flags: Mapping[str, FlagFile], dependents: Mapping[str, list[str]] | None = None
) -> list[Diagnostic]:
    """Every finding about variants, rules and rollouts, flag by flag. `dependents`: each
    flag's dependents in the whole tree, when `flags` is only part of it (an incremental
    build); by default found in `flags`."""
    if dependents is None:
        # Only a typed flag without `off` reads them (missing-off), and most trees have none.
        offless = any(f.flag.type != "boolean" and f.flag.off is None for f in flags.values())
        edges = {key: f.flag.depends_on for key, f in flags.items()} if offless else {}
        dependents = graph.dependents(edges)
    found: list[Diagnostic] = []
    for key, flag_file in flags.items():
        flag = flag_file.flag
        if flag.type == "boolean" and flag.variants is None and _bare(flag):
            # No variants, rules or steps: nothing below can find anything, and most flags
            # are so (10,000 such flags: 0.12 s of walking them for nothing, now 0.01 s).
            continue
        levels = _levels(flag)
        names = (*_level_names(flag, levels), *_rule_names(levels), *_ramp_names(levels))
        found.extend(_unknown_variants(flag_file, names))
        found.extend(_missing_off(flag_file, sorted(dependents.get(key, []))))
        found.extend(_variant_types(flag_file))
        found.extend(_attribute_names(flag_file, levels))
        found.extend(_rule_findings(flag_file, levels))
        found.extend(_attribute_types(flag_file, levels))
        found.extend(_unused_variants(flag_file, names))
    return found


@dataclass(frozen=True, slots=True)
class _Named:
    """A variant name given somewhere in a flag file."""

    path: Path
    name: str
    key: bool = False  # the name is a mapping's key (a rollout's variant)
    weight: int = 1  # a rollout's weight; 0 names a variant without serving it


@dataclass(frozen=True, slots=True)
class _Levels:
    """What of a flag the checks walk, found once per flag rather than once per check."""

    # Every list of rules the file writes: top-level, each environment's, each step's.
    rule_lists: list[tuple[Path, list[Rule]]]
    # Each step of each schedule, with its schedule's path and its position.
    steps: list[tuple[tuple[Path, int], Step]]


def _bare(flag: Flag) -> bool:
    """Whether the flag has no rules and no schedule anywhere (a third of `_levels`' time)."""
    if flag.rules is not None or flag.schedule is not None:
        return False
    for override in flag.environments.values():
        if isinstance(override, EnvironmentOverride) and (
            override.rules is not None or override.schedule is not None
        ):
            return False
    return True


def _levels(flag: Flag) -> _Levels:
    steps: list[tuple[tuple[Path, int], Step]] = [
        ((where, number), step)
        for where, schedule in declared(flag)
        for number, step in enumerate(schedule)
    ]
    rule_lists: list[tuple[Path, list[Rule]]] = []
    if flag.rules is not None:
        rule_lists.append((("rules",), flag.rules))
    for environment, override in flag.environments.items():
        if isinstance(override, EnvironmentOverride) and override.rules is not None:
            rule_lists.append((("environments", environment, "rules"), override.rules))
    for (where, number), step in steps:
        if step.rules is not None:
            rule_lists.append(((*where, number, "rules"), step.rules))
    return _Levels(rule_lists, steps)


def _rules(levels: _Levels) -> Iterator[tuple[Path, Rule]]:
    for path, rules in levels.rule_lists:
        for index, rule in enumerate(rules):
            yield (*path, index), rule


def _level_names(flag: Flag, levels: _Levels) -> Iterator[_Named]:
    """Typed flags' variant names at each level (boolean flags' are true and false)."""
    if flag.type == "boolean":
        return
    for field in ("default", "off"):
        if isinstance(getattr(flag, field), str):
            yield _Named((field,), getattr(flag, field))
    for application, value in flag.applications.items():
        yield _Named(("applications", application), str(value))
    for environment, override in flag.environments.items():
        if not isinstance(override, EnvironmentOverride):
            yield _Named(("environments", environment), str(override))
            continue
        if override.default is not None:
            yield _Named(("environments", environment, "default"), override.default)
        for application, value in override.applications.items():
            yield _Named(("environments", environment, "applications", application), str(value))
    yield from _step_names(levels)


def _step_names(levels: _Levels) -> Iterator[_Named]:
    """Typed flags' variant names in steps (boolean flags' are true and false)."""
    for (where, number), step in levels.steps:
        if step.default is not None:
            yield _Named((*where, number, "default"), step.default)
        for application, value in step.applications.items():
            yield _Named((*where, number, "applications", application), str(value))


def _ramp_names(levels: _Levels) -> Iterator[_Named]:
    """Each ramp's variant; it serves some users unless its share stays at 0."""
    for (where, number), step in levels.steps:
        if step.ramp is not None:
            share = max(step.ramp.start, step.ramp.end)
            yield _Named((*where, number, "ramp", "variant"), step.ramp.variant, weight=share)


def _rule_names(levels: _Levels) -> Iterator[_Named]:
    for path, rule in _rules(levels):
        if rule.serve is not None:
            yield _Named((*path, "serve"), rule.serve)
        for name, weight in (rule.rollout or {}).items():
            yield _Named((*path, "rollout", name), name, key=True, weight=weight)


def _unknown_variants(flag_file: FlagFile, names: tuple[_Named, ...]) -> Iterator[Diagnostic]:
    flag = flag_file.flag
    variants = list(flag.variant_values)
    for named in names:
        if named.name not in variants:
            message = (
                f"{named.name!r} is not a variant of {flag_file.key}"
                f"{did_you_mean(named.name, variants)}; its variants: {', '.join(variants)}"
            )
            yield located(flag_file, named.path, "unknown-variant", message, key=named.key)


def _missing_off(flag_file: FlagFile, dependents: list[str]) -> Iterator[Diagnostic]:
    flag, key = flag_file.flag, flag_file.key
    if flag.type == "boolean" or flag.off is not None:
        return
    fix = "add `off: VARIANT`, the variant that means off"
    if flag.depends_on:
        also = f", and {', '.join(dependents)} depend on it" if dependents else ""
        message = (
            f"{key} depends on {', '.join(flag.depends_on)}{also}, but has no `off` variant "
            f"to serve where a dependency is off; {fix}"
        )
        yield located(flag_file, ("depends_on",), "missing-off", message)
    elif dependents:
        verb = "depends" if len(dependents) == 1 else "depend"
        message = (
            f"{', '.join(dependents)} {verb} on {key}, a typed flag (type: {flag.type}) without "
            f"an `off` variant, so nothing says when {key} is off; {fix}"
        )
        yield located(flag_file, ("type",), "missing-off", message)


def _variant_types(flag_file: FlagFile) -> Iterator[Diagnostic]:
    flag = flag_file.flag
    for name, value in (flag.variants or {}).items():
        problem = _type_problem(flag.type, value)
        if problem is not None:
            message = f"{flag_file.key} has type: {flag.type}, and {problem}"
            yield located(flag_file, ("variants", name), "variant-type", message)


_INT64 = range(-(2**63), 2**63)


def _type_problem(flag_type: str, value: Any) -> str | None:
    """Why `value` cannot be a variant of a `flag_type` flag, or None."""
    if _number(value) and not _finite(value):  # before the type's words: 2.0 is no integer
        return f"{_yaml_number(value)} {NO_JSON}"
    problem = _TYPE_PROBLEMS[flag_type](value, _shown(value))
    found = _first_non_finite(value)
    if problem is None and found is not None:
        return f"{_shown(value)} holds {_yaml_number(found)}, which {NO_JSON}"
    return problem


def _integer_problem(value: Any, shown: str) -> str | None:
    if isinstance(value, float) and value.is_integer():
        return f"{shown} is written as a float; write the whole number {int(value)}"
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{shown} is not a whole number"
    if value not in _INT64:
        return f"{shown} does not fit in 64 bits; use a number from -2^63 to 2^63-1"
    return None


_TYPE_PROBLEMS: dict[str, Callable[[Any, str], str | None]] = {
    "boolean": lambda value, shown: None,
    "string": lambda value, shown: (
        None if isinstance(value, str) else f"{shown} is not a string; quote it"
    ),
    "integer": _integer_problem,
    "float": lambda value, shown: None if _number(value) else f"{shown} is not a number",
    "object": lambda value, shown: (
        None
        if isinstance(value, dict)
        else f"{shown} is not a mapping; write the object's fields under the variant"
    ),
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# YAML's .nan, .inf and -.inf are floats to the loader, but JSON has no number for them:
# orjson would write null, and flagd would compare with that.
NO_JSON = (
    "has no JSON form (the snapshot, flagd's files and OFREP answers are JSON); use a finite number"
)


def _finite(value: Any) -> bool:
    return _first_non_finite(value) is None


def _first_non_finite(value: Any) -> float | None:
    """The first .nan or .inf in `value` (a number, or one in a list or mapping), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((found for item in items if (found := _first_non_finite(item)) is not None), None)


def _yaml_number(value: float) -> str:
    """A number that is not finite as YAML writes it."""
    if math.isnan(value):
        return ".nan"
    return ".inf" if value > 0 else "-.inf"


def _non_finite(flag_file: FlagFile, where: Path, rule: Rule) -> Iterator[Diagnostic]:
    """invalid-rule at each .nan or .inf a rule's conditions compare with."""
    for attribute, condition in (rule.when or {}).items():
        for inner, value in _condition_values(condition):
            if isinstance(value, float) and not math.isfinite(value):
                path = (*where, "when", attribute, *inner)
                yield located(flag_file, path, "invalid-rule", f"{_yaml_number(value)} {NO_JSON}")


def _condition_values(condition: Any) -> Iterator[tuple[Path, Any]]:
    """Each value a condition compares with, and its path inside the condition."""
    if isinstance(condition, Operators):
        for name, argument in condition.model_dump(by_alias=True, exclude_none=True).items():
            if isinstance(argument, list):
                yield from (((name, index), item) for index, item in enumerate(argument))
            else:
                yield (name,), argument
    elif isinstance(condition, list):
        yield from (((index,), item) for index, item in enumerate(condition))
    else:
        yield (), condition


def _attribute_names(flag_file: FlagFile, levels: _Levels) -> Iterator[Diagnostic]:
    """invalid-rule at each `when` attribute and `by` (a ramp's too) that outputs would read
    differently."""
    named: list[tuple[Path, str, bool]] = []
    for where, rule in _rules(levels):
        named += [((*where, "when", name), name, True) for name in rule.when or {}]
        if rule.by is not None:
            named.append(((*where, "by"), rule.by, False))
    for (where, number), step in levels.steps:
        if step.ramp is not None and step.ramp.by is not None:
            named.append(((*where, number, "ramp", "by"), step.ramp.by, False))
    for path, name, key in named:
        problem = attribute_problem(name)
        if problem is not None:
            usable = name.lstrip("$").replace(".", "_")
            rename = f"rename it, as {usable!r}, and send it so" if usable else "rename it"
            rule_of_names = "attribute names have no '.' and do not start with '$'"
            message = f"{name!r} {problem}; {rename}: {rule_of_names}"
            yield located(flag_file, path, "invalid-rule", message, key=key)


def _rule_findings(flag_file: FlagFile, levels: _Levels) -> Iterator[Diagnostic]:
    for path, rules in levels.rule_lists:
        for index, rule in enumerate(rules):
            where = (*path, index)
            if rule.rollout is not None and sum(rule.rollout.values()) != 100:
                total = sum(rule.rollout.values())
                message = (
                    f"the rollout's weights sum to {total}, not 100; make the percentages of "
                    f"{', '.join(rule.rollout)} add up to 100"
                )
                yield located(flag_file, (*where, "rollout"), "rollout-weights", message)
            for attribute, condition in (rule.when or {}).items():
                semver = condition.semver if isinstance(condition, Operators) else None
                problem = None if semver is None else semver_problem(semver)
                if problem is not None:
                    semver_path = (*where, "when", attribute, "semver")
                    yield located(flag_file, semver_path, "invalid-semver", problem)
            non_finite = list(_non_finite(flag_file, where, rule))
            yield from non_finite
            if not non_finite:  # NaN compares false with everything: no words about it
                yield from _unreachable(flag_file, path, rules, index)


# --- semver: flagd's sem_ver, as core.evaluate.version_key reads a version ---

_MISTYPED = {"=>": ">=", "=<": "<=", "==": "=", "<>": "!="}
SEMVER_FORM = (
    "write an operator (=, !=, <, <=, >, >=, ^, ~; none means =) and a version "
    'MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], as ">=2.3.0"'
)


def semver_problem(text: str) -> str | None:
    """Why flagd's sem_ver cannot use `text` (an operator and a version), or None."""
    _, version = split_semver(text)
    if version_key(version) is not None:  # the reading core.evaluate compares by
        return None
    mistyped = next((good for bad, good in _MISTYPED.items() if text.strip().startswith(bad)), "")
    hint = f" (did you mean {mistyped!r}?)" if mistyped else ""
    what = f"{version!r} is not a version" if version else "it has no version"
    return f"{text!r} is not a semver comparison: {what}{hint}; {SEMVER_FORM}"


# --- conditions: what values can pass them ---

_NUMBER_OPERATORS = ("gt", "gte", "lt", "lte")
_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_TEXT_OPERATORS = ("starts_with", "ends_with")


def _operators(condition: Any) -> dict[str, Any]:
    """A condition as its operators: a value or a list is `in`."""
    if isinstance(condition, Operators):
        found: dict[str, Any] = condition.model_dump(by_alias=True, exclude_none=True)
        return found
    return {"in": condition if isinstance(condition, list) else [condition]}


def _passes(value: Any, operators: dict[str, Any]) -> bool:
    """Whether an `in` value passes the condition's other operators."""
    if value_key(value) in value_keys(operators.get("not", [])):
        return False
    number = value_kind(value) == "number"
    for name, holds in _BOUNDS.items():
        if name in operators and not (number and holds(value, operators[name])):
            return False
    text = isinstance(value, str)
    if "starts_with" in operators and not (text and value.startswith(operators["starts_with"])):
        return False
    if "ends_with" in operators and not (text and value.endswith(operators["ends_with"])):
        return False
    return "semver" not in operators or value_kind(value) == "string"


def never_holds(condition: Any) -> str | None:
    """Why no attribute value passes `condition`, or None when some may."""
    operators = _operators(condition)
    wants = []
    if any(name in operators for name in _NUMBER_OPERATORS):
        wants.append(("a number", {"number"}))
    if any(name in operators for name in _TEXT_OPERATORS):
        wants.append(("text", {"string"}))
    if "semver" in operators:
        wants.append(("a version", {"string"}))  # a number is no version (core.evaluate)
    kinds = {"number", "string", "boolean"}
    for _, wanted in wants:
        kinds &= wanted
    if not kinds:
        return f"no value is {' and '.join(word for word, _ in wants)} at once"
    empty = _empty_bounds(operators)
    if empty is not None:
        return empty
    values = operators.get("in")
    if values is not None and not any(_passes(value, operators) for value in values):
        if value_keys(values) <= value_keys(operators.get("not", [])):
            return "every value of its `in` is also in its `not`"
        return "none of its `in` values passes its other operators"
    return None


def _empty_bounds(operators: dict[str, Any]) -> str | None:
    lows = [(operators[name], name == "gt") for name in ("gt", "gte") if name in operators]
    highs = [(operators[name], name == "lt") for name in ("lt", "lte") if name in operators]
    for low, strict_low in lows:
        for high, strict_high in highs:
            if low > high or (low == high and (strict_low or strict_high)):
                above = "greater than" if strict_low else "at least"
                below = "less than" if strict_high else "at most"
                return f"no number is {above} {low} and {below} {high}"
    return None


def _normal_when(rule: Rule) -> dict[str, Any]:
    """A rule's conditions, comparable: lists of values as sets."""
    normal = {}
    for attribute, condition in (rule.when or {}).items():
        operators = _operators(condition)
        normal[attribute] = tuple(
            sorted(
                (name, value_keys(arg) if name in ("in", "not") else arg)
                for name, arg in operators.items()
            )
        )
    return normal


def _unreachable(
    flag_file: FlagFile, path: Path, rules: list[Rule], index: int
) -> Iterator[Diagnostic]:
    rule, where = rules[index], (*path, index)
    for attribute, condition in (rule.when or {}).items():
        reason = never_holds(condition)
        if reason is not None:
            message = (
                f"this rule never applies: its condition on {attribute!r} never holds "
                f"({reason}); fix the condition, or remove the rule"
            )
            path = (*where, "when", attribute)
            yield located(flag_file, path, "unreachable-rule", message, severity=Severity.WARNING)
            return
    when = _normal_when(rule)
    for earlier in range(index):
        first = rules[earlier]
        shared = _normal_when(first)
        if first.serve is None or any(when.get(a) != c for a, c in shared.items()):
            continue
        matched = (
            "has no `when` and matches every context"
            if not shared
            else f"matches every context this one matches ({', '.join(shared)})"
        )
        message = (
            f"this rule never applies: {dotted((*path, earlier))} before it {matched}, "
            f"and serves {first.serve}; move this rule above it, or remove it"
        )
        yield located(flag_file, where, "unreachable-rule", message, severity=Severity.WARNING)
        return


def _attribute_types(flag_file: FlagFile, levels: _Levels) -> Iterator[Diagnostic]:
    first: dict[tuple[str, str], Path] = {}  # (attribute, kind) -> where first compared so
    reported: set[str] = set()
    for where, rule in _rules(levels):
        for attribute, condition in (rule.when or {}).items():
            path = (*where, "when", attribute)
            for kind in _compared_as(_operators(condition)):
                first.setdefault((attribute, kind), path)
            number, text = first.get((attribute, "number")), first.get((attribute, "text"))
            if number is None or text is None or attribute in reported:
                continue
            reported.add(attribute)
            here, other = ("text", "a number") if number != path else ("a number", "text")
            there = text if number == path else number
            line = flag_file.document.source.locate(there)[0]
            elsewhere = "in this condition too" if there == path else f"at {dotted(there)} "
            elsewhere += "" if there == path else f"(line {line})"
            message = (
                f"{attribute!r} is compared as {here} here, and as {other} {elsewhere}; a "
                "context's value is one or the other, so one of these conditions never holds "
                "for it: compare it one way"
            )
            yield located(flag_file, path, "attribute-type", message, severity=Severity.WARNING)


def _compared_as(operators: dict[str, Any]) -> list[str]:
    values = [*operators.get("in", []), *operators.get("not", [])]
    kinds = []
    if any(name in operators for name in _NUMBER_OPERATORS) or any(
        value_kind(v) == "number" for v in values
    ):
        kinds.append("number")
    if any(name in operators for name in (*_TEXT_OPERATORS, "semver")) or any(
        value_kind(v) == "string" for v in values
    ):
        kinds.append("text")
    return kinds


def _unused_variants(flag_file: FlagFile, names: tuple[_Named, ...]) -> Iterator[Diagnostic]:
    flag = flag_file.flag
    if flag.variants is None:
        return
    named = {n.name for n in names if n.weight > 0}
    for name in flag.variants:
        if name not in named:
            message = (
                f"variant {name!r} of {flag_file.key} is never served: no default, off, "
                "environment, application, rule, rollout or ramp names it; remove it, or serve it"
            )
            yield located(
                flag_file, ("variants", name), "unused-variant", message,
                key=True, severity=Severity.WARNING,
            )  # fmt: skip


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else f"{text[:59]}…"


def dotted(path: Path) -> str:
    """A field's path as messages name it: `environments.production.rules[0].serve`."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{_name(p)}" for p in path).lstrip(".")


def _name(part: str) -> str:
    """A path's part as written, quoted when it would not read as one part."""
    return part if part.isprintable() and part.strip() and "." not in part else repr(part)


def located(
    flag_file: FlagFile,
    path: Path,
    code: str,
    message: str,
    *,
    key: bool = False,
    severity: Severity = Severity.ERROR,
) -> Diagnostic:
    """A finding at `path` in the flag's file (at its key, with `key`), its message after
    the dotted path: how the variants and schedule checks place theirs."""
    line, column = flag_file.document.source.locate(path, key=key)
    text = f"{dotted(path)}: {message}"
    return Diagnostic(flag_file.document.file, line, column, severity, code, text)
