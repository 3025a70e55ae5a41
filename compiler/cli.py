"""`flagc`: check flag files and build the snapshot. Exit 0 ok, 1 findings, 2 usage or I/O."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import sys
from collections.abc import Iterator, Sequence

from compiler.commands import OK, USAGE, UsageError, audit, build, check, diff, export
from compiler.printable import printable

COMMANDS = (check, build, audit, diff, export)


def main(argv: Sequence[str] | None = None) -> int:
    # A file name that is not valid UTF-8 reaches us as lone surrogates: print it escaped
    # rather than fail on it.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = argparse.ArgumentParser(prog="flagc", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subcommands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return USAGE if exc.code else OK
    try:
        with _collector_paused():
            code: int = args.run(args)
    except (OSError, ValueError, UsageError) as exc:
        print(printable(f"flagc: error: {exc}"), file=sys.stderr)  # may name a file or revision
        return USAGE
    return code


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # A run allocates millions of objects that all live until it ends; the cyclic garbage
    # collector would scan them again and again (it made loading three times slower).
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
