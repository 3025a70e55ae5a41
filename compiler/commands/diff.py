"""`flagc diff BASE [HEAD]`: the plan of a pull request, from BASE to HEAD or the work tree."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from compiler.commands import FINDINGS, OK, USAGE, Subcommands, UsageError
from compiler.diagnostics import unreadable
from compiler.git_repository import GitRepository
from compiler.pipeline import Compiled, compile_tree
from compiler.plan import Label, Plan, plan
from compiler.render import plan_json, plan_markdown, plan_text
from core.process import keep

WORK_TREE = "working tree"
REPORTERS: dict[str, Callable[[Plan], str]] = {
    "text": plan_text.render,
    "json": plan_json.render,
    "markdown": plan_markdown.render,
}


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "diff", help="what a change does to the flags: added, removed, moved, values that change"
    )
    parser.add_argument("base", metavar="BASE", help="a git revision, e.g. origin/main")
    parser.add_argument(
        "head", metavar="HEAD", nargs="?", default=None, help="a git revision (default: the "
        "flags folder as it is on disk)"
    )  # fmt: skip
    parser.add_argument("--dir", default="flags", help="the flags folder (default: flags)")
    parser.add_argument("--format", choices=sorted(REPORTERS), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():  # also how the repository is found, so it must exist on disk
        raise UsageError(f"{args.dir} is not a folder of flag files")
    repository = GitRepository.open(folder)
    if repository is None:
        raise UsageError(f"{args.dir} is not in a git work tree; flagc diff compares revisions")
    head: Compiled | None
    with repository, tempfile.TemporaryDirectory(prefix="flagc-diff-") as scratch:
        base_label, base = _at(repository, args.base, Path(scratch) / "base", args.dir)
        if args.head is None:
            head_label, head = Label(WORK_TREE), compile_tree(folder, display_root=args.dir)
        else:
            head_label, head = _at(repository, args.head, Path(scratch) / "head", args.dir)
    keep((base, head))  # flagc ends at once (compiler.cli.run): left, not freed
    result = plan(base, head, base_label=base_label, head_label=head_label)
    sys.stdout.write(REPORTERS[args.format](result))
    if result.head.errors:
        errors = f"{result.head.errors} error{'s' * (result.head.errors != 1)}"
        print(f"flagc: HEAD has {errors}; `flagc check {args.dir}` lists them", file=sys.stderr)
        # A file of the work tree that could not be read (io-error) is exit 2, as in check.
        return USAGE if head is not None and unreadable(head.diagnostics) else FINDINGS
    return OK


def _at(
    repository: GitRepository, revision: str, scratch: Path, display_root: str
) -> tuple[Label, Compiled | None]:
    """The flags folder at `revision`, compiled; None when it did not exist there."""
    commit = _commit(repository, revision)
    label = Label(revision, commit)
    if repository.file_at(commit, "") is None:  # the folder itself, as a tree
        return label, None
    repository.write_folder_at(commit, scratch)
    return label, compile_tree(scratch, display_root=display_root)


def _commit(repository: GitRepository, revision: str) -> str:
    commit = repository.resolve(revision)
    if commit is None:
        # CI checkouts are shallow by default, and then the base branch is not there.
        hint = "; this clone is shallow: fetch it first" if repository.is_shallow() else ""
        raise UsageError(f"{revision!r} names no commit in {repository.root}{hint}")
    return commit
