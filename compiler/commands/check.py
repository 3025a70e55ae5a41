"""`flagc check [DIR] [--reasons BASE..HEAD]`: report every problem in the flag files, and
with --reasons in the messages of the commits that changed them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import load
from compiler.commands import Subcommands, UsageError, add_check_options, exit_code
from compiler.render.diagnostics import REPORTERS, summary
from core.process import keep

if TYPE_CHECKING:
    from compiler.git_log import Commit
    from compiler.git_repository import GitRepository
    from compiler.pipeline import Compiled

SHALLOW_HINT = (
    "fetch the full history (git fetch --unshallow; in GitHub Actions, actions/checkout "
    "with fetch-depth: 0)"
)


def register(commands: Subcommands) -> None:
    parser = commands.add_parser("check", help="report every problem in the flag files")
    add_check_options(parser)
    parser.add_argument(
        "--reasons",
        metavar="BASE..HEAD",
        help="also fail commits in this range that change flags with too thin a message "
        "(BASE...HEAD means the same; a single REV means REV..HEAD)",
    )
    parser.set_defaults(run=run)


def _compile(args: argparse.Namespace) -> Compiled:
    """Every finding in the folder; its files are read in a forked process while this one
    imports the compiler, then checked as they arrive (compiler.load.ReadAhead), as a build
    reads them."""
    folder = Path(args.dir)
    ahead = load.read_ahead(folder)
    try:
        # Imported here, not above: the files are read beside these imports (0.25 s).
        from compiler.pipeline import compile_tree  # noqa: PLC0415

        return compile_tree(
            folder, display_root=args.dir, today=args.today, strict=args.strict, ahead=ahead
        )
    finally:
        if ahead is not None:
            ahead.cancel()


def run(args: argparse.Namespace) -> int:
    # Everything that can be a usage error (a missing folder, not a repository, an unknown
    # revision) happens before anything is printed: exit 2 comes with findings only when a
    # file could not be read (io-error), and then they are reported.
    compiled = _compile(args)
    keep(compiled)  # flagc ends at once (compiler.cli.run): left, not freed
    diagnostics = compiled.diagnostics
    checked = f"{len(compiled.flags)} flags"
    if args.reasons is not None:
        from compiler.reasons import check_reasons  # noqa: PLC0415 - only with --reasons
        from core.model import ReasonPolicy  # noqa: PLC0415

        folder = Path(args.dir)
        commits = _commits(folder, args.reasons)
        policy = compiled.project.reasons if compiled.project is not None else ReasonPolicy()
        found = check_reasons(commits, policy, args.dir)
        # By place, as the rest are; several commits at one file stay oldest first.
        diagnostics = sorted([*diagnostics, *found], key=lambda d: (d.file, d.line, d.column))
        checked += f" and {len(commits)} commit{'s' * (len(commits) != 1)}"
    sys.stdout.write(REPORTERS[args.format](diagnostics))
    print(f"flagc: {checked} checked: {summary(diagnostics)}", file=sys.stderr)
    return exit_code(diagnostics)


def _commits(folder: Path, revisions: str) -> list[Commit]:
    """The commits in `revisions` that changed the flags folder, oldest first."""
    from compiler.git_repository import GitRepository  # noqa: PLC0415 - only with --reasons

    base, head = split_range(revisions)
    repository = GitRepository.open(folder)
    if repository is None:
        raise UsageError(f"--reasons reads git history, but {folder} is not in a git work tree")
    with repository:
        base_sha, head_sha = _commit_of(repository, base), _commit_of(repository, head)
        # Full SHAs, not the user's text: git log never sees an option-like argument.
        return repository.log_range(f"{base_sha}..{head_sha}")


def split_range(revisions: str) -> tuple[str, str]:
    """(BASE, HEAD) of `BASE..HEAD`, `BASE...HEAD` or `REV` (REV..HEAD); an empty side is
    HEAD, as in git.

    BASE...HEAD means BASE..HEAD: for `git log` three dots would also list the commits on
    BASE's side since the branches parted, which are not the change under review.
    """
    dots = "..." if "..." in revisions else ".."
    base, separator, head = revisions.partition(dots)
    if not revisions.strip() or (separator and base == head == ""):
        raise UsageError(f"--reasons {revisions!r}: name a range such as origin/main..HEAD")
    if not separator:
        return revisions, "HEAD"
    return base or "HEAD", head or "HEAD"


def _commit_of(repository: GitRepository, revision: str) -> str:
    sha = repository.resolve(revision)
    if sha is not None:
        return sha
    if repository.is_shallow():
        raise UsageError(
            f"--reasons: {revision!r} is not in this shallow clone, so the commits since it "
            f"cannot be read; {SHALLOW_HINT}"
        )
    raise UsageError(
        f"--reasons: unknown revision {revision!r}; name a commit, branch or tag of this "
        "repository (a remote branch must be fetched first)"
    )
