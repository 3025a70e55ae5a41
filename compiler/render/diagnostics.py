"""Reporters of diagnostics: a list of them -> text, JSON or GitHub workflow commands, and
the one-line count of errors and warnings that ends `flagc check` and `flagc build`."""

from __future__ import annotations

import json
from collections.abc import Callable

from compiler.diagnostics import Diagnostic, Severity
from compiler.printable import printable
from compiler.render.words import plural


def text(diagnostics: list[Diagnostic]) -> str:
    """One line per diagnostic, `file:line:col: severity[code]: message`, as compilers print;
    control characters in file names and messages are shown escaped (`printable`)."""
    return "".join(
        printable(f"{d.file}:{d.line}:{d.column}: {d.severity}[{d.code}]: {d.message}") + "\n"
        for d in diagnostics
    )


def as_json(diagnostics: list[Diagnostic]) -> str:
    """A JSON list of objects with the Diagnostic's six fields, for programs."""
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
    """Workflow commands, which GitHub shows as annotations on the pull request's lines.

    Escaped by GitHub's rules (the runner's toolkit): in data `%`, CR and LF; in properties
    also `:` and `,`. Other control characters, which the log would show raw, are escaped
    as in text output."""
    return "".join(
        f"::{'error' if d.severity is Severity.ERROR else 'warning'} "
        f"file={_property(d.file)},line={d.line},col={d.column},title={_property(d.code)}"
        f"::{_data(d.message)}\n"
        for d in diagnostics
    )


def _data(value: str) -> str:
    return printable(value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


REPORTERS: dict[str, Callable[[list[Diagnostic]], str]] = {
    "text": text,
    "json": as_json,
    "github": github,
}


def summary(diagnostics: list[Diagnostic]) -> str:
    """`2 errors, 1 warning`."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
