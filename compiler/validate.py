"""Stage 2, validate: source files -> typed flags and project, against the JSON Schemas.

The pydantic models accept exactly what the schemas accept, and cost a few microseconds a
document, so they run first; the schema's full error reporting runs only for documents
that fail, so a clean tree of thousands of flags pays little for it.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from compiler.diagnostics import Diagnostic, Severity
from compiler.load import PROJECT_FILE, Loaded, SourceFile
from core.model import (
    DATE_PATTERN,
    MOMENT_PATTERN,
    NAME_PATTERN,
    TAG_PATTERN,
    TEXT_PATTERN,
    Flag,
    Project,
)
from core.schemas import schema_document

if TYPE_CHECKING:
    import jsonschema


@dataclass(frozen=True, slots=True)
class FlagFile:
    key: str
    document: SourceFile
    flag: Flag


@dataclass(slots=True)
class Validated:
    project: Project | None = None
    project_file: SourceFile | None = None
    flags: dict[str, FlagFile] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def validate(loaded: Loaded, checked: Mapping[str, Checked] | None = None) -> Validated:
    """Check each document against its schema; keep the valid ones, typed, by flag key.
    `checked`: flag documents checked already (`validate_document`), by path."""
    result = Validated(diagnostics=list(loaded.diagnostics))
    if loaded.project is not None:
        project = _validate_one(
            loaded.project, Project, "project", "project-config", result.diagnostics
        )
        if project is not None:
            result.project, result.project_file = project, loaded.project
    owners: dict[str, list[str]] = {}  # key -> files, those that could not be read too
    for unread in loaded.unread:
        owners.setdefault(unread.key, []).append(unread.file)
    for document in loaded.flags:
        owners.setdefault(document.key, []).append(document.file)
        known = checked.get(document.path) if checked is not None else None
        if known is None:
            flag = _validate_one(document, Flag, "flag", "schema", result.diagnostics)
        else:
            flag = known[0]
            result.diagnostics += known[1]
        if flag is not None:
            result.flags[document.key] = FlagFile(document.key, document, flag)
    for key, files in owners.items():
        if len(files) > 1:  # neither copy stands in for the flag
            result.flags.pop(key, None)
            result.diagnostics.extend(_duplicates(key, sorted(files)))
    return result


M = TypeVar("M", bound=pydantic.BaseModel)
Checked = tuple[Flag | None, list[Diagnostic]]  # a flag document's model, or its problems


def validate_document(document: SourceFile, model: type[M]) -> tuple[M | None, list[Diagnostic]]:
    """One document against its schema (Flag or Project): the typed value, or its problems."""
    schema, code = ("flag", "schema") if model is Flag else ("project", "project-config")
    problems: list[Diagnostic] = []
    return _validate_one(document, model, schema, code, problems), problems


def _validate_one(
    document: SourceFile, model: type[M], schema: str, code: str, report: list[Diagnostic]
) -> M | None:
    """The typed document, or None with its problems added to `report`."""
    try:
        return model.model_validate(document.data)
    except pydantic.ValidationError as exc:
        problems = [
            _diagnostic(document, problem, code)
            for error in _validator(schema).iter_errors(document.data)
            for problem in _problems(error, document.data)
        ]
        if not problems:
            # Only reachable if the models drift from the schema: still report, never accept.
            message = f"{exc.errors()[0]['msg']}; see schemas/{schema}.schema.json"
            problems = [Diagnostic(document.file, 1, 1, Severity.ERROR, code, message)]
        report.extend(_first_per_place(problems))
        return None


def _first_per_place(problems: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[int, int, str]] = set()
    kept = []
    for problem in problems:
        place = (problem.line, problem.column, problem.message)
        if place not in seen:
            seen.add(place)
            kept.append(problem)
    return kept


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    # Imported here: only a document the models refuse needs it (0.05 s of imports).
    import jsonschema  # noqa: PLC0415

    formats = jsonschema.FormatChecker(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
    # jsonschema checks date-time only with rfc3339-validator, which the runtime does not
    # install: checked here as the model checks it (core.model._real_moment).
    formats.checks("date-time", raises=ValueError)(_moment_exists)
    return jsonschema.Draft202012Validator(schema_document(name), format_checker=formats)


def _moment_exists(instance: object) -> bool:
    """Whether a text names an instant that exists, with its zone offset (the shape is the
    pattern's)."""
    if not isinstance(instance, str):
        return True
    return datetime.datetime.fromisoformat(instance).tzinfo is not None


Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Problem:
    """One schema violation, in the terms our messages need."""

    kind: str  # the JSON Schema keyword, or "unknown-field"
    path: tuple[str | int, ...]
    instance: Any
    expected: Any  # the keyword's value in the schema
    text: str  # jsonschema's own message, for keywords we do not word ourselves
    on_key: bool = False
    document: Any = None  # the whole document, for words that depend on the flag's type


def _problems(error: jsonschema.ValidationError, document: Any) -> Iterator[_Problem]:
    for problem in _raw_problems(error, document):
        yield replace(problem, document=document)


def _raw_problems(error: jsonschema.ValidationError, document: Any) -> Iterator[_Problem]:
    path = tuple(error.absolute_path)
    instance: Any = error.instance
    expected: Any = error.validator_value
    if error.validator is None:  # a `false` subschema: a field the flag's type forbids
        yield from _forbidden(error, path, _data_at(document, path))
    elif error.validator == "oneOf" and not isinstance(instance, dict):
        return  # a rule that is not a mapping: its `type` problem says so
    elif error.validator == "dependentRequired" and isinstance(instance, dict):
        for name, needed in expected.items():
            if name in instance and not all(other in instance for other in needed):
                yield _Problem("dependentRequired", (*path, name), name, needed, "", on_key=True)
    else:
        yield from _keyword_problems(error, path, instance, expected)


def _keyword_problems(
    error: jsonschema.ValidationError, path: tuple[str | int, ...], instance: Any, expected: Any
) -> Iterator[_Problem]:
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        # One problem per unexpected key, at that key, with a close name if there is one.
        schema: Any = error.schema
        allowed = sorted(schema.get("properties", {}))
        for name in sorted(set(instance) - set(allowed)):
            yield _Problem("unknown-field", (*path, name), name, allowed, "", on_key=True)
    elif "propertyNames" in error.relative_schema_path:
        # jsonschema reports a bad key at its mapping, with the key as the instance.
        yield _Problem("propertyNames", (*path, str(instance)), instance, expected, "", on_key=True)
    elif error.validator == "required" and isinstance(instance, dict):
        for name in expected:
            if name not in instance:
                yield _Problem("required", path, name, expected, "")
    elif error.validator == "uniqueItems" and isinstance(instance, list):
        for index, item in enumerate(instance):
            if item in instance[:index]:
                yield _Problem("uniqueItems", (*path, index), item, expected, "")
    else:
        yield _Problem(str(error.validator), path, instance, expected, error.message)


def _forbidden(
    error: jsonschema.ValidationError, path: tuple[str | int, ...], parent: Any
) -> Iterator[_Problem]:
    """jsonschema reports a field refused by `properties: {field: false}` at the mapping
    that holds it, its path one short and the field unnamed: find the field in the schema."""
    schema_path = tuple(error.absolute_schema_path)
    properties = _schema_at(schema_path) if schema_path[-1:] == ("properties",) else None
    names = [
        name
        for name, subschema in (properties or {}).items()
        if subschema is False and isinstance(parent, dict) and parent.get(name) is error.instance
    ]
    for name in names:
        yield _Problem("forbidden", (*path, name), name, None, "", on_key=True)
    if not names:
        yield _Problem("false", path, error.instance, None, error.message)


def _schema_at(schema_path: tuple[Any, ...]) -> Any:
    return _data_at(_validator("flag").schema, schema_path)


def _data_at(document: Any, path: tuple[str | int, ...]) -> Any:
    node = document
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def did_you_mean(name: str, candidates: list[str]) -> str:
    """A ' (did you mean ...?)' suffix when a close name exists, else ''."""
    hint = _did_you_mean(name, candidates)
    return f" ({hint})" if hint else ""


def _diagnostic(document: SourceFile, problem: _Problem, code: str) -> Diagnostic:
    line, column = document.source.locate(problem.path, key=problem.on_key)
    where = _dotted(problem.path)
    message = (
        _rule_words(problem) or _schedule_words(problem) or _flag_words(problem) or _words(problem)
    )
    text = f"{where}: {message}" if where else message
    if code == "schema":
        code = _flag_code(problem)
    return Diagnostic(document.file, line, column, Severity.ERROR, code, text)


def _words(problem: _Problem) -> str:
    return _MESSAGES[problem.kind](problem) if problem.kind in _MESSAGES else problem.text


def _step_part(path: Path) -> Path | None:
    """The path inside a schedule's step (`schedule[i]` at the top or in an environment),
    or None."""
    start = 2 if path[:1] == ("environments",) else 0
    if path[start : start + 1] == ("schedule",) and isinstance(_at(path, start + 1), int):
        return path[start + 2 :]
    return None


def _in_level(path: Path) -> Path:
    """The path inside the level that holds it: the flag, an environment, or a step."""
    step = _step_part(path)
    if step is not None:
        return step
    return path[2:] if path[:1] == ("environments",) else path


def _rule_part(path: Path) -> Path | None:
    """The path inside a rule (`rules[i]` of the flag, an environment or a step), or None."""
    rest = _in_level(path)
    if rest[:1] == ("rules",) and isinstance(_at(rest, 1), int):
        return rest[2:]
    return None


def _at(path: Path, index: int) -> str | int | None:
    return path[index] if index < len(path) else None


def _flag_code(problem: _Problem) -> str:
    """A flag file's code: `schema`, or the code of the rule check the problem is one of."""
    if _step_part(problem.path) in _MOMENTS and _zoneless(problem.instance):
        return "schedule-zone"
    rest = _rule_part(problem.path)
    if rest is None:
        return "schema"
    if rest[:1] == ("rollout",) and problem.kind != "propertyNames":
        return "rollout-weights"
    if rest[:1] == ("when",) and _at(rest, 2) == "semver":
        return "invalid-semver"
    return "invalid-rule"


def _flag_type(problem: _Problem) -> str:
    document = problem.document
    kind = document.get("type", "boolean") if isinstance(document, dict) else "boolean"
    return kind if isinstance(kind, str) else "boolean"


OPERATORS = ("in", "not", "semver", "starts_with", "ends_with", "gt", "gte", "lt", "lte")
_NUMBER_OPERATORS = ("gt", "gte", "lt", "lte")


def _rule_words(problem: _Problem) -> str | None:
    """Words for a problem inside a rule, or None for the general ones."""
    rest = _rule_part(problem.path)
    if rest is None:
        return None
    words = _RULE_WORDS.get((_place(rest), problem.kind))
    return words(problem) if words is not None else None


def _place(rest: tuple[str | int, ...]) -> str:
    """What a path inside a rule points at."""
    if not rest:
        return "rule"
    if rest[0] == "when":
        if len(rest) == 3 and isinstance(rest[2], str):
            return "operator"
        return ("when", "condition", "value", "value")[min(len(rest), 4) - 1]
    if rest[0] == "rollout":
        return "rollout" if len(rest) == 1 else "weight"
    return str(rest[0])


def _both_or_neither(problem: _Problem) -> str:
    rule = problem.instance
    if isinstance(rule, dict) and "serve" in rule and "rollout" in rule:
        return "a rule has `serve` or `rollout`, not both; keep one, or make two rules"
    return "a rule needs `serve: VARIANT` or `rollout: {VARIANT: PERCENT, ...}`"


def _serve_one(problem: _Problem) -> str:
    shown = _shown(problem.instance)
    if _flag_type(problem) == "boolean":
        return f"{shown} is not a variant name; boolean flags serve `on` or `off`"
    return f"{shown} is not a variant name; serve one of the flag's variants{_variants_of(problem)}"


def _variants_of(problem: _Problem) -> str:
    """' (a, b)': the variants the document declares, if any."""
    variants = problem.document.get("variants") if isinstance(problem.document, dict) else None
    names = ", ".join(map(str, variants)) if isinstance(variants, dict) else ""
    return f" ({names})" if names else ""


def _attribute_name(problem: _Problem) -> str:
    if isinstance(problem.instance, str) and problem.instance.strip():
        return (
            f"attribute name is {len(problem.instance)} characters long, more than the "
            f"{problem.expected} allowed; shorten it"
        )
    return "the attribute name is blank; name the context attribute the condition tests"


def _condition_type(problem: _Problem) -> str:
    shown = "empty" if problem.instance is None else _shown(problem.instance)
    return (
        "a condition is a value, a list of values, or a mapping of operators "
        f"({', '.join(OPERATORS)}), not {shown}"
    )


def _unknown_operator(problem: _Problem) -> str:
    name = problem.instance
    hint = _did_you_mean(name, list(OPERATORS)) or f"operators: {', '.join(OPERATORS)}"
    return f"unknown operator {name!r}; {hint}"


def _operator_type(problem: _Problem) -> str:
    operator, shown = problem.path[-1], _shown(problem.instance)
    if operator in ("in", "not"):
        return f"`{operator}` takes a list of values, as `{operator}: [NL, BE]`, not {shown}"
    if operator in _NUMBER_OPERATORS:
        return f"`{operator}` compares numbers; write a number, not {shown}"
    if operator == "semver":
        return (
            "`semver` takes an operator and a version as text, in quotes, as "
            f'`semver: ">=2.3.0"`, not {shown}'
        )
    return f"`{operator}` takes text; write it in quotes, not {shown}"


def _empty_list(problem: _Problem) -> str:
    if problem.path[-1] == "not":
        return "`not: []` excludes nothing; list at least one value, or remove it"
    return "an empty list matches no value; list at least one"


_WEIGHTS = "weights are whole percentages, from 0 to 100, that sum to 100"
_BY = "`by` names the context attribute to bucket by; leave it out to bucket by targetingKey"
_SEED = "`seed` is text that is not blank; leave it out to use the flag key"


def _belongs_to_a_rollout(problem: _Problem) -> str:
    return (
        f"`{problem.instance}` belongs to a rollout; remove it, or give the rule a `rollout` "
        "in place of `serve`"
    )


_RULE_WORDS: dict[tuple[str, str], Callable[[_Problem], str]] = {
    ("rule", "type"): lambda p: (
        "a rule is a mapping of `when` (optional) and `serve` or `rollout`, "
        f"not {_shown(p.instance)}"
    ),
    ("rule", "oneOf"): _both_or_neither,
    ("when", "minProperties"): lambda p: (
        "an empty `when` has no condition; give one, or remove `when` for a rule that "
        "matches every context"
    ),
    ("when", "type"): lambda p: (
        f"`when` maps context attributes to conditions, as {{country: [NL, BE]}}, "
        f"not {_shown(p.instance)}"
    ),
    ("condition", "propertyNames"): _attribute_name,
    ("condition", "minItems"): _empty_list,
    ("condition", "minProperties"): lambda p: (
        f"an empty mapping has no operator; use one of {', '.join(OPERATORS)}"
    ),
    ("condition", "type"): _condition_type,
    ("operator", "unknown-field"): _unknown_operator,
    ("operator", "type"): _operator_type,
    ("operator", "minItems"): _empty_list,
    ("value", "type"): lambda p: (
        f"{_shown(p.instance)} is not a value to compare with; list strings, numbers or booleans"
    ),
    ("serve", "type"): _serve_one,
    ("rollout", "minProperties"): lambda p: (
        f"an empty rollout serves nothing; give each variant's percentage ({_WEIGHTS})"
    ),
    ("rollout", "type"): lambda p: (
        f"a rollout maps variants to percentages, as {{on: 10, off: 90}}, not {_shown(p.instance)}"
    ),
    ("weight", "minimum"): lambda p: f"{_shown(p.instance)} is negative; {_WEIGHTS}",
    ("weight", "type"): lambda p: f"{_shown(p.instance)} is not a whole percentage; {_WEIGHTS}",
    ("by", "pattern"): lambda p: _BY,
    ("by", "minLength"): lambda p: _BY,
    ("by", "type"): lambda p: _BY,
    ("by", "dependentRequired"): _belongs_to_a_rollout,
    ("seed", "pattern"): lambda p: _SEED,
    ("seed", "type"): lambda p: _SEED,
    ("seed", "dependentRequired"): _belongs_to_a_rollout,
}


_MOMENTS = (("at",), ("ramp", "from"), ("ramp", "to"))
_EXAMPLE_MOMENT = "2027-01-11T09:00:00Z"


def _schedule_words(problem: _Problem) -> str | None:
    """Words for a schedule, a step, a moment or a ramp's `every`, or None."""
    kind, rest = problem.kind, _step_part(problem.path)
    if rest is None:
        if kind == "minItems" and _in_level(problem.path) == ("schedule",):
            return "a schedule lists at least one step; remove `schedule` if nothing is scheduled"
        return None
    if rest in _MOMENTS and kind in ("type", "pattern", "format"):
        return _moment_words(problem.instance)
    if rest == ("ramp", "every") and kind in ("type", "pattern"):
        return (
            f"{_shown(problem.instance)} is not a duration: write minutes, hours or days, as "
            "30m, 1h or 1d (at least 1m)"
        )
    if not rest and kind == "oneOf" and isinstance(problem.instance, dict):
        return _step_words(problem.instance, _flag_type(problem))
    return None


def _zoneless(value: object) -> bool:
    """Whether `value` is a moment but for its zone offset."""
    if not isinstance(value, str) or not re.fullmatch(MOMENT_PATTERN, f"{value}Z"):
        return False
    try:
        return _moment_exists(f"{value}Z")
    except ValueError:  # a day that does not exist: not a moment either way
        return False


def _moment_words(value: object) -> str:
    if _zoneless(value):
        return f"{value} has no zone offset: write Z for UTC, or the offset, as in {value}+01:00"
    return (
        f"{_shown(value)} is not a moment: write it as {_EXAMPLE_MOMENT} (RFC 3339, with its "
        "zone offset), between the years 1970 and 2999"
    )


def _step_words(step: dict[str, Any], flag_type: str) -> str:
    """Why a step is neither a step `at` a moment that changes something nor a `ramp` alone."""
    fields = f"{'enabled' if flag_type == 'boolean' else 'default'}, applications, rules"
    if "ramp" in step and "at" in step:
        return "a step has `at` or a `ramp`, not both: a ramp starts at its `from`"
    if "ramp" in step:
        others = ", ".join(f"`{_name(str(name))}`" for name in step if name != "ramp")
        return f"a `ramp` is a step alone; move {others} to a step of its own, with `at`"
    if "at" in step:
        return f"the step changes nothing; give it the fields that change then ({fields})"
    return f"a step has `at` and the fields that change then ({fields}), or a `ramp` alone"


_LEVELS = ("applications", "environments")


def _flag_words(problem: _Problem) -> str | None:
    """Words for a field or value that does not suit the flag's type."""
    flag_type = _flag_type(problem)
    if problem.kind == "forbidden":
        return _forbidden_words(problem, flag_type)
    path, kind = problem.path, problem.kind
    if kind == "enum" and path == ("type",):
        choices = [str(choice) for choice in problem.expected]
        hint = did_you_mean(str(problem.instance), choices)
        return f"{_shown(problem.instance)} is not a type{hint}; use {', '.join(choices)}"
    if kind == "minProperties" and path == ("variants",):
        return "a typed flag needs at least one variant, as `variants: {blue: ...}`"
    rest = _in_level(path)
    a_value = (rest[:1] == ("applications",) and len(rest) == 2) or (
        path[:1] == ("environments",) and len(path) == 2
    )
    typed = flag_type != "boolean"
    if kind == "type" and a_value and typed and not isinstance(problem.instance, (str, dict)):
        return (
            f"{_shown(problem.instance)} is not a variant name; typed flags (type: "
            f"{flag_type}) name one of their variants here{_variants_of(problem)}"
        )
    return None


def _forbidden_words(problem: _Problem, flag_type: str) -> str:
    field = problem.instance
    if flag_type != "boolean":
        where = "" if len(problem.path) == 1 else " in an environment"
        if _step_part(problem.path) is not None:
            where = " in a step"
        fields = "`default` and `variants`" if len(problem.path) == 1 else "`default`"
        return (
            f"typed flags (type: {flag_type}) have {fields}, not `{field}`{where}; "
            "name a variant in `default`"
        )
    if field == "variants":
        return (
            "boolean flags have `enabled` and the variants on and off; set `type:` to use variants"
        )
    if field == "off":
        return (
            "boolean flags are off with their variant `off` already; remove `off`, or set "
            "`type:` to use variants"
        )
    return f"boolean flags have `enabled`, not `{field}`; set `type:` to use variants"


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{_name(p)}" for p in path).lstrip(".")


def _name(part: str) -> str:
    return part if part.isprintable() and part.strip() else repr(part)


def _shown(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (JSON-ish, non-ASCII kept), cut short if long."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _unknown_field(problem: _Problem) -> str:
    name = problem.instance
    if name == "<<":
        return "merge keys (<<) are not supported; write the fields out in full"
    hint = _did_you_mean(name, problem.expected) or f"allowed: {', '.join(problem.expected)}"
    return f"unknown field {name!r}; {hint}"


def _type(problem: _Problem) -> str:
    expected = problem.expected
    names = " or ".join(expected) if isinstance(expected, list) else str(expected)
    shown = "empty" if problem.instance in (None, {}) else _shown(problem.instance)
    if "boolean" in names and isinstance(problem.instance, str):
        return f"{shown} is not a boolean; write true or false"
    if not problem.path:
        return f"the file must be a mapping of fields, not {shown}"
    return f"expected {names}, got {shown}"


def _pattern(problem: _Problem) -> str:
    value = _shown(problem.instance)
    if problem.expected == TEXT_PATTERN:
        return "must not be blank; say it in words"
    if problem.expected == NAME_PATTERN:
        return _bad_name(problem)
    if problem.expected == TAG_PATTERN:
        return (
            f"{value} is not a valid tag: use at most 64 lowercase letters, digits and "
            "'-', '_', '.', ':', '/', starting with a letter or digit"
        )
    if problem.expected == DATE_PATTERN:
        return _bad_date(problem)
    return f"{value} does not match {problem.expected}"


def _bad_name(problem: _Problem) -> str:
    return (
        f"{problem.instance!r} is not a valid name: use at most 64 lowercase letters, "
        "digits, '-' or '_', starting with a letter"
    )


def _bad_date(problem: _Problem) -> str:
    return f"{_shown(problem.instance)} is not a date; write it as YYYY-MM-DD"


_MESSAGES: dict[str, Callable[[_Problem], str]] = {
    "unknown-field": _unknown_field,
    "required": lambda p: f"missing required field {p.instance!r}; add `{p.instance}: ...`",
    "type": _type,
    "pattern": _pattern,
    "format": _bad_date,  # date (a moment's date-time: _schedule_words); worded like its pattern
    "propertyNames": _bad_name,
    "uniqueItems": lambda p: f"{_shown(p.instance)} is listed twice; list each once",
    "minProperties": lambda p: "an override needs `enabled` or `applications`",
    "minItems": lambda p: "must list at least one name",
    "maxLength": lambda p: (
        f"is {len(p.instance)} characters long, more than the {p.expected} allowed; shorten it"
    ),
    "minimum": lambda p: (
        f"{_shown(p.instance)} is too small; use a number of at least {p.expected}"
    ),
    "maximum": lambda p: f"{_shown(p.instance)} is too large; use a number of at most {p.expected}",
}


def _duplicates(key: str, files: list[str]) -> Iterator[Diagnostic]:
    """One error at each file that names `key`, readable or not: a file's name is its key."""
    for file in files:
        others = ", ".join(other for other in files if other != file)
        message = (
            f"flag key {key!r} is also declared in {others}; keys are unique across "
            "all folders: rename or remove one of the files"
        )
        yield Diagnostic(file, 1, 1, Severity.ERROR, "duplicate-flag", message)


__all__ = ["PROJECT_FILE", "FlagFile", "Validated", "did_you_mean", "validate"]
