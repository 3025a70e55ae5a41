"""audit.json's file format 3: the audit log with each thing said once, and back.

The log in memory (what `compiler.audit.extract` makes, the API serves and `flagc audit
--format json` prints, format 1) repeats its commit's metadata in every entry, the paths of
files and fields and the names of cells wherever they appear, and lists every resolved cell
of a created or deleted flag. The file (format 3) says each once:

- Tables: `people` (authors and committers), `grids` (environments and applications),
  `files` (the paths of flag files), `fields` (the dotted paths of declared fields) and
  `cells` (cell names), which the commits name by index. Each lists its items in the order
  of their first use reading the log from its oldest entry (the last one) up, an entry's
  names in the order it writes them, and the commits' people likewise from the oldest
  commit: a newer log only adds to the tables' ends, so `prepend` reuses the old commits
  as they are.
- `commits`: the entries grouped by commit (a run of entries of one commit), newest first,
  its metadata once; author and committer as indexes into `people`; `committer` omitted
  when it is the author, `committed_at` when it is the timestamp, `subject` when it is the
  message's first line (as `compiler.git_log` takes git's subject).
- An entry's `file` and `previous_file` are indexes into `files` (`file` null for none);
  it omits `change` when it is "modified", `flag` when it is its file's name without the
  extension, and `previous_file`, `invalid`, `fields` and `values` when null or empty.
- `fields`: `[field, from, to]` triples, `field` an index into `fields`; for two fields or
  more whose every `from` is null (a created flag), `{"names": [field, ...], "to": [to,
  ...]}`, the fields and their values in one order (every `to` null, a deleted flag:
  `"from"`).
- `values`: runs of cells that changed alike, `[from, to, [cell, ...]]`, each cell an index
  into `cells`; when the cells are a whole grid (every environment, each followed by every
  application) and one side is all null, `{"grid": i, "to": [...]}` (or `"from"`),
  `grids[i]` naming the environments and applications, with one item per environment: its
  value, or `[its value, {application: value}]` for the applications whose value differs
  from it.

`expand(compact(log)) == log` for every log (tests/core/test_audit_format.py); `expand`
raises ValueError, saying where, for a document `compact` does not write. `prepend`
continues a document with a build's newer entries, writing what `compact` writes for the
whole log without expanding the old commits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple

import orjson

from core.canonical import serialize

LOG_FORMAT: Final = 1  # the log in memory, as served
FILE_FORMAT: Final = 3  # audit.json
DEFAULT_CHANGE: Final = "modified"  # an entry's change when the file omits it: the most common

_ENTRY_KEYS: Final = frozenset(
    ("change", "flag", "file", "previous_file", "fields", "values", "invalid")
)
_COMMIT_KEYS: Final = frozenset(
    ("commit", "author", "committer", "timestamp", "committed_at", "subject", "reason", "entries")
)
_DOCUMENT_KEYS: Final = frozenset(
    ("format", "head", "complete", "people", "grids", "files", "fields", "cells", "commits")
)
TABLES: Final = ("files", "fields", "cells")  # the tables of names (strings)
_OPTIONAL: Final = ("previous_file", "invalid")

Log = dict[str, Any]
GridKey = tuple[tuple[str, ...], tuple[str, ...]]  # a grid's environments and applications


def subject_of(message: str) -> str:
    """A message's subject, as compiler.git_log.Commit takes it."""
    return message.split("\n", 1)[0].strip(" \t\r")


def stem_of(file: str) -> str | None:
    """A flag file's name without its extension (None without one)."""
    stem, dot, _ = file.rsplit("/", 1)[-1].rpartition(".")
    return stem if dot else None


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type (True is not 1 here)."""
    return type(a) is type(b) and a == b


# -- compact ------------------------------------------------------------------------------


class _Tables:
    """The file's tables, each item -> its index (in order), and what is known of cell
    lists and grids."""

    def __init__(self) -> None:
        self.people: dict[tuple[str, str], int] = {}
        self.grids: dict[GridKey, int] = {}
        self.files: dict[str, int] = {}
        self.fields: dict[str, int] = {}
        self.cells: dict[str, int] = {}
        self.shapes: dict[tuple[str, ...], GridKey | None] = {}  # a cell list's grid, found once

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> _Tables:
        """A document's tables, to number a newer log's names after them; ValueError when
        one names an item twice (`compact` never does)."""
        tables = cls()
        tables.people = _numbered([(p["name"], p["email"]) for p in document["people"]])
        tables.grids = _numbered(
            [(tuple(g["environments"]), tuple(g["applications"])) for g in document["grids"]]
        )
        tables.files = _numbered(document["files"])
        tables.fields = _numbered(document["fields"])
        tables.cells = _numbered(document["cells"])
        return tables

    def grid(self, cells: tuple[str, ...]) -> GridKey | None:
        if cells not in self.shapes:
            self.shapes[cells] = _grid_of(cells)
        return self.shapes[cells]

    def number(self, commits: Sequence[dict[str, Any]]) -> None:
        """Put each name the commits hold (as `Writer` writes them) to its index, numbering
        the new ones at their tables' ends, from the oldest commit and entry up."""
        people = self.people
        for commit in reversed(commits):
            commit["author"] = people.setdefault(commit["author"], len(people))
            if "committer" in commit:
                commit["committer"] = people.setdefault(commit["committer"], len(people))
            for entry in reversed(commit["entries"]):
                self._number_entry(entry)

    def _number_entry(self, entry: dict[str, Any]) -> None:
        files, fields = self.files, self.fields
        if entry["file"] is not None:
            entry["file"] = files.setdefault(entry["file"], len(files))
        if "previous_file" in entry:
            entry["previous_file"] = files.setdefault(entry["previous_file"], len(files))
        found = entry.get("fields")
        if type(found) is list:
            for item in found:
                item[0] = fields.setdefault(item[0], len(fields))
        elif found is not None:
            found["names"] = [fields.setdefault(name, len(fields)) for name in found["names"]]
        found = entry.get("values")
        if type(found) is list:
            cells = self.cells
            for run in found:
                run[2] = [cells.setdefault(cell, len(cells)) for cell in run[2]]
        elif found is not None:
            found["grid"] = self.grids.setdefault(found["grid"], len(self.grids))

    def document(self, head: Any, complete: Any, commits: list[Any]) -> Log:
        return {
            "format": FILE_FORMAT,
            "head": head,
            "complete": complete,
            "people": [{"name": name, "email": email} for name, email in self.people],
            "grids": [
                {"environments": list(envs), "applications": list(apps)}
                for envs, apps in self.grids
            ],
            "files": list(self.files),
            "fields": list(self.fields),
            "cells": list(self.cells),
            "commits": commits,
        }


def _numbered(items: Sequence[Any]) -> dict[Any, int]:
    table = {item: index for index, item in enumerate(items)}
    if len(table) != len(items):
        raise ValueError("an audit document's table names an item twice")
    return table


class Metadata(NamedTuple):
    """A commit's metadata, which format 1 repeats in each of its entries (people as
    (name, email))."""

    commit: Any
    author: tuple[str, str]
    committer: tuple[str, str]
    timestamp: Any
    committed_at: Any
    subject: Any
    reason: Any


Change = tuple[str, Any, Any]  # a field's (field, from, to), or a value's (cell, from, to)


class Writer:
    """The file's document, written entry by entry (newest first) as `compact` writes a
    log's: `compact` feeds it format-1 entries (`add`), and a caller holding its entries in
    another form feeds their parts (`commit`, `entry`), so that the rules stay in one place
    (compiler.audit writes a created flag's values from its cells, with no format-1 item per
    cell: `grid_values`). The commits hold names (people, files, fields, cells, grids) until
    `numbered` puts them to indexes, which count from the oldest entry: once, at the end
    (walking the log in memory backwards instead is slower: it defeats the CPU's caches)."""

    def __init__(self, tables: _Tables | None = None) -> None:
        self.tables = _Tables() if tables is None else tables
        self.commits: list[dict[str, Any]] = []
        self.metadata: Metadata | None = None  # the last commit's
        self._numbered = False

    def add(self, entry: Mapping[str, Any]) -> None:
        """A format-1 entry."""
        self.commit(_metadata(entry))
        items = entry["values"]
        values = self.values([(v["cell"], v["from"], v["to"]) for v in items]) if items else None
        fields = [(f["field"], f["from"], f["to"]) for f in entry["fields"]]
        self.entry(
            entry["change"],
            entry["flag"],
            entry["file"],
            fields,
            values,
            previous_file=entry["previous_file"],
            invalid=entry["invalid"],
        )

    def commit(self, metadata: Metadata) -> None:
        """The next entries are this commit's: a run of the last one when its metadata is
        the same (`compact` groups a log's consecutive entries of one commit so), else a new
        commit."""
        if metadata != self.metadata:
            self.metadata = metadata
            self.commits.append(_commit(metadata))

    def entry(
        self,
        change: Any,
        flag: Any,
        file: Any,
        fields: Sequence[Change],
        values: Any,
        *,
        previous_file: Any = None,
        invalid: Any = None,
    ) -> None:
        """An entry of the last commit; `values` as `values` or `grid_values` write them
        (None for none)."""
        compact: dict[str, Any] = {"file": file}
        if not _same(change, DEFAULT_CHANGE):
            compact["change"] = change
        if not (isinstance(file, str) and isinstance(flag, str) and stem_of(file) == flag):
            compact["flag"] = flag
        if previous_file is not None:
            compact["previous_file"] = previous_file
        if invalid is not None:
            compact["invalid"] = invalid
        if fields:
            compact["fields"] = _fields(fields)
        if values is not None:
            compact["values"] = values
        self.commits[-1]["entries"].append(compact)

    def values(self, changes: Sequence[Change]) -> Any:
        """An entry's values (at least one): a whole grid's, one side all null, per
        environment (`grid_values`); any others as runs of cells that changed alike."""
        sides = [item[1] for item in changes], [item[2] for item in changes]
        for side, cells, other in (("to", sides[1], sides[0]), ("from", sides[0], sides[1])):
            if other.count(None) == len(changes):
                found = self.grid_values(tuple(item[0] for item in changes), side, cells)
                if found is not None:
                    return found
        runs: list[list[Any]] = []
        for cell, before, after in changes:
            if runs and _same(runs[-1][0], before) and _same(runs[-1][1], after):
                runs[-1][2].append(cell)
            else:
                runs.append([before, after, [cell]])
        return runs

    def grid_values(self, names: tuple[str, ...], side: str, cells: Sequence[Any]) -> Any:
        """The values of the cells `names` (in order), whose values on `side` ("to" or
        "from") are `cells` and on the other side all null, per environment, when the names
        are a whole grid and the values booleans or strings; else None."""
        if not set(map(type, cells)) <= {bool, str}:
            return None
        grid = self.tables.grid(names)
        if grid is None:
            return None
        return {"grid": grid, side: _by_environment(cells, grid[1])}

    def numbered(self) -> list[dict[str, Any]]:
        """The commits with their names put to indexes (once: a writer writes one log)."""
        if not self._numbered:
            self._numbered = True
            self.tables.number(self.commits)
        return self.commits

    def document(self, head: Any, complete: Any) -> Log:
        return self.tables.document(head, complete, self.numbered())


def compact(log: Mapping[str, Any]) -> Log:
    """The file's document for a log (format 1 in memory)."""
    if log.get("format") != LOG_FORMAT:
        raise ValueError(f"not an audit log of format {LOG_FORMAT}")
    writer = Writer()
    for entry in log["entries"]:
        writer.add(entry)
    return writer.document(log["head"], log["complete"])


def _who(person: Mapping[str, str]) -> tuple[str, str]:
    return person["name"], person["email"]


def _metadata(entry: Mapping[str, Any]) -> Metadata:
    return Metadata(
        entry["commit"],
        _who(entry["author"]),
        _who(entry["committer"]),
        entry["timestamp"],
        entry["committed_at"],
        entry["subject"],
        entry["reason"],
    )


def _commit(metadata: Metadata) -> dict[str, Any]:
    """A commit as the writer holds it: its people by name until numbered."""
    commit: dict[str, Any] = {
        "commit": metadata.commit,
        "author": metadata.author,
        "timestamp": metadata.timestamp,
        "reason": metadata.reason,
        "entries": [],
    }
    if metadata.committer != metadata.author:
        commit["committer"] = metadata.committer
    if metadata.committed_at != metadata.timestamp:
        commit["committed_at"] = metadata.committed_at
    if not _same(metadata.subject, subject_of(metadata.reason)):
        commit["subject"] = metadata.subject
    return commit


def _fields(fields: Sequence[Change]) -> Any:
    """Triples, or, for two fields or more whose one side is all null, the names and the
    other side's values (two lists, not a list per field: a created flag's are many; one
    triple is shorter); fields by name until numbered."""
    if len(fields) > 1:
        names, before, after = zip(*fields, strict=True)  # (one pass in C: 10 ms at 10,000)
        if before.count(None) == len(before):
            return {"names": list(names), "to": list(after)}
        if after.count(None) == len(after):
            return {"names": list(names), "from": list(before)}
    return [list(item) for item in fields]


def _by_environment(cells: Sequence[Any], apps: Sequence[str]) -> list[Any]:
    """Each environment's value, with the applications that differ from it (booleans and
    strings only, so == is `_same`)."""
    width = len(apps) + 1
    found: list[Any] = []
    for start in range(0, len(cells), width):
        value = cells[start]
        row = cells[start + 1 : start + width]
        if row.count(value) == len(row):
            found.append(value)
        else:
            found.append(
                [value, {app: cell for app, cell in zip(apps, row, strict=True) if cell != value}]
            )
    return found


def _grid_of(cells: tuple[str, ...]) -> GridKey | None:
    """The environments and applications whose whole grid `cells` is, in order; None if
    it is not one (or an application name is repeated, which a per-environment map loses)."""
    envs = tuple(cell for cell in cells if "/" not in cell)
    if not envs or len(cells) % len(envs):
        return None
    width = len(cells) // len(envs)
    prefix = f"{envs[0]}/"
    if not all(cell.startswith(prefix) for cell in cells[1:width]):
        return None
    apps = tuple(cell[len(prefix) :] for cell in cells[1:width])
    if len(set(apps)) != len(apps) or _names(envs, apps) != cells:
        return None
    return envs, apps


def _names(envs: Sequence[str], apps: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for env in envs for name in (env, *(f"{env}/{app}" for app in apps)))


# -- prepend ------------------------------------------------------------------------------


def prepend(
    document: Mapping[str, Any],
    newer: Sequence[Mapping[str, Any]],
    head: str | None,
    complete: bool,
) -> Log:
    """The file document of the log whose entries are `newer` (format-1 entries, newest
    first) followed by those of `document` (a document as `compact` writes it), with `head`
    and `complete`; the old commits are not expanded, nor changed, nor copied: their tables
    count from the oldest entry, so the newer entries' new names only go at the tables'
    ends.

    The rule: `prepend(compact(L), N, h, c) == compact({"format": 1, "head": h, "complete":
    c, "entries": [*N, *L["entries"]]})` (tests/core/test_audit_format.py). N's last run
    continues the old first commit when their metadata is the same, as `compact` would (the
    old entries are older, so numbered before N's either way).
    """
    writer = _after(document, newer)
    commits: list[Any] = writer.numbered()
    old: Sequence[Mapping[str, Any]] = document["commits"]
    last = writer.metadata
    if last is not None and old and last == _old_metadata(old[0], document["people"]):
        # one commit across the seam: compact's run goes on into the old first commit
        commits[-1]["entries"].extend(old[0]["entries"])
        old = old[1:]
    commits.extend(old)
    return writer.tables.document(head, complete, commits)


# Where the commits stand in a file's canonical bytes (sorted keys, no white space): after
# the `cells` table and before `complete`. Each marker occurs once: a `"` inside a string is
# escaped, and no object inside the commits has a key `commits` or `complete`.
_COMMITS, _COMPLETE = b',"commits":[', b'],"complete":'
_FIRST_SHA = re.compile(rb'\{"author":\d+,"commit":"([^"\\]*)"')  # of the newest old commit


def prepend_file(
    data: bytes, newer: Sequence[Mapping[str, Any]], head: str | None, complete: bool
) -> bytes:
    """The file (canonical bytes and a newline) of `prepend(orjson.loads(data), newer, head,
    complete)`, from the file `data`, its old commits neither parsed nor serialized again:
    they are copied as bytes after the newer ones, and only the tables are read (at 10,000
    flags, 4.6 MB parsed in 40 ms and serialized again in 20 ms, against a few ms). When the
    newer entries' last commit is the newest old one (`prepend` then joins the two), or the
    bytes are not laid out as this module writes them, the file is parsed whole. Raises
    ValueError as `prepend` does, and for bytes that are no JSON."""
    text = data[:-1] if data.endswith(b"\n") else data
    start, end = text.find(_COMMITS), text.find(_COMPLETE)
    plain = (
        text.startswith(b'{"cells":')
        and 0 < start < end
        and text.rfind(_COMMITS) == start
        and text.rfind(_COMPLETE) == end
    )
    old = text[start + len(_COMMITS) : end] if plain else b""
    first = _FIRST_SHA.match(old) if old else None
    seam = first is not None and bool(newer) and newer[-1]["commit"] == first.group(1).decode()
    if not plain or (old and first is None) or seam:  # (seam: one commit across it)
        return _prepended_whole(text, newer, head, complete)
    writer = _after(_loads(text[: start + len(_COMMITS)] + text[end:]), newer)
    commits: list[Any] = writer.numbered()
    written = serialize(writer.tables.document(head, complete, []))
    seam = written.find(b',"commits":[]')
    new = serialize(commits)[1:-1]
    joined = b",".join(part for part in (new, old) if part)
    cut = seam + len(_COMMITS)
    return b"".join((written[:cut], joined, written[cut:], b"\n"))


def _prepended_whole(
    text: bytes, newer: Sequence[Mapping[str, Any]], head: str | None, complete: bool
) -> bytes:
    return serialize(prepend(_loads(text), newer, head, complete)) + b"\n"


def _loads(text: bytes) -> Any:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not an audit document: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("not an audit document")
    return document


def _after(document: Mapping[str, Any], newer: Sequence[Mapping[str, Any]]) -> Writer:
    """A writer of `newer` (format-1 entries), its names numbered after the tables of
    `document` (a file's document, or its tables alone)."""
    if document.get("format") != FILE_FORMAT:
        raise ValueError(f"not an audit document of format {FILE_FORMAT}")
    writer = Writer(_Tables.of(document))
    for entry in newer:
        writer.add(entry)
    return writer


def _old_metadata(commit: Mapping[str, Any], people: Sequence[Any]) -> Metadata:
    """A document's commit's metadata, as `_metadata` takes it from an entry."""
    return Metadata(
        commit["commit"],
        _who(people[commit["author"]]),
        _who(people[commit.get("committer", commit["author"])]),
        commit["timestamp"],
        commit.get("committed_at", commit["timestamp"]),
        commit["subject"] if "subject" in commit else subject_of(commit["reason"]),
        commit["reason"],
    )


def headings(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Each entry of a file's document (newest first) with only what names it and its
    commit: `flag`, `change`, `timestamp`, `author` (its name) and `reason`, as `expand`
    gives them, without expanding fields and values (what a flag's history fields are made
    of, `compiler.audit.flag_metadata`). For a document of trusted origin: it checks little."""
    people = document["people"]
    stems = [stem_of(file) for file in document["files"]]
    for commit in document["commits"]:
        author = {"name": people[commit["author"]]["name"]}
        timestamp, reason = commit["timestamp"], commit["reason"]
        for entry in commit["entries"]:
            yield {
                "flag": entry["flag"] if "flag" in entry else stems[entry["file"]],
                "change": entry.get("change", DEFAULT_CHANGE),
                "timestamp": timestamp,
                "author": author,
                "reason": reason,
            }


# -- expand -------------------------------------------------------------------------------


class _Read(NamedTuple):
    """A document's tables, read; and the items an expanded log shares (`_Shared`)."""

    people: list[tuple[str, str]]
    grids: list[_Grid]
    files: list[str]
    fields: list[str]
    cells: list[str]
    shared: _Shared


# What a shared item's value may be: each is told from the others by its type (True from 1,
# which are equal), and one of a type is told from another by ==. Never a float (-0.0 ==
# 0.0, and they are written differently) nor a list or an object.
_SHAREABLE: Final = frozenset((bool, str, int, type(None)))


class _Shared:
    """The items of an expanded log that are equal, as one object: each a dict of three
    keys (`{"cell": ..., "to": ..., "from": ...}`, a field's, a person's), which a log
    repeats in every entry that names it: a created flag's every cell, its declared fields
    and its commit's people. Held as one, the log of 10,000 flags created in one commit
    takes 11 MB of Python objects, not 238 MB, and a 2,000-flag history of 10,000 commits
    13 MB, not 32 (a flagserve worker holds the log it serves); expanding the first takes
    0.21 s, not 0.29 s. What holds a log reads it and never changes it (the server, flagc
    continuing it)."""

    __slots__ = ("grids", "items", "people")

    def __init__(self) -> None:
        self.items: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.people: dict[tuple[str, str], dict[str, str]] = {}
        # A whole grid's values, by the grid, the side and the items' JSON (which tells
        # true from 1): half the flags of the bench's 10,000 were created with another's.
        self.grids: dict[tuple[int, str, str], list[dict[str, Any]]] = {}

    def item(
        self, name_key: str, name: str, side: str, value: Any, other: str, also: Any
    ) -> dict[str, Any]:
        """`{name_key: name, side: value, other: also}`, the one for its keys and values when
        both values are shareable."""
        if type(value) not in _SHAREABLE or type(also) not in _SHAREABLE:
            return {name_key: name, side: value, other: also}
        key = (name_key, name, side, type(value), value, type(also), also)
        found = self.items.get(key)
        if found is None:
            found = self.items[key] = {name_key: name, side: value, other: also}
        return found

    def person(self, person: tuple[str, str]) -> dict[str, str]:
        found = self.people.get(person)
        if found is None:
            found = self.people[person] = {"name": person[0], "email": person[1]}
        return found


def expand(document: Any) -> Log:
    """The log (format 1) a file's document holds. ValueError, saying where, for anything
    `compact` does not write."""
    _require(isinstance(document, dict), "audit.json", "expected an object")
    _keys(document, "audit.json", _DOCUMENT_KEYS)
    _require(_same(document["format"], FILE_FORMAT), "audit.json: format", f"is not {FILE_FORMAT}")
    people = [
        _person(p, f"audit.json: people[{i}]")
        for i, p in enumerate(_list(document["people"], "audit.json: people"))
    ]
    grids = [
        _grid(g, f"audit.json: grids[{i}]")
        for i, g in enumerate(_list(document["grids"], "audit.json: grids"))
    ]
    files, fields, cells = (_strings(document[name], f"audit.json: {name}") for name in TABLES)
    tables = _Read(people, grids, files, fields, cells, _Shared())
    entries: list[dict[str, Any]] = []
    for index, commit in enumerate(_list(document["commits"], "audit.json: commits")):
        entries += _expand_commit(commit, f"audit.json: commits[{index}]", tables)
    return {
        "format": LOG_FORMAT,
        "head": document["head"],
        "complete": document["complete"],
        "entries": entries,
    }


def _require(condition: bool, where: str, what: str) -> None:
    if not condition:
        raise ValueError(f"{where}: {what}")


def _keys(
    value: dict[str, Any],
    where: str,
    allowed: set[str] | frozenset[str],
    required: Sequence[str] = (),
) -> None:
    extra = value.keys() - allowed
    _require(not extra, where, f"unexpected {', '.join(sorted(extra))}")
    missing = (set(allowed) if not required else set(required)) - value.keys()
    _require(not missing, where, f"missing {', '.join(sorted(missing))}")


def _list(value: Any, where: str) -> list[Any]:
    _require(type(value) is list, where, "expected a list")
    return value  # type: ignore[no-any-return]


def _strings(value: Any, where: str) -> list[str]:
    """A table of strings (files, fields, cells), each once."""
    items = _list(value, where)
    _require(all(type(item) is str for item in items), where, "expected strings")
    _require(len(set(items)) == len(items), where, "names an item twice")
    return items


def _person(value: Any, where: str) -> tuple[str, str]:
    _require(type(value) is dict, where, "expected an object")
    _keys(value, where, {"name", "email"})
    name, email = value["name"], value["email"]
    _require(type(name) is str and type(email) is str, where, "expected a name and an email")
    return name, email


class _Grid(NamedTuple):
    environments: list[str]
    applications: dict[str, None]  # in order
    names: tuple[str, ...]  # every cell's, in order


def _grid(value: Any, where: str) -> _Grid:
    _require(type(value) is dict, where, "expected an object")
    _keys(value, where, {"environments", "applications"})
    envs = _list(value["environments"], f"{where}.environments")
    apps = _list(value["applications"], f"{where}.applications")
    _require(all(type(name) is str for name in (*envs, *apps)), where, "expected names")
    return _Grid(envs, dict.fromkeys(apps), _names(envs, apps))


def _index(value: Any, table: Sequence[Any], where: str) -> Any:
    _require(_indexes(value, table), where, "not an index of its table")
    return table[value]


def _indexes(value: Any, table: Sequence[Any]) -> bool:
    """Whether `value` is an index of `table` (an int, so not a bool, within it)."""
    return type(value) is int and 0 <= value < len(table)


def _expand_commit(commit: Any, where: str, tables: _Read) -> Iterator[dict[str, Any]]:
    _require(type(commit) is dict, where, "expected an object")
    _keys(commit, where, _COMMIT_KEYS, ("commit", "author", "timestamp", "reason", "entries"))
    author = _index(commit["author"], tables.people, f"{where}.author")
    committer = _index(
        commit.get("committer", commit["author"]), tables.people, f"{where}.committer"
    )
    reason = commit["reason"]
    _require(type(reason) is str, f"{where}.reason", "expected a string")
    meta = {
        "commit": commit["commit"],
        "timestamp": commit["timestamp"],
        "committed_at": commit.get("committed_at", commit["timestamp"]),
        "subject": commit["subject"] if "subject" in commit else subject_of(reason),
        "reason": reason,
    }
    entries = _list(commit["entries"], f"{where}.entries")
    _require(bool(entries), f"{where}.entries", "expected at least one entry")
    for index, entry in enumerate(entries):
        here = f"{where}.entries[{index}]"
        expanded = {
            **meta,
            "author": tables.shared.person(author),
            "committer": tables.shared.person(committer),
        }
        expanded.update(_expand_entry(entry, here, tables))
        yield expanded


def _expand_entry(entry: Any, where: str, tables: _Read) -> dict[str, Any]:
    _require(type(entry) is dict, where, "expected an object")
    _keys(entry, where, _ENTRY_KEYS, ("file",))
    file = entry["file"]
    if file is not None:
        file = _index(file, tables.files, f"{where}.file")
    if "flag" in entry:
        flag = entry["flag"]
    else:
        flag = stem_of(file) if file is not None else None
        _require(flag is not None, f"{where}.flag", "missing, and the file does not give it")
    for name in _OPTIONAL:
        _require(entry.get(name, "") is not None, f"{where}.{name}", "null is written by omission")
    previous = entry.get("previous_file")
    return {
        "change": entry.get("change", DEFAULT_CHANGE),
        "flag": flag,
        "file": file,
        "previous_file": None
        if previous is None
        else _index(previous, tables.files, f"{where}.previous_file"),
        "fields": _expand_fields(entry["fields"], f"{where}.fields", tables)
        if "fields" in entry
        else [],
        "values": _expand_values(entry["values"], f"{where}.values", tables)
        if "values" in entry
        else [],
        "invalid": entry.get("invalid"),
    }


def _expand_fields(fields: Any, where: str, tables: _Read) -> list[dict[str, Any]]:
    names, item = tables.fields, tables.shared.item
    if type(fields) is dict:
        _require(
            len(fields) == 2 and "names" in fields and ("to" in fields or "from" in fields),
            where,
            "expected names and one of to or from",
        )
        side = "to" if "to" in fields else "from"
        named, values = fields["names"], fields[side]
        _require(
            type(named) is list and len(named) > 1 and all(_indexes(i, names) for i in named),
            f"{where}.names",
            "expected a list of two indexes of fields or more",
        )
        _require(
            type(values) is list and len(values) == len(named),
            f"{where}.{side}",
            "expected a list of one value per name",
        )
        other = "from" if side == "to" else "to"
        return [
            item("field", names[i], side, value, other, None)
            for i, value in zip(named, values, strict=True)
        ]
    _require(
        type(fields) is list and bool(fields),
        where,
        "expected a list of [field, from, to] or an object",
    )
    found = []
    for index, triple in enumerate(fields):
        _require(
            type(triple) is list and len(triple) == 3 and _indexes(triple[0], names),
            f"{where}[{index}]",
            "expected [field, from, to], the field an index of fields",
        )
        found.append(item("field", names[triple[0]], "from", triple[1], "to", triple[2]))
    return found


def _expand_values(values: Any, where: str, tables: _Read) -> list[dict[str, Any]]:
    if type(values) is dict:
        return _expand_grid(values, where, tables)
    _require(
        type(values) is list and bool(values),
        where,
        "expected a list of [from, to, cells] or an object",
    )
    names, item = tables.cells, tables.shared.item
    found = []
    for index, run in enumerate(values):
        here = f"{where}[{index}]"
        _require(
            type(run) is list and len(run) == 3 and type(run[2]) is list and bool(run[2]),
            here,
            "expected [from, to, [cell, ...]]",
        )
        before, after, cells = run
        _require(
            all(_indexes(cell, names) for cell in cells), here, "a cell is not an index of cells"
        )
        found += [item("cell", names[cell], "from", before, "to", after) for cell in cells]
    return found


def _expand_grid(values: dict[str, Any], where: str, tables: _Read) -> list[dict[str, Any]]:
    _require(
        len(values) == 2 and "grid" in values and ("to" in values or "from" in values),
        where,
        "expected grid and one of to or from",
    )
    side = "to" if "to" in values else "from"
    other = "from" if side == "to" else "to"
    grid = _index(values["grid"], tables.grids, f"{where}.grid")
    items = _list(values[side], f"{where}.{side}")
    try:
        # as text: orjson's bytes, kept, pinned the C library's blocks it had shrunk them
        # in, 22 MB of a worker's memory that its parsed file, once freed, left behind
        key = (values["grid"], side, orjson.dumps(items).decode())
    except TypeError:  # not JSON: a log made in memory may hold anything; not shared
        key = None
    known = tables.shared.grids.get(key) if key is not None else None
    if known is not None:
        return known
    _require(
        len(items) == len(grid.environments) and bool(items),
        f"{where}.{side}",
        "expected one item per environment of its grid",
    )
    cells: list[Any] = []
    for env, item in zip(grid.environments, items, strict=True):
        value, differ = (item[0], item[1]) if type(item) is list and len(item) == 2 else (item, {})
        _require(
            type(differ) is dict and differ.keys() <= grid.applications.keys(),
            f"{where}.{side}",
            f"{env}: expected [value, {{application: value}}]",
        )
        cells.append(value)
        if differ:
            cells.extend(differ.get(app, value) for app in grid.applications)
        else:
            cells += [value] * len(grid.applications)
    item = tables.shared.item
    found = [
        item("cell", name, side, value, other, None)
        for name, value in zip(grid.names, cells, strict=True)
    ]
    if key is not None:
        tables.shared.grids[key] = found
    return found
