"""audit.json's file format 2: the audit log with each thing said once, and back.

The log in memory (what `compiler.audit.extract` makes, the API serves and `flagc audit
--format json` prints, format 1) repeats its commit's metadata in every entry and lists
every resolved cell of a created or deleted flag. The file (format 2) says each once:

- `commits`: the entries grouped by commit (a run of entries of one commit), newest first,
  its metadata once; author and committer as indexes into `people`; `committer` omitted
  when it is the author, `committed_at` when it is the timestamp, `subject` when it is the
  message's first line (as `compiler.git_log` takes git's subject).
- An entry omits `change` when it is "modified", `flag` when it is its file's name without
  the extension, and `previous_file`, `invalid`, `fields` and `values` when null or empty.
- `fields`: `[field, from, to]` triples; when every `from` is null (a created flag) and the
  fields are sorted, `{"to": {field: to}}` (every `to` null, a deleted flag: `{"from": ...}`).
- `values`: runs of cells that changed alike, `[from, to, [cell, ...]]`; when the cells are
  a whole grid (every environment, each followed by every application) and one side is
  all null, `{"grid": i, "to": [...]}` (or `"from"`), `grids[i]` naming the environments
  and applications, with one item per environment: its value, or `[its value,
  {application: value}]` for the applications whose value differs from it.

`expand(compact(log)) == log` for every log (tests/core/test_audit_format.py); `expand`
raises ValueError, saying where, for a document `compact` does not write. `prepend`
continues a document with a build's newer entries, writing what `compact` writes for the
whole log without expanding the old commits.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

LOG_FORMAT: Final = 1  # the log in memory, as served
FILE_FORMAT: Final = 2  # audit.json
DEFAULT_CHANGE: Final = "modified"  # an entry's change when the file omits it: the most common

_ENTRY_KEYS: Final = frozenset(
    ("change", "flag", "file", "previous_file", "fields", "values", "invalid")
)
_COMMIT_KEYS: Final = frozenset(
    ("commit", "author", "committer", "timestamp", "committed_at", "subject", "reason", "entries")
)
_OPTIONAL: Final = ("previous_file", "invalid")

Log = dict[str, Any]
_Key = TypeVar("_Key")  # a table's key: a person's (name, email), a grid's (envs, apps)


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
    def __init__(self) -> None:
        self.people: dict[tuple[str, str], int] = {}
        self.grids: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        self.applications: list[tuple[str, ...]] = []  # by grid index
        self.cells: dict[tuple[str, ...], int | None] = {}  # a cell list's grid, found once

    def person(self, person: tuple[str, str]) -> int:
        return self.people.setdefault(person, len(self.people))

    def grid(self, cells: tuple[str, ...]) -> int | None:
        if cells not in self.cells:
            found = _grid_of(cells)
            if found is not None and found not in self.grids:
                self.grids[found] = len(self.grids)
                self.applications.append(found[1])
            self.cells[cells] = None if found is None else self.grids[found]
        return self.cells[cells]


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
    cell: `grid_values`)."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self.commits: list[dict[str, Any]] = []
        self.metadata: Metadata | None = None  # the last commit's

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
            self.commits.append(_commit(metadata, self.tables))

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
        index = self.tables.grid(names)
        if index is None:
            return None
        return {"grid": index, side: _by_environment(cells, self.tables, index)}

    def document(self, head: Any, complete: Any) -> Log:
        tables = self.tables
        return {
            "format": FILE_FORMAT,
            "head": head,
            "complete": complete,
            "people": [{"name": name, "email": email} for name, email in tables.people],
            "grids": [
                {"environments": list(envs), "applications": list(apps)}
                for envs, apps in tables.grids
            ],
            "commits": self.commits,
        }


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


def _commit(metadata: Metadata, tables: _Tables) -> dict[str, Any]:
    commit: dict[str, Any] = {
        "commit": metadata.commit,
        "author": tables.person(metadata.author),
        "timestamp": metadata.timestamp,
        "reason": metadata.reason,
        "entries": [],
    }
    if metadata.committer != metadata.author:
        commit["committer"] = tables.person(metadata.committer)
    if metadata.committed_at != metadata.timestamp:
        commit["committed_at"] = metadata.committed_at
    if not _same(metadata.subject, subject_of(metadata.reason)):
        commit["subject"] = metadata.subject
    return commit


def _fields(fields: Sequence[Change]) -> Any:
    if len(fields) == 1:  # most entries: sorted, and one side may be null
        name, before, after = fields[0]
        if before is None:
            return {"to": {name: after}}
        return {"from": {name: before}} if after is None else [[name, before, after]]
    names = [item[0] for item in fields]
    if all(a < b for a, b in itertools.pairwise(names)):
        for side, other in ((2, 1), (1, 2)):
            if all(item[other] is None for item in fields):
                return {_SIDES[side]: {item[0]: item[side] for item in fields}}
    return [list(item) for item in fields]


_SIDES: Final = {1: "from", 2: "to"}  # a change's item by index


def _by_environment(cells: Sequence[Any], tables: _Tables, index: int) -> list[Any]:
    """Each environment's value, with the applications that differ from it (booleans and
    strings only, so == is `_same`)."""
    apps = tables.applications[index]
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


def _grid_of(cells: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
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
    first) followed by those of `document` (a format-2 document as `compact` writes it), with
    `head` and `complete`; the old commits are not expanded: only the indexes into `people`
    and `grids` they use are renumbered when the newer entries add to those tables ahead of
    them.

    The rule: `prepend(compact(L), N, h, c) == compact({"format": 1, "head": h, "complete":
    c, "entries": [*N, *L["entries"]]})` (tests/core/test_audit_format.py). `compact` numbers
    people and grids by first use, newest first, so N's come first and the old ones follow
    in their old order; when N's are already the old tables' first ones nothing shifts and
    the old commits are reused as they are (shared with the result, never changed). N's last
    run continues the old first commit when their metadata is the same, as `compact` would.
    """
    if document.get("format") != FILE_FORMAT:
        raise ValueError(f"not an audit document of format {FILE_FORMAT}")
    writer = Writer()
    for entry in newer:
        writer.add(entry)
    tables = writer.tables
    commits: list[Mapping[str, Any]] = list(writer.commits)
    old_people = [(person["name"], person["email"]) for person in document["people"]]
    old_grids = [
        (tuple(grid["environments"]), tuple(grid["applications"])) for grid in document["grids"]
    ]
    people, people_map = _joined(tables.people, old_people)
    grids, grids_map = _joined(tables.grids, old_grids)
    old: Sequence[Mapping[str, Any]] = document["commits"]
    last = writer.metadata
    if last is not None and old and last == _old_metadata(old[0], document["people"]):
        # one commit across the seam: compact's run goes on into the old first commit
        continued = _renumbered(old[0], people_map, grids_map)
        writer.commits[-1]["entries"].extend(continued["entries"])
        old = old[1:]
    if people_map is None and grids_map is None:
        commits.extend(old)  # the fast path: nothing shifted
    else:
        commits.extend(_renumbered(commit, people_map, grids_map) for commit in old)
    return {
        "format": FILE_FORMAT,
        "head": head,
        "complete": complete,
        "people": [{"name": name, "email": email} for name, email in people],
        "grids": [{"environments": list(envs), "applications": list(apps)} for envs, apps in grids],
        "commits": commits,
    }


def _joined(new: Mapping[_Key, int], old: Sequence[_Key]) -> tuple[list[_Key], list[int] | None]:
    """A table whose first keys are `new` (key -> index, in order), followed by the `old`
    ones it lacks, and each old index's new one: None when every old index stays."""
    if list(new) == list(old[: len(new)]):
        return list(old), None
    table = dict(new)
    for key in old:
        table.setdefault(key, len(table))
    return list(table), [table[key] for key in old]


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


def _renumbered(
    commit: Mapping[str, Any], people: Sequence[int] | None, grids: Sequence[int] | None
) -> dict[str, Any]:
    """A copy of an old commit with its people and grids indexes moved (its entries shared
    when no grid moved)."""
    moved = dict(commit)
    if people is not None:
        moved["author"] = people[commit["author"]]
        if "committer" in commit:
            moved["committer"] = people[commit["committer"]]
    if grids is not None:
        moved["entries"] = [_regridded(entry, grids) for entry in commit["entries"]]
    return moved


def _regridded(entry: Mapping[str, Any], grids: Sequence[int]) -> Mapping[str, Any]:
    values = entry.get("values")
    if type(values) is not dict:  # runs of cells: no index
        return entry
    return {**entry, "values": {**values, "grid": grids[values["grid"]]}}


def headings(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Each entry of a file's document (newest first) with only what names it and its
    commit: `flag`, `change`, `timestamp`, `author` (its name) and `reason`, as `expand`
    gives them, without expanding fields and values (what a flag's history fields are made
    of, `compiler.audit.flag_metadata`). For a document of trusted origin: it checks little."""
    people = document["people"]
    for commit in document["commits"]:
        author = {"name": people[commit["author"]]["name"]}
        timestamp, reason = commit["timestamp"], commit["reason"]
        for entry in commit["entries"]:
            yield {
                "flag": entry["flag"] if "flag" in entry else stem_of(entry["file"]),
                "change": entry.get("change", DEFAULT_CHANGE),
                "timestamp": timestamp,
                "author": author,
                "reason": reason,
            }


# -- expand -------------------------------------------------------------------------------


def expand(document: Any) -> Log:
    """The log (format 1) a file's document holds. ValueError, saying where, for anything
    `compact` does not write."""
    _require(isinstance(document, dict), "audit.json", "expected an object")
    _keys(document, "audit.json", {"format", "head", "complete", "people", "grids", "commits"})
    _require(_same(document["format"], FILE_FORMAT), "audit.json: format", f"is not {FILE_FORMAT}")
    people = [
        _person(p, f"audit.json: people[{i}]")
        for i, p in enumerate(_list(document["people"], "audit.json: people"))
    ]
    grids = [
        _grid(g, f"audit.json: grids[{i}]")
        for i, g in enumerate(_list(document["grids"], "audit.json: grids"))
    ]
    entries: list[dict[str, Any]] = []
    for index, commit in enumerate(_list(document["commits"], "audit.json: commits")):
        entries += _expand_commit(commit, f"audit.json: commits[{index}]", people, grids)
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


def _person(value: Any, where: str) -> tuple[str, str]:
    _require(type(value) is dict, where, "expected an object")
    _keys(value, where, {"name", "email"})
    return value["name"], value["email"]


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
    _require(type(value) is int and 0 <= value < len(table), where, "not an index of its table")
    return table[value]


def _expand_commit(
    commit: Any, where: str, people: list[tuple[str, str]], grids: list[_Grid]
) -> Iterator[dict[str, Any]]:
    _require(type(commit) is dict, where, "expected an object")
    _keys(commit, where, _COMMIT_KEYS, ("commit", "author", "timestamp", "reason", "entries"))
    author = _index(commit["author"], people, f"{where}.author")
    committer = _index(commit.get("committer", commit["author"]), people, f"{where}.committer")
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
            "author": {"name": author[0], "email": author[1]},
            "committer": {"name": committer[0], "email": committer[1]},
        }
        expanded.update(_expand_entry(entry, here, grids))
        yield expanded


def _expand_entry(entry: Any, where: str, grids: list[_Grid]) -> dict[str, Any]:
    _require(type(entry) is dict, where, "expected an object")
    _keys(entry, where, _ENTRY_KEYS, ("file",))
    file = entry["file"]
    if "flag" in entry:
        flag = entry["flag"]
    else:
        flag = stem_of(file) if type(file) is str else None
        _require(flag is not None, f"{where}.flag", "missing, and the file does not give it")
    for name in _OPTIONAL:
        _require(entry.get(name, "") is not None, f"{where}.{name}", "null is written by omission")
    return {
        "change": entry.get("change", DEFAULT_CHANGE),
        "flag": flag,
        "file": file,
        "previous_file": entry.get("previous_file"),
        "fields": _expand_fields(entry["fields"], f"{where}.fields") if "fields" in entry else [],
        "values": _expand_values(entry["values"], f"{where}.values", grids)
        if "values" in entry
        else [],
        "invalid": entry.get("invalid"),
    }


def _expand_fields(fields: Any, where: str) -> list[dict[str, Any]]:
    if type(fields) is dict:
        _require(
            len(fields) == 1 and fields.keys() <= {"to", "from"},
            where,
            "expected one of to or from",
        )
        side, named = next(iter(fields.items()))
        _require(
            type(named) is dict and bool(named), f"{where}.{side}", "expected an object of fields"
        )
        other = "from" if side == "to" else "to"
        return [{"field": name, side: value, other: None} for name, value in named.items()]
    _require(
        type(fields) is list and bool(fields),
        where,
        "expected a list of [field, from, to] or an object",
    )
    found = []
    for index, item in enumerate(fields):
        _require(
            type(item) is list and len(item) == 3 and type(item[0]) is str,
            f"{where}[{index}]",
            "expected [field, from, to]",
        )
        found.append({"field": item[0], "from": item[1], "to": item[2]})
    return found


def _expand_values(values: Any, where: str, grids: list[_Grid]) -> list[dict[str, Any]]:
    if type(values) is dict:
        return _expand_grid(values, where, grids)
    _require(
        type(values) is list and bool(values),
        where,
        "expected a list of [from, to, cells] or an object",
    )
    found = []
    for index, run in enumerate(values):
        here = f"{where}[{index}]"
        _require(
            type(run) is list and len(run) == 3 and type(run[2]) is list and bool(run[2]),
            here,
            "expected [from, to, [cell, ...]]",
        )
        for cell in run[2]:
            _require(type(cell) is str, here, "a cell is not a string")
            found.append({"cell": cell, "from": run[0], "to": run[1]})
    return found


def _expand_grid(values: dict[str, Any], where: str, grids: list[_Grid]) -> list[dict[str, Any]]:
    _require(
        len(values) == 2 and "grid" in values and ("to" in values or "from" in values),
        where,
        "expected grid and one of to or from",
    )
    side = "to" if "to" in values else "from"
    other = "from" if side == "to" else "to"
    grid = _index(values["grid"], grids, f"{where}.grid")
    items = _list(values[side], f"{where}.{side}")
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
    return [
        {"cell": name, side: value, other: None}
        for name, value in zip(grid.names, cells, strict=True)
    ]
