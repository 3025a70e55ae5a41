"""`flagc`: check flag files and build the snapshot. Exit 0 ok, 1 findings, 2 usage or I/O."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import io
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from compiler import emit, history
from compiler.diagnostics import has_errors
from compiler.pipeline import Compiled, compile_tree
from compiler.report import REPORTERS, matrix, summary

OK, FINDINGS, USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    # A file name that is not valid UTF-8 reaches us as lone surrogates: print it escaped
    # rather than fail on it.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return USAGE if exc.code else OK
    try:
        with _collector_paused():
            code: int = args.run(args)
    except (OSError, ValueError) as exc:
        print(f"flagc: error: {exc}", file=sys.stderr)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flagc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="report every problem in the flag files")
    _add_check_options(check)
    check.set_defaults(run=_check)
    build = commands.add_parser("build", help="check, then write OUT/snapshot.json")
    _add_check_options(build)
    build.add_argument("-o", "--out", type=Path, default=Path("build"), help="default: build")
    build.add_argument(
        "--summary", action="store_true", help="then print what is on where, one row a flag"
    )
    build.set_defaults(run=_build)
    return parser


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default="flags", help="the flags folder (default: flags)")
    parser.add_argument("--format", choices=sorted(REPORTERS), default="text")
    parser.add_argument("--strict", action="store_true", help="expired flags are errors")
    parser.add_argument(
        "--today", type=_date, default=None, help="judge expiry on this date (YYYY-MM-DD)"
    )


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _compile(args: argparse.Namespace) -> Compiled:
    compiled = compile_tree(
        Path(args.dir), display_root=args.dir, today=args.today, strict=args.strict
    )
    sys.stdout.write(REPORTERS[args.format](compiled.diagnostics))
    return compiled


def _check(args: argparse.Namespace) -> int:
    compiled = _compile(args)
    print(
        f"flagc: {len(compiled.flags)} flags checked: {summary(compiled.diagnostics)}",
        file=sys.stderr,
    )
    return FINDINGS if has_errors(compiled.diagnostics) else OK


def _build(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise NotADirectoryError(f"the output {args.out} exists and is not a folder")
    compiled = _compile(args)
    if has_errors(compiled.diagnostics) or compiled.grid is None:
        print(f"flagc: nothing written: {summary(compiled.diagnostics)}", file=sys.stderr)
        return FINDINGS
    revision = history.revision(Path(args.dir))
    content = emit.snapshot(compiled.grid, compiled.flags, compiled.resolved)
    rendered = emit.render(content, revision)
    target = args.out / "snapshot.json"
    emit.write_atomic(target, rendered.data)
    print(
        f"flagc: built {len(compiled.flags)} flags for {len(compiled.grid.environments)} "
        f"environments x {len(compiled.grid.applications)} applications at revision "
        f"{rendered.revision} -> {target}",
        file=sys.stderr,
    )
    if args.summary:
        owners = {key: flag_file.flag.owner for key, flag_file in compiled.flags.items()}
        sys.stdout.write(matrix(compiled.grid, compiled.resolved, owners))
    return OK
