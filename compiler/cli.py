"""`flagc`: check flag files and build the snapshot. Exit 0 ok, 1 findings, 2 usage or I/O."""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from compiler.commands import OK, USAGE, UsageError
from compiler.printable import printable
from core.process import collector_paused, ending_at_once

COMMANDS = ("check", "build", "watch", "audit", "diff", "export")  # compiler.commands.<name>


def main(argv: Sequence[str] | None = None) -> int:
    # A file name that is not valid UTF-8 reaches us as lone surrogates: print it escaped
    # rather than fail on it.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = argparse.ArgumentParser(prog="flagc", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _commands(sys.argv[1:] if argv is None else argv):
        importlib.import_module(f"compiler.commands.{name}").register(subcommands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return USAGE if exc.code else OK
    try:
        # A run makes millions of objects that all live until it ends.
        with collector_paused():
            code: int = args.run(args)
    except (OSError, ValueError, UsageError) as exc:
        print(printable(f"flagc: error: {exc}"), file=sys.stderr)  # may name a file or revision
        return USAGE
    return code


def run() -> NoReturn:
    """The `flagc` command: `main`, then out at once, its output flushed. A build leaves
    millions of objects, and the interpreter's teardown of them (and of every module) took
    0.1-0.2 s of a 10,000-flag build on one CPU, so the process says it ends at once
    (`core.process.ending_at_once`: nor is the collector resumed, nor the build freed);
    nothing is left to close by then (its outputs are published, its forked processes have
    answered; one still running or ending dies with this one)."""
    ending_at_once()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # nobody reads any more (a closed pipe): an I/O error
        code = code or USAGE
    os._exit(code)


def _commands(argv: Sequence[str]) -> Sequence[str]:
    """The commands to register: only the one named first, whose modules are all a run
    imports (every command's together take 0.4 s, a third of an incremental build); all of
    them for `flagc --help`, a mistyped command and the like, so argparse lists them."""
    return argv[:1] if argv[:1] and argv[0] in COMMANDS else COMMANDS
