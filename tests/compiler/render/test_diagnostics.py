"""Reporters of diagnostics (compiler.render.diagnostics) on hand-made diagnostics: GitHub's
escaping of data and properties, JSON keeping the message as it is, text one line each.
What `flagc check --format ...` prints through them is tested in test_cli.py."""

from __future__ import annotations

import json

from compiler.diagnostics import Diagnostic, Severity
from compiler.render.diagnostics import as_json, github, text

FIELDS = {"file", "line", "column", "severity", "code", "message"}


def test_github_escaping() -> None:
    diagnostics = [
        Diagnostic(
            "flags/a,b:c%.yaml", 3, 4, Severity.ERROR, "schema", "line one\nline two: 100%, ok\r"
        ),
        Diagnostic("flags/w.yaml", 1, 2, Severity.WARNING, "expired", "50%\n"),
    ]
    assert github(diagnostics) == (
        "::error file=flags/a%2Cb%3Ac%25.yaml,line=3,col=4,title=schema"
        "::line one%0Aline two: 100%25, ok%0D\n"
        "::warning file=flags/w.yaml,line=1,col=2,title=expired::50%25%0A\n"
    )
    rows = json.loads(as_json(diagnostics))
    assert rows[0]["message"] == "line one\nline two: 100%, ok\r"
    assert [set(row) for row in rows] == [FIELDS, FIELDS]
    lines = text(diagnostics).splitlines()  # one line per diagnostic, whatever the message
    assert len(lines) == 2
    assert lines[1].startswith("flags/w.yaml:1:2: warning[expired]: 50%")
