"""Reporters: a list of diagnostics -> text, JSON or GitHub workflow commands."""

from __future__ import annotations

import json
from collections.abc import Callable

from compiler.diagnostics import Diagnostic, Severity


def text(diagnostics: list[Diagnostic]) -> str:
    return "".join(
        f"{d.file}:{d.line}:{d.column}: {d.severity}[{d.code}]: {d.message}\n" for d in diagnostics
    )


def as_json(diagnostics: list[Diagnostic]) -> str:
    rows = [
        {
            "file": d.file,
            "line": d.line,
            "column": d.column,
            "severity": str(d.severity),
            "code": d.code,
            "message": d.message,
        }
        for d in diagnostics
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def github(diagnostics: list[Diagnostic]) -> str:
    """Workflow commands, which GitHub shows as annotations on the pull request's lines."""
    return "".join(
        f"::{'error' if d.severity is Severity.ERROR else 'warning'} "
        f"file={_property(d.file)},line={d.line},col={d.column},title={_property(d.code)}"
        f"::{_data(d.message)}\n"
        for d in diagnostics
    )


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


REPORTERS: dict[str, Callable[[list[Diagnostic]], str]] = {
    "text": text,
    "json": as_json,
    "github": github,
}


def summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
