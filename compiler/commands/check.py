"""`flagc check [DIR]`: report every problem in the flag files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.commands import FINDINGS, OK, Subcommands, date_argument
from compiler.diagnostics import has_errors
from compiler.pipeline import Compiled, compile_tree
from compiler.report import REPORTERS, summary


def register(commands: Subcommands) -> None:
    parser = commands.add_parser("check", help="report every problem in the flag files")
    add_check_options(parser)
    parser.set_defaults(run=run)


def add_check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default="flags", help="the flags folder (default: flags)")
    parser.add_argument("--format", choices=sorted(REPORTERS), default="text")
    parser.add_argument("--strict", action="store_true", help="expired flags are errors")
    parser.add_argument(
        "--today", type=date_argument, default=None, help="judge expiry on this date (YYYY-MM-DD)"
    )


def compile_and_report(args: argparse.Namespace) -> Compiled:
    compiled = compile_tree(
        Path(args.dir), display_root=args.dir, today=args.today, strict=args.strict
    )
    sys.stdout.write(REPORTERS[args.format](compiled.diagnostics))
    return compiled


def run(args: argparse.Namespace) -> int:
    compiled = compile_and_report(args)
    print(
        f"flagc: {len(compiled.flags)} flags checked: {summary(compiled.diagnostics)}",
        file=sys.stderr,
    )
    return FINDINGS if has_errors(compiled.diagnostics) else OK
