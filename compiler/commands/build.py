"""`flagc build [DIR] [-o OUT]`: check, then write OUT/snapshot.json, OUT/audit.json and
OUT/flagd/<environment>.json (flagd's flag definitions, `compiler.flagd`) as one build,
swapped in whole (`compiler.publish`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from compiler import audit, emit, flagd, publish
from compiler.commands import FINDINGS, OK, Subcommands, UsageError, exit_code
from compiler.commands.check import add_check_options, compile_and_report
from compiler.diagnostics import has_errors
from compiler.history import Repository
from compiler.regular import read_regular_file
from compiler.report import matrix, summary


class ShallowClone(Exception):
    """The history is cut short, so the audit log would be incomplete."""


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "build",
        help="check, then write OUT/snapshot.json, OUT/audit.json and OUT/flagd/<env>.json",
        description="Check the flags; only when there is no error, write OUT/snapshot.json, "
        "OUT/audit.json and OUT/flagd/<environment>.json (flagd's flag definitions, for "
        "OpenFeature's flagd providers) as one build, swapped in whole by one rename.",
    )
    add_check_options(parser)
    parser.add_argument("-o", "--out", type=Path, default=Path("build"), help="default: build")
    parser.add_argument(
        "--summary", action="store_true", help="then print what is on where, one row a flag"
    )
    parser.add_argument(
        "--allow-shallow",
        action="store_true",
        help="build from a shallow clone anyway, marking the audit log incomplete",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        publish.check_out(args.out)
    except publish.OutputError as exc:
        raise UsageError(str(exc)) from None
    compiled = compile_and_report(args)
    if has_errors(compiled.diagnostics) or compiled.grid is None:
        print(f"flagc: nothing written: {summary(compiled.diagnostics)}", file=sys.stderr)
        return exit_code(compiled.diagnostics) or FINDINGS
    with publish.locked(args.out):  # a second build into OUT waits for this one
        previous = previous_log(args.out / publish.AUDIT)
        try:
            log, revision = read_history(Path(args.dir), previous, args.allow_shallow)
        except ShallowClone as exc:
            print(f"flagc: error: {exc}", file=sys.stderr)
            return FINDINGS
        content = emit.snapshot(
            compiled.grid, compiled.flags, compiled.resolved, audit.flag_metadata(log)
        )
        rendered = emit.render(content, revision)
        document = {**content, "digest": rendered.digest, "revision": rendered.revision}
        publish.publish(
            args.out,
            rendered.data,
            # a build with no new commit keeps the (possibly large) log as it is
            None if log == previous else emit.serialize(log) + b"\n",
            flagd.definitions(document),
        )
    print(
        f"flagc: built {len(compiled.flags)} flags for {len(compiled.grid.environments)} "
        f"environments x {len(compiled.grid.applications)} applications at revision "
        f"{rendered.revision} ({len(log['entries'])} audit entries) -> {args.out}/",
        file=sys.stderr,
    )
    if args.summary:
        owners = {key: flag_file.flag.owner for key, flag_file in compiled.flags.items()}
        sys.stdout.write(matrix(compiled.grid, compiled.resolved, owners))
    return OK


def read_history(
    folder: Path, previous: dict[str, Any] | None, allow_shallow: bool
) -> tuple[dict[str, Any], str | None]:
    """The audit log (continuing `previous`, the last build's) and the revision; outside
    git, an empty log and no revision."""
    repository = Repository.open(folder)
    head = repository.head() if repository is not None else None
    if repository is None or head is None:
        where = "in a git work tree" if repository is None else "in a repository with commits"
        print(
            f"flagc: note: {folder} is not {where}: the audit log is empty and the revision "
            "is a hash of the content",
            file=sys.stderr,
        )
        return audit.empty(), None
    with repository:
        if repository.is_shallow() and not allow_shallow:
            raise ShallowClone(
                "this is a shallow clone, so the audit log would miss older changes; fetch "
                "the whole history (git fetch --unshallow; in GitHub Actions, actions/checkout "
                "with fetch-depth: 0), or build with --allow-shallow to mark it incomplete"
            )
        log = audit.extract(repository, previous)
        revision = repository.revision()
    if revision is not None and revision.endswith("-dirty"):
        print(
            f"flagc: warning: {folder} has uncommitted changes: the revision is {revision}, "
            "and the audit log covers committed changes only",
            file=sys.stderr,
        )
    return log, revision


def previous_log(path: Path) -> dict[str, Any] | None:
    """The audit log of the last build, to read only newer commits; None if unusable (a
    FIFO or a device in its place is unusable too, and never waited on)."""
    try:
        document = orjson.loads(read_regular_file(path))
    except (OSError, orjson.JSONDecodeError):
        return None
    return document if audit.usable(document) else None
