"""One module per `flagc` command, each with `register(commands)` and `run(args) -> int`.

Exit codes: 0 ok, 1 findings, 2 usage or I/O problems.
"""

from __future__ import annotations

import argparse
import datetime
from typing import TYPE_CHECKING

from compiler.diagnostics import Diagnostic, has_errors, unreadable
from compiler.render.diagnostics import REPORTERS

OK, FINDINGS, USAGE = 0, 1, 2

if TYPE_CHECKING:  # what `ArgumentParser.add_subparsers()` returns, for `register`
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subcommands = argparse._SubParsersAction


def exit_code(diagnostics: list[Diagnostic]) -> int:
    """2 when an input could not be read (`io-error`), else 1 for errors, else 0."""
    if unreadable(diagnostics):
        return USAGE
    return FINDINGS if has_errors(diagnostics) else OK


class UsageError(Exception):
    """A problem with what the user asked for (not with the flags): exit code 2."""


def date_argument(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def add_check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default="flags", help="the flags folder (default: flags)")
    parser.add_argument("--format", choices=sorted(REPORTERS), default="text")
    parser.add_argument("--strict", action="store_true", help="expired flags are errors")
    parser.add_argument(
        "--today",
        type=date_argument,
        default=None,
        help="judge expiry on this date, and schedule-past at its midnight UTC (YYYY-MM-DD)",
    )
