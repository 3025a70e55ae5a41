"""`flagc audit KEY [DIR]`: one flag's history, newest first: who, when, why, and what
changed, in fields and in resolved values (like `git log` for one flag, but semantic)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler import audit as audit_log
from compiler.commands import OK, Subcommands, UsageError
from compiler.git_repository import GitRepository
from compiler.printable import printable
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
        log = audit_log.extract(repository)
    entries = [entry for entry in log["entries"] if entry["flag"] == args.key]
    if not entries:
        keys = sorted({str(entry["flag"]) for entry in log["entries"] if entry["flag"]})
        raise UsageError(f"no flag {args.key!r} in the history{did_you_mean(args.key, keys)}")
    if args.format == "json":
        sys.stdout.write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(_text(entry) for entry in entries))
    return OK


def _text(entry: dict[str, Any]) -> str:
    """One entry as `git log` shows a commit; every line `printable` (names, messages and
    file names come from whoever made the commit)."""
    author = entry["author"]
    where = entry["file"]
    if entry["previous_file"]:
        where = f"{entry['previous_file']} -> {where}"
    lines = [
        f"commit {entry['commit']} ({entry['change']}) {where}",
        f"Author: {author['name']} <{author['email']}>",
        f"Date:   {entry['timestamp']}",
        "",
        *(f"    {line}".rstrip() for line in (entry["reason"] or "(no message)").split("\n")),
        "",
        *_changes(entry),
    ]
    return "\n".join(printable(line) for line in lines).rstrip("\n") + "\n"


def _changes(entry: dict[str, Any]) -> Iterator[str]:
    if entry["invalid"]:
        yield f"  the file was not valid here: {entry['invalid']}"
        return
    if entry["change"] in ("created", "deleted"):
        yield from _summary(entry)
    else:
        for value in entry["values"]:
            yield f"  {value['cell']}: {_state(value['from'])} -> {_state(value['to'])}"
    for change in entry["fields"]:
        old, new = _shown(change["from"]), _shown(change["to"])
        yield f"  {change['field']}: {old} -> {new}"


def _summary(entry: dict[str, Any]) -> Iterator[str]:
    """A created or deleted flag: where it was on, rather than every cell."""
    side = "to" if entry["change"] == "created" else "from"
    on = [value["cell"] for value in entry["values"] if value[side]]
    total = len(entry["values"])
    if total:
        where = "nowhere" if not on else "everywhere" if len(on) == total else ", ".join(on)
        yield f"  {'on' if entry['change'] == 'created' else 'was on'}: {where}"


def _state(value: bool | None) -> str:
    return "(absent)" if value is None else "on" if value else "off"


def _shown(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)
