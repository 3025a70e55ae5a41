"""`flagc build [DIR] [-o OUT]`: check, then write OUT/snapshot.json atomically."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler import emit, history
from compiler.commands import FINDINGS, OK, Subcommands, UsageError
from compiler.commands.check import add_check_options, compile_and_report
from compiler.diagnostics import has_errors
from compiler.report import matrix, summary


def register(commands: Subcommands) -> None:
    parser = commands.add_parser("build", help="check, then write OUT/snapshot.json")
    add_check_options(parser)
    parser.add_argument("-o", "--out", type=Path, default=Path("build"), help="default: build")
    parser.add_argument(
        "--summary", action="store_true", help="then print what is on where, one row a flag"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"the output {args.out} exists and is not a folder")
    compiled = compile_and_report(args)
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
