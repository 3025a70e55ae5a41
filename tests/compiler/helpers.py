"""Helpers shared by the compiler's command tests."""

from __future__ import annotations

import pytest

from compiler.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`flagc argv` in process: its exit code, stdout and stderr, never a traceback."""
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err
