"""`flagc audit KEY [DIR]`: one flag's history, newest first: who, when, why, and what
changed, in fields and in resolved values (like `git log` for one flag, but semantic)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler import audit as audit_log
from compiler.audit import Entry
from compiler.commands import OK, Subcommands, UsageError
from compiler.git_repository import GitRepository
from compiler.printable import printable
from compiler.render.words import literal, rule_lines, state
from compiler.validate import did_you_mean
from core.audit_bodies import steps_taken, taken_words


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
        complete = not repository.is_shallow()
    entries = [entry for entry in log if entry.flag == args.key]
    if not entries:
        keys = sorted({entry.flag for entry in log if entry.flag})
        raise UsageError(f"no flag {args.key!r} in the history{did_you_mean(args.key, keys)}")
    rows = [audit_log.to_json(entry) for entry in entries]
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        taken = _steps_taken(entries, rows, complete)
        sys.stdout.write("\n".join(_text(entry, taken) for entry in entries))
    return OK


def _steps_taken(
    entries: list[Entry], rows: list[dict[str, Any]], complete: bool
) -> dict[str | None, list[dict[str, Any]]]:
    """The flag's steps that have taken effect by now, by the commit that scheduled them
    (`core.audit_bodies.steps_taken`), the flag as its file declares it now replayed from
    the log's fields; none for a flag deleted since."""
    grid = entries[0].grids[1]
    if entries[0].change == "deleted" or grid is None:
        return {}
    declared = _declared(rows)
    found: dict[str | None, list[dict[str, Any]]] = {}
    for item in steps_taken(declared, grid.environments, rows, int(time.time()), complete=complete):
        found.setdefault(item["commit"], []).append(item)
    return found


def _declared(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The flag's declared fields after the newest of `rows` (newest first): every change
    replayed, oldest first (a created flag's entry holds every field it declares)."""
    data: dict[str, Any] = {}
    for row in reversed(rows):
        for change in sorted(row["fields"], key=lambda change: change["field"]):
            _put(data, change["field"], change["to"])
    return {"schedule": [], "environments": {}, **data}


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    """`value` at the dotted `path` of `data`; None removes it. Sorted by path, a mapping
    that replaces a value comes after the value's removal, and the reverse before."""
    *parents, leaf = path.split(".")
    node = data
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            if value is None:
                return  # nothing was declared below a plain value
            child = node[name] = {}
        node = child
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


def _text(entry: Entry, taken: dict[str | None, list[dict[str, Any]]]) -> str:
    """One entry as `git log` shows a commit, with the steps it scheduled that have taken
    effect; every line `printable` (names, messages and file names come from whoever made
    the commit)."""
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
        *(f"  {taken_words(item, '->')}" for item in taken.get(commit.sha, ())),
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
