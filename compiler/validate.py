"""Stage 2, validate: source files -> typed flags and project, against the JSON Schemas.

The pydantic models accept exactly what the schemas accept, and cost a few microseconds a
document, so they run first; the schema's full error reporting runs only for documents
that fail, so a clean tree of thousands of flags pays little for it.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jsonschema
import pydantic

from compiler.diagnostics import Diagnostic, Severity
from compiler.load import PROJECT_FILE, Loaded, SourceFile
from core.model import DATE_PATTERN, NAME_PATTERN, TAG_PATTERN, TEXT_PATTERN, Flag, Project
from core.schemas import schema_document


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


def validate(loaded: Loaded) -> Validated:
    """Check each document against its schema; keep the valid ones, typed, by flag key."""
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
        flag = _validate_one(document, Flag, "flag", "schema", result.diagnostics)
        if flag is not None:
            result.flags[document.key] = FlagFile(document.key, document, flag)
    for key, files in owners.items():
        if len(files) > 1:  # neither copy stands in for the flag
            result.flags.pop(key, None)
            result.diagnostics.extend(_duplicates(key, sorted(files)))
    return result


M = TypeVar("M", bound=pydantic.BaseModel)


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
            for problem in _problems(error)
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
    return jsonschema.Draft202012Validator(
        schema_document(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@dataclass(frozen=True, slots=True)
class _Problem:
    """One schema violation, in the terms our messages need."""

    kind: str  # the JSON Schema keyword, or "unknown-field"
    path: tuple[str | int, ...]
    instance: Any
    expected: Any  # the keyword's value in the schema
    text: str  # jsonschema's own message, for keywords we do not word ourselves
    on_key: bool = False


def _problems(error: jsonschema.ValidationError) -> Iterator[_Problem]:
    path = tuple(error.absolute_path)
    instance: Any = error.instance
    expected: Any = error.validator_value
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
    message = _MESSAGES[problem.kind](problem) if problem.kind in _MESSAGES else problem.text
    text = f"{where}: {message}" if where else message
    return Diagnostic(document.file, line, column, Severity.ERROR, code, text)


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{_name(p)}" for p in path).lstrip(".")


def _name(part: str) -> str:
    return part if part.isprintable() else repr(part)


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
    "format": _bad_date,  # the only format in our schemas; worded like its pattern: one report
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
