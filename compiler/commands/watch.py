"""`flagc watch [DIR] [-o OUT]`: the resident builder. Build as `flagc build` does, then
look at the flags folder every `--interval` seconds and build again when it changed (a new
commit, an edit), holding the last build in memory (compiler.watch). It runs until SIGTERM
or SIGINT (exit 0, after the build under way); a build that fails (findings, or the folder
or OUT unusable meanwhile) is reported, once, and the next change is built as usual. What
cannot be watched at all (DIR not a folder, OUT unusable, a bad --interval) exits 2 at
once."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from compiler import publish
from compiler.commands import OK, Subcommands, UsageError
from compiler.commands.build import add_build_options, report
from compiler.incremental import Kept
from compiler.printable import printable
from compiler.watch import State, watch
from core.process import collector_paused, going_on


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "watch",
        help="build, then build again each time the flags folder changes (a resident builder)",
        description="Build as `flagc build` does, then look at the flags folder every "
        "--interval seconds and build again when it changed (a new commit, an edit), "
        "holding the last build in memory so that the next one reads and imports nothing "
        "again. Runs until SIGTERM or SIGINT.",
    )
    add_build_options(parser)
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=2.0,
        help="seconds between looks at the folder (default: 2)",
    )
    parser.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:  # an hour: beyond that, a cron job
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 to 3600)")
    return seconds


def run(args: argparse.Namespace) -> int:
    """Build on each new state of the folder until told to stop."""
    going_on()  # this process builds again and again: it frees what each build leaves
    folder, out = Path(args.dir), args.out
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    try:
        publish.require_usable_out(out)
    except publish.OutputError as exc:
        raise UsageError(str(exc)) from None
    from compiler.build import build  # noqa: PLC0415 - as `flagc build`

    stop = threading.Event()

    def stopping(number: int, frame: FrameType | None) -> None:
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stopping)
    kept: Kept | None = None  # the last build this process published

    def build_once(seen: State) -> None:
        nonlocal kept
        at = seen.head or "the flags folder"
        try:
            with collector_paused():
                result = build(
                    folder,
                    out,
                    display_root=args.dir,
                    today=args.today,
                    strict=args.strict,
                    allow_shallow=args.allow_shallow,
                    kept=kept,
                )
        except (OSError, ValueError, publish.OutputError) as exc:  # the folder gone, OUT
            # made unusable: said once, and tried again when the folder changes
            print(printable(f"flagc: error: {exc}"), file=sys.stderr)
            print(f"flagc: {at} did not build; OUT keeps its last build", file=sys.stderr)
        else:
            if report(result, args.format, out) != OK:
                print(f"flagc: {at} did not build; OUT keeps its last build", file=sys.stderr)
            elif result.outputs:
                kept = result.published
        sys.stdout.flush()
        sys.stderr.flush()

    watch(folder, args.interval, stop, build_once)
    return OK
