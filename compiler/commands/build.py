"""`flagc build [DIR] [-o OUT]`: check, then write OUT/snapshot.json, OUT/audit.json and
OUT/flagd/<environment>.json (flagd's flag definitions, `core.flagd`) as one build,
swapped in whole (`compiler.publish`). The build itself is `compiler.build.build`: this
module parses the arguments, reports the result and picks the exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import load, publish
from compiler.commands import (
    FINDINGS,
    OK,
    USAGE,
    Subcommands,
    UsageError,
    add_check_options,
    exit_code,
)
from compiler.printable import printable
from compiler.render.diagnostics import REPORTERS, summary
from core.process import keep

if TYPE_CHECKING:
    from compiler.build import BuildResult


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "build",
        help="check, then write OUT/snapshot.json, OUT/audit.json and OUT/flagd/<env>.json",
        description="Check the flags; only when there is no error, write OUT/snapshot.json, "
        "OUT/audit.json and OUT/flagd/<environment>.json (flagd's flag definitions, for "
        "OpenFeature's flagd providers) as one build, swapped in whole by one rename.",
    )
    add_build_options(parser)
    parser.add_argument(
        "--summary", action="store_true", help="then print what is on where, one row a flag"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="compile every flag again, reusing nothing of the previous build in OUT",
    )
    parser.set_defaults(run=run)


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """What `flagc build` and `flagc watch` both take: the check's options, OUT and
    --allow-shallow."""
    add_check_options(parser)
    parser.add_argument("-o", "--out", type=Path, default=Path("build"), help="default: build")
    parser.add_argument(
        "--allow-shallow",
        action="store_true",
        help="build from a shallow clone anyway, marking the audit log incomplete",
    )


def run(args: argparse.Namespace) -> int:
    """Build, then report: the diagnostics on stdout in --format, notes and the outcome on
    stderr. Exit 0 when written, 1 for findings or a refused build, 2 for io-error or when
    reading the history or writing OUT failed."""
    reuse = not (args.full or args.summary)  # --summary prints every flag's matrix
    folder = load.settled(Path(args.dir))  # the read ahead and the build read the same
    ahead = _read_ahead(folder, args.out, reuse)
    # Imported here, not above: the files are read beside these imports (0.25 s).
    from compiler.build import build  # noqa: PLC0415

    try:
        result = build(
            folder,
            args.out,
            display_root=args.dir,
            today=args.today,
            strict=args.strict,
            allow_shallow=args.allow_shallow,
            reuse=reuse,
            ahead=ahead,
        )
    except publish.OutputError as exc:
        raise UsageError(str(exc)) from None
    keep(result)  # flagc ends at once (compiler.cli.run): left, not freed
    code = report(result, args.format, args.out)
    if code != OK:
        return code
    if args.summary:
        from compiler.render.matrix import matrix  # noqa: PLC0415 (as `build`)

        compiled = result.compiled
        assert compiled.grid is not None  # a written build compiled
        owners = {key: flag_file.flag.owner for key, flag_file in compiled.flags.items()}
        sys.stdout.write(matrix(compiled.grid, compiled.resolved, owners))
    return OK


def report(result: BuildResult, format_name: str, out: Path) -> int:
    """Print what a build found and did (the diagnostics on stdout in `format_name`, notes
    and the outcome on stderr); the exit code it calls for."""
    sys.stdout.write(REPORTERS[format_name](result.diagnostics))
    for note in result.notes:
        print(f"flagc: {note.level}: {note.message}", file=sys.stderr)
    if result.refused is not None:
        print(f"flagc: error: {result.refused}", file=sys.stderr)
        return FINDINGS
    if result.failed is not None:  # as compiler.cli reports an OSError: it may name a file
        print(printable(f"flagc: error: {result.failed}"), file=sys.stderr)
        return USAGE
    if not result.outputs:
        print(f"flagc: nothing written: {summary(result.diagnostics)}", file=sys.stderr)
        return exit_code(result.diagnostics) or FINDINGS
    print(built(result, out), file=sys.stderr)
    return OK


def _read_ahead(folder: Path, out: Path, reuse: bool) -> load.ReadAhead | None:
    """The flag files' reading, started (`load.read_ahead`), when the build will read them
    all: not when it may reuse OUT's last build (which reads only the files that changed)."""
    if reuse and publish.cache_path(out).exists():
        return None
    return load.read_ahead(folder)


def built(result: BuildResult, out: Path) -> str:
    """The line that says what a written build holds and where it went."""
    compiled = result.compiled
    assert compiled.grid is not None  # a written build compiled
    return (
        f"flagc: built {result.flag_count} flags for {len(compiled.grid.environments)} "
        f"environments x {len(compiled.grid.applications)} applications at revision "
        f"{result.revision} ({result.audit_entries} audit entries{_reused(result)}) -> {out}/"
    )


def _reused(result: BuildResult) -> str:
    return f", {result.reused} flags reused from the last build" if result.reused else ""
