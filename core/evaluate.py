"""Evaluation of a snapshot's flags (format 2) for one evaluation context.

`Evaluator(document)` compiles every flag's rows once, when a snapshot loads, into tuples
and closures (ValueError if the dependencies have a cycle); `evaluate` and `evaluate_all`
then only run them. Each outcome is what flagd serves from `core.flagd`'s definitions
(openfeature-flagd-core 2.0.0 with panzi-json-logic 1.0.1, the versions the project pins;
tests/core/test_evaluate.py holds the two equal on generated flags and contexts):

1. Gating: for each direct dependency d in `depends_on` order that has an `off` variant,
   d is evaluated (same environment, application and context); the first d that serves its
   `off` makes the flag serve its own `off`, reason DISABLED, `gated_by` d. A flag without
   an `off` is never gated, a dependency without one is never off.
2. The row's rules in order: the first whose every condition holds serves its variant
   (TARGETING_MATCH) or its rollout's bucket (SPLIT).
3. Else the cell's variant (the application's cell, or the environment's when there is no
   application or the snapshot does not know it): DEFAULT if the row has rules, else STATIC
   where the cell's source is "default" and TARGETING_MATCH otherwise.

Each flag is evaluated at most once per call: dependencies come first in a topological
order computed at load. The `application` argument chooses the cell; the context's own
`application` attribute is only what rules compare (consumers pass the same value in
both, as flagd reads it from the context).

Conditions, each false when the attribute is absent or null:
- `in`: the attribute equals one of the values, types kept apart: a string equals a string,
  a boolean a boolean, a number a number (1 and 1.0 are equal; true and 1 are not), as
  `core.rules.value_key` defines it for the compiler's checks too.
- `not`: the attribute is present and equals none of the values (as `in`).
- `starts_with`, `ends_with`: the attribute is a string with that prefix / suffix.
- `gt`, `gte`, `lt`, `lte`: the attribute is a number (not a boolean, not a numeric
  string) and compares so.
- `semver`: the attribute is a string that flagd's `sem_ver` reads as a version (a leading
  v/V dropped, 1 and 1.2 padded to 1.0.0 and 1.2.0, then semver 3's parse) and compares
  so; `^` is the same major, `~` the same major and minor. A number is not a version, and
  what is not a version matches no operator, `!=` included.
- a rollout's `by` must be present (not null); its bucketing value is the string flagd's
  JsonLogic `cat` makes of [seed, ":", value] (ints in full, floats as `%.15g`, but
  booleans as "True" and "False"; lists joined by commas; objects as `[object Object]`),
  hashed as `fractional` does: MurmurHash3 x86_32 (seed 0, unsigned) of the string's
  canonical CBOR, bucket = hash * total weight >> 32, buckets in the listed order.

A quirk, as flagd decides it (and so here), of names flagc refuses
(`core.rules.attribute_problem`) and a snapshot made by hand could still hold: an
attribute name with dots is a path into nested context objects (`user.plan` reads
`context["user"]["plan"]`, never a key "user.plan"); a path step into a string or list
takes an index or `length`.

Where the two part:
- flagd puts its own `$flagd` (flag key, timestamp) over a context attribute `$flagd`;
  here a rule on `$flagd...` reads the context's (flagc refuses such names).
- A bucketing value that is not valid Unicode (a lone surrogate, which orjson refuses in a
  request) makes flagd's `fractional` fail, and flagd then serves the default variant;
  here that rule does not match.

Values are the snapshot's own objects (an object flag's dict is shared): read, never change
them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple

import mmh3
import semver

from core.rules import value_key, value_keys

Reason = Literal["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED"]
Context = Mapping[str, Any]
Test = Callable[[Any], bool]


class Evaluation(NamedTuple):
    """What one flag serves for one context."""

    variant: str
    value: Any
    reason: Reason
    gated_by: str | None = None


# A compiled rule: the context -> what it serves, or None where it does not match.
_Rule = Callable[[Context], Evaluation | None]


class _Row(NamedTuple):
    """A flag in one environment, compiled."""

    gates: tuple[tuple[str, str, Evaluation], ...]  # (dependency, its off, what we serve)
    rules: tuple[_Rule, ...]
    source: Mapping[str, Any]  # the snapshot's row
    variants: Mapping[str, Any]
    # application (None: the environment) -> cell; only for rows whose value may depend on
    # the context, the others' cells being read once per application into the constants.
    cells: Mapping[str | None, Evaluation]


class Evaluator:
    """A snapshot document's flags compiled for evaluation; build one per snapshot.

    What does not depend on the context (no rules, gated by nothing that has any) is
    evaluated once per environment and application, when first asked; a call evaluates
    only the rest. Equal outcomes are one object (a snapshot has few distinct ones)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        flags: Mapping[str, Mapping[str, Any]] = document["flags"]
        self._order = _topological(flags)
        self._applications = frozenset(document["applications"])
        self._depends = {key: tuple(flag.get("depends_on", ())) for key, flag in flags.items()}
        self._closures: dict[str, tuple[str, ...]] = {}
        self._interned: dict[tuple[str, int, str, str | None], Evaluation] = {}
        self._rows: dict[str, dict[str, _Row]] = {}
        self._dynamic: dict[str, tuple[str, ...]] = {}
        gates = {key: self._gates(flags, key) for key in self._order}
        for environment in document["environments"]:
            rows = {key: _row(flags[key], environment, gates[key]) for key in self._order}
            self._dynamic[environment] = dynamic = _dynamic(self._order, rows)
            for key in dynamic:
                row = rows[key]
                cells = {app: self._cell(row, app) for app in (None, *row.source["applications"])}
                rows[key] = row._replace(cells=cells)
            self._rows[environment] = rows
        self._constants: dict[tuple[str, str | None], dict[str, Evaluation]] = {}
        self._targeted: dict[tuple[str, str | None], frozenset[str]] = {}

    def evaluate(
        self, key: str, environment: str, application: str | None, context: Context
    ) -> Evaluation:
        """Flag `key` in `environment` for `application` (None: no application) and
        `context`; KeyError for an unknown flag or environment."""
        constants = self._constants_in(environment, application)
        known = constants.get(key)
        if known is not None:
            return known
        rows = self._rows[environment]
        row = rows[key]
        if not row.gates:
            return _run(row, application, context, constants)
        found: dict[str, Evaluation] = {}
        for dependency in self._closure(key):
            known = constants.get(dependency)
            found[dependency] = known or _run(rows[dependency], application, context, found)
        return found[key]

    def evaluate_all(
        self, environment: str, application: str | None, context: Context
    ) -> dict[str, Evaluation]:
        """Every flag in `environment` for `application` and `context`, each evaluated
        at most once (a flag's dependencies before it)."""
        rows = self._rows[environment]
        found = dict(self._constants_in(environment, application))
        for key in self._dynamic[environment]:
            found[key] = _run(rows[key], application, context, found)
        return found

    def targeted(self, environment: str, application: str | None) -> frozenset[str]:
        """The keys whose value in that cell depends on the context: the row has rules, or
        the flag can be gated (it has an `off`, and the cell's variant is not it) by a
        direct dependency that has an `off` and is itself targeted in that cell."""
        if application not in self._applications:
            application = None  # as in _constants_in: no cell of its own, no entry of its own
        cached = self._targeted.get((environment, application))
        if cached is not None:
            return cached
        rows = self._rows[environment]
        targeted: set[str] = set()
        for key in self._order:  # dependencies first: none is targeted before a rule is met
            row = rows[key]
            if row.rules or (
                targeted
                and any(
                    dependency in targeted and gated.variant != _variant(row.source, application)
                    for dependency, _, gated in row.gates
                )
            ):
                targeted.add(key)
        result = frozenset(targeted)
        self._targeted[(environment, application)] = result
        return result

    def _constants_in(self, environment: str, application: str | None) -> dict[str, Evaluation]:
        """What the flags that do not depend on the context serve in that cell."""
        if application not in self._applications:
            application = None  # an application the snapshot does not know: no cell of its own
        constants = self._constants.get((environment, application))
        if constants is None:
            rows, dynamic = self._rows[environment], frozenset(self._dynamic[environment])
            constants = {}
            for key in self._order:
                if key not in dynamic:
                    row = rows[key]
                    constants[key] = next(
                        (gated for d, off, gated in row.gates if constants[d].variant == off),
                        None,
                    ) or self._cell(row, application)
            self._constants[(environment, application)] = constants
        return constants

    def _closure(self, key: str) -> tuple[str, ...]:
        """`key`'s transitive dependencies then `key`, in the evaluation order."""
        closure = self._closures.get(key)
        if closure is None:
            wanted = {key}
            for candidate in reversed(self._order):
                if candidate in wanted:
                    wanted.update(self._depends[candidate])
            closure = tuple(candidate for candidate in self._order if candidate in wanted)
            self._closures[key] = closure
        return closure

    def _evaluation(
        self, variant: str, value: Any, reason: Reason, gated_by: str | None = None
    ) -> Evaluation:
        """One object per distinct outcome (its value, a snapshot's object, kept alive by
        it, so that its id names it)."""
        key = (variant, id(value), reason, gated_by)
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = Evaluation(variant, value, reason, gated_by)
        return found

    def _cell(self, row: _Row, application: str | None) -> Evaluation:
        """The cell of `application` (None, or one the row does not name: the environment's)."""
        found = row.source["applications"].get(application, row.source) if application else None
        cell: Mapping[str, Any] = found or row.source
        variant = cell["variant"]
        reason = "DEFAULT" if row.rules else _STATIC_REASON.get(cell["source"], "STATIC")
        return self._evaluation(variant, row.variants[variant], reason)

    def _gates(
        self, flags: Mapping[str, Mapping[str, Any]], key: str
    ) -> tuple[tuple[str, str, Evaluation], ...]:
        """The dependencies that can gate `key` (the same in every environment)."""
        flag = flags[key]
        off: str | None = flag.get("off")
        if off is None:
            return ()
        gates = []
        for dependency in flag.get("depends_on", ()):
            dependency_off = flags[dependency].get("off") if dependency in flags else None
            if dependency_off is not None:
                disabled = self._evaluation(off, flag["variants"][off], "DISABLED", dependency)
                gates.append((dependency, dependency_off, disabled))
        return tuple(gates)


def _row(
    flag: Mapping[str, Any], environment: str, gates: tuple[tuple[str, str, Evaluation], ...]
) -> _Row:
    """A flag in `environment`: its gates and rules compiled (its cells later)."""
    variants: Mapping[str, Any] = flag["variants"]
    row: Mapping[str, Any] = flag["resolved"][environment]
    found = row.get("rules")
    rules = tuple(_rule(rule, variants) for rule in found) if found else ()
    return _Row(gates, rules, row, variants, {})


def _variant(row: Mapping[str, Any], application: str | None) -> str:
    cell: Mapping[str, Any] = row["applications"].get(application, row) if application else row
    variant: str = cell["variant"]
    return variant


def _dynamic(order: Sequence[str], rows: Mapping[str, _Row]) -> tuple[str, ...]:
    """The keys whose evaluation may depend on the context (rules, or gated by such a key),
    in evaluation order."""
    dynamic: dict[str, None] = {}
    for key in order:
        row = rows[key]
        if row.rules or any(dependency in dynamic for dependency, _, _ in row.gates):
            dynamic[key] = None
    return tuple(dynamic)


def _run(
    row: _Row, application: str | None, context: Context, found: Mapping[str, Evaluation]
) -> Evaluation:
    """A row whose value may depend on the context (its cells compiled)."""
    for dependency, off, disabled in row.gates:
        if found[dependency].variant == off:
            return disabled
    for rule in row.rules:
        served = rule(context)
        if served is not None:
            return served
    cells = row.cells
    return cells.get(application) or cells[None]


# Compiling ---------------------------------------------------------------------------------


def _topological(flags: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """Every key, each after its dependencies (those that exist); ValueError on a cycle."""
    order: list[str] = []
    state: dict[str, bool] = {}  # False: being visited, True: done
    for root in sorted(flags):
        if root in state:
            continue
        state[root] = False
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(flags[root].get("depends_on", ())))]
        while stack:
            key, pending = stack[-1]
            dependency = next((d for d in pending if d in flags and state.get(d) is not True), None)
            if dependency is None:
                stack.pop()
                state[key] = True
                order.append(key)
            elif state.get(dependency) is False:
                raise ValueError(f"dependency cycle through {dependency!r}")
            else:
                state[dependency] = False
                stack.append((dependency, iter(flags[dependency].get("depends_on", ()))))
    return tuple(order)


_STATIC_REASON: Final[Mapping[str, Reason]] = {
    "default": "STATIC",
    "application": "TARGETING_MATCH",
    "environment": "TARGETING_MATCH",
    "environment-application": "TARGETING_MATCH",
}


def _rule(rule: Mapping[str, Any], variants: Mapping[str, Any]) -> _Rule:
    """One rule of a row as a function of the context."""
    conditions = tuple(
        (_getter(attribute), _test(operator, argument))
        for attribute, operators in rule["when"].items()
        for operator, argument in operators.items()
    )
    if "serve" in rule:
        served = Evaluation(rule["serve"], variants[rule["serve"]], "TARGETING_MATCH")

        def serve(context: Context) -> Evaluation | None:
            for get, test in conditions:
                if not test(get(context)):
                    return None
            return served

        return serve
    buckets = _buckets(rule["rollout"], variants)
    prefix = f"{rule['seed']}:"
    by = _getter(rule["by"])

    def roll(context: Context) -> Evaluation | None:
        for get, test in conditions:
            if not test(get(context)):
                return None
        value = by(context)
        if value is None:
            return None
        try:
            return buckets(prefix + cat_text(value))
        except UnicodeEncodeError:  # a lone surrogate: see the module's quirks
            return None

    return roll


def _buckets(
    rollout: Sequence[Sequence[Any]], variants: Mapping[str, Any]
) -> Callable[[str], Evaluation | None]:
    """The bucket a bucketing value falls in, as flagd's `fractional` lays them out."""
    ends: list[tuple[int, Evaluation]] = []
    total = 0
    for variant, weight in rollout:
        total += max(0, weight)
        ends.append((total, Evaluation(variant, variants[variant], "SPLIT")))
    table = tuple(ends)

    def bucket(text: str) -> Evaluation | None:
        point = (bucket_hash(text) * total) >> 32
        for end, evaluation in table:
            if point < end:
                return evaluation
        return None

    return bucket


def bucket_hash(text: str) -> int:
    """MurmurHash3 x86_32 (seed 0, unsigned) of the canonical CBOR of the text string
    `text`: what openfeature-flagd-core 2.0.0's `fractional` hashes."""
    data = text.encode("utf-8")
    size = len(data)
    if size < 24:
        head = bytes((0x60 | size,))
    elif size < 0x100:
        head = bytes((0x78, size))
    elif size < 0x10000:
        head = b"\x79" + size.to_bytes(2, "big")
    elif size < 0x100000000:
        head = b"\x7a" + size.to_bytes(4, "big")
    else:
        head = b"\x7b" + size.to_bytes(8, "big")
    return mmh3.hash(head + data, 0, False)


def cat_text(value: Any) -> str:
    """The text panzi-json-logic's `cat` makes of one value (its `to_string`, which tests
    for an int before it tests for true and false: booleans are "True" and "False")."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return "%.15g" % value  # noqa: UP031 - the format json-logic uses, exactly
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        return ",".join(cat_text(item) for item in value)
    return "[object Object]" if isinstance(value, dict) else str(value)


# Conditions --------------------------------------------------------------------------------


def _getter(attribute: str) -> Callable[[Context], Any]:
    """The attribute's value in a context as flagd's `var` reads it (None: absent)."""
    if "." not in attribute:
        return lambda context: context.get(attribute)
    path = attribute.split(".")
    return functools.partial(_walk, path)


def _walk(path: Sequence[str], context: Context) -> Any:
    data: Any = context
    for step in path:
        if isinstance(data, list | str):
            if step == "length":
                return len(data)
            try:
                index = int(step, 10)
            except ValueError:
                return None
            if step != str(index) or index < 0 or index >= len(data):
                return None
            data = data[index]
        elif isinstance(data, dict):
            data = data.get(step)
        else:
            return None
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _member(values: Sequence[Any]) -> Test:
    """`in`: equal to one of `values` (`core.rules.value_key`: strings, booleans and numbers
    kept apart)."""
    keys = value_keys(values)
    return lambda value: value_key(value) in keys


def _test(operator: str, argument: Any) -> Test:
    """One operator of a condition as a test of the attribute's value (None: absent)."""
    if operator == "in":
        return _member(argument)
    if operator == "not":
        member = _member(argument)
        return lambda value: value is not None and not member(value)
    if operator == "starts_with":
        return lambda value: isinstance(value, str) and value.startswith(argument)
    if operator == "ends_with":
        return lambda value: isinstance(value, str) and value.endswith(argument)
    if operator in _ORDER:
        compare = _ORDER[operator]
        return lambda value: _is_number(value) and compare(value, argument)
    if operator == "semver":
        return _semver(*argument)
    raise ValueError(f"unknown operator {operator!r}")


_ORDER: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gt": lambda a, b: bool(a > b),
    "gte": lambda a, b: bool(a >= b),
    "lt": lambda a, b: bool(a < b),
    "lte": lambda a, b: bool(a <= b),
}

VersionKey = tuple[int, int, int, tuple[Any, ...]]

_SEMVER: Final[Mapping[str, Callable[[VersionKey, VersionKey], bool]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "^": lambda a, b: a[0] == b[0],
    "~": lambda a, b: a[:2] == b[:2],
}


def _semver(operator: str, version: str) -> Test:
    compare = _SEMVER[operator]
    wanted = version_key(version)

    def test(value: Any) -> bool:
        if wanted is None or not isinstance(value, str):
            return False
        found = version_key(value)
        return found is not None and compare(found, wanted)

    return test


@functools.lru_cache(maxsize=4096)
def version_key(text: str) -> VersionKey | None:
    """flagd's `sem_ver` reading of a version (its normalize_version, then semver 3's parse)
    as a key that orders as semver's compare does (build metadata ignored, a prerelease
    before its release, identifiers numerically or as text); None if it is no version."""
    if text.startswith(("v", "V")):
        text = text[1:]
    numeric = text.split("-")[0].split("+")[0]
    dots = numeric.count(".")
    if dots < 2:
        text = numeric + ".0" * (2 - dots) + text[len(numeric) :]
    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError):
        return None
    prerelease = version.prerelease
    if not prerelease:
        return version.major, version.minor, version.patch, (1,)
    parts = tuple(_identifier_key(part) for part in prerelease.split("."))
    return version.major, version.minor, version.patch, (0, parts)


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    """semver's key of one prerelease identifier (its _nat_cmp's)."""
    if not identifier.isdigit():
        return (1, 0, identifier)
    if not identifier.isascii():
        identifier = str(int(identifier))
    normalized = identifier.lstrip("0") or "0"
    return (0, len(normalized), normalized)
