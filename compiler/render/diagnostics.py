"""Reporters: a list of diagnostics -> text, JSON or GitHub workflow commands."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from compiler.diagnostics import Diagnostic, Severity
from compiler.printable import printable
from core.resolve import Grid, Resolution


def text(diagnostics: list[Diagnostic]) -> str:
    """One line per diagnostic, `file:line:col: severity[code]: message`, as compilers print;
    control characters in file names and messages are shown escaped (`printable`)."""
    return "".join(
        printable(f"{d.file}:{d.line}:{d.column}: {d.severity}[{d.code}]: {d.message}") + "\n"
        for d in diagnostics
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
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def matrix(grid: Grid, resolved: Mapping[str, Resolution], owners: Mapping[str, str]) -> str:
    """What is on where, one row a flag: each environment's value, then the applications
    that differ from it, e.g. `off (on: web)`."""
    header = ["flag", "owner", *grid.environments]
    rows = [header]
    for key in sorted(resolved):
        cells = resolved[key].cells
        row = [key, printable(owners[key])]
        for env in range(len(grid.environments)):
            base = cells[env * grid.width].value
            differ = [
                app
                for offset, app in enumerate(grid.applications, start=1)
                if cells[env * grid.width + offset].value != base
            ]
            state = "on" if base else "off"
            row.append(
                f"{state} ({'off' if base else 'on'}: {', '.join(differ)})" if differ else state
            )
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )
