"""`flagc audit KEY [DIR]`: one flag's history, newest first: who, when, why, and what
changed, in fields and in resolved values (like `git log` for one flag, but semantic)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from compiler import audit as audit_log
from compiler.audit import Entry
from compiler.commands import OK, Subcommands, UsageError
from compiler.git_repository import GitRepository
from compiler.printable import printable
from compiler.render.words import literal, rule_lines, state
from compiler.validate import did_you_mean


def register(commands: Subcommands) -> None:
    parser = commands.add_parser("audit", help="one flag's history from git, newest first")
    parser.add_argument("key", help="the flag's key")
    parser.add_argument("dir", nargs="?", default="flags", help="the flags folder (default: flags)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    repository = GitRepository.open(Path(args.dir))
    if repository is None:
        raise UsageError(f"{args.dir} is not in a git work tree: there is no history to read")
    with repository:
        log = audit_log.log(repository)
    entries = [entry for entry in log if entry.flag == args.key]
    if not entries:
        keys = sorted({entry.flag for entry in log if entry.flag})
        raise UsageError(f"no flag {args.key!r} in the history{did_you_mean(args.key, keys)}")
    if args.format == "json":
        rows = [audit_log.to_json(entry) for entry in entries]
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(_text(entry) for entry in entries))
    return OK


def _text(entry: Entry) -> str:
    """One entry as `git log` shows a commit; every line `printable` (names, messages and
    file names come from whoever made the commit)."""
    commit = entry.commit
    where = entry.file
    if entry.previous_file:
        where = f"{entry.previous_file} -> {where}"
    lines = [
        f"commit {commit.sha} ({entry.change}) {where}",
        f"Author: {commit.author_name} <{commit.author_email}>",
        f"Date:   {commit.authored_at}",
        "",
        *(f"    {line}".rstrip() for line in (commit.message or "(no message)").split("\n")),
        "",
        *_changes(entry),
    ]
    return "\n".join(printable(line) for line in lines).rstrip("\n") + "\n"


def _changes(entry: Entry) -> Iterator[str]:
    if entry.invalid:
        yield f"  the file was not valid here: {entry.invalid}"
        return
    if entry.change in ("created", "deleted"):
        yield from _summary(entry)
    else:
        for value in entry.values:
            yield f"  {value.cell}: {state(value.before)} -> {state(value.after)}"
    yield from (f"  {line}" for line in rule_lines(entry.rules))
    for change in entry.fields:
        yield f"  {change.path}: {literal(change.before)} -> {literal(change.after)}"


def _summary(entry: Entry) -> Iterator[str]:
    """A created or deleted flag: where it was on, rather than every cell; a typed flag:
    where it serves each variant (`serves green: production/web`)."""
    created = entry.change == "created"
    total = len(entry.values)
    if not total:
        return
    values = [(value.cell, value.after if created else value.before) for value in entry.values]
    if any(isinstance(value, str) for _, value in values):
        cells: dict[str, list[str]] = {}
        for cell, value in values:
            cells.setdefault(state(value), []).append(cell)
        verb = "serves" if created else "served"
        for variant, where in cells.items():
            yield f"  {verb} {variant}: {'everywhere' if len(where) == total else ', '.join(where)}"
        return
    on = [cell for cell, value in values if value]
    where_on = "nowhere" if not on else "everywhere" if len(on) == total else ", ".join(on)
    yield f"  {'on' if created else 'was on'}: {where_on}"
