"""The audit log: git history -> who changed which flag, when, why, and what it changed.

`entries` is pure (commits and blob contents in, typed `Entry`s out, their field and value
changes those of `compiler.changes`); `to_json` is the one place an entry becomes the JSON of
the log in memory (format 1) and `flagc audit --format json`, and `document` writes the
entries as audit.json (format 3), what `core.audit_format.compact` makes of their `to_json`.
`extract` drives `entries` over a `GitRepository`, which reads the history in one `git log`
pass and the blobs in one batch (`extract_whole`: a whole history as a build writes it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Literal

import pydantic

from compiler.changes import (
    Cell,
    FieldChange,
    ValueChange,
    changed_fields,
    changed_values,
    off_value,
)
from compiler.git_log import Change, Commit
from compiler.git_repository import GitRepository
from compiler.load import PROJECT_FILE, SourceFile, flag_key
from compiler.rule_changes import FlagAt, RuleChange, flag_rule_changes, has_rules
from compiler.validate import validate_document
from compiler.yamlsource import Data, Parsed, parse, read_plain
from core import audit_format
from core.model import Flag, Project
from core.process import keep
from core.resolve import CellValue, Grid, cell_values, grid_of

AUDIT_FORMAT = audit_format.LOG_FORMAT  # the log in memory; the file is compact (format 3)
EntryKind = Literal["created", "modified", "moved", "deleted", "project"]
Grids = tuple["Grid | None", "Grid | None"]  # the project's grid before and after a commit


# Not frozen, though never changed once made: a frozen dataclass's __init__ sets each field
# through object.__setattr__, 8 ms more for a first build's 10,000 (and as much for Entry).
@dataclass(slots=True)
class Version:
    """One version (blob) of a flag or project file, read and checked."""

    data: Data = None
    flag: Flag | None = None
    project: Project | None = None
    grid: Grid | None = None  # of a valid project
    invalid: str | None = None  # what was wrong, when the file was not valid
    # A valid flag's cell values on a grid, resolved already (a build's, as it compiled the
    # flag: `compiler.history.known_versions`), in the grid's order.
    resolved: tuple[Grid, tuple[CellValue, ...]] | None = None


def read_version(content: bytes | None, path: str) -> Version:
    """Parse and check one file's content; a broken file is a value, never an exception.

    Most versions are plain and valid: read without source positions (`read_plain`) and
    valid, they are done; any other is read again with them, for where it is wrong."""
    if content is None:
        return Version(invalid="the file could not be read from git")
    try:
        text = content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return Version(invalid="the file is not UTF-8")
    plain = read_plain(text)
    if plain is not None:
        valid = _valid(plain[0], path)
        if valid is not None:
            return valid
    return _read_checked(text, path)


def _valid(data: Data, path: str) -> Version | None:
    """The version of `data` if it is valid; None to read it again for what is wrong."""
    model = Project if path == PROJECT_FILE else Flag
    try:
        return _version(data, model.model_validate(data))
    except pydantic.ValidationError:
        return None


def _read_checked(text: str, path: str) -> Version:
    """The version of `text` read with source positions, which say where it is wrong."""
    parsed = parse(text, path)
    if not isinstance(parsed, Parsed):
        where = parsed[0]
        return Version(invalid=f"{where.line}:{where.column}: {where.message}")
    document = SourceFile(path, parsed.data, parsed.source, path=path)
    model = Project if path == PROJECT_FILE else Flag
    value, problems = validate_document(document, model)
    problems = [*parsed.problems, *problems]
    if problems:
        where = problems[0]
        return Version(parsed.data, invalid=f"{where.line}:{where.column}: {where.message}")
    return _version(parsed.data, value)


def _version(data: Data, value: object) -> Version:
    """The version of a valid file: its flag, or its project and grid."""
    if isinstance(value, Project):
        return Version(data, project=value, grid=grid_of(value))
    return Version(data, flag=value if isinstance(value, Flag) else None)


Cells = Mapping[Cell, CellValue]  # a version's value in each cell of a grid, in its order
_NO_CELLS: Cells = MappingProxyType({})


class _GridCells(Mapping[Cell, CellValue]):
    """A version's values in the cells of one grid, in its order (`listed`): a mapping
    whose dict is made only when a cell is looked up. Most are only listed, whole (a
    created flag's, by environment: `_values`) or beside another of the same grid; making
    10,000 created flags' dicts took 40 ms of a first build's history."""

    __slots__ = ("_found", "cells", "listed")

    def __init__(self, cells: tuple[Cell, ...], listed: tuple[CellValue, ...]) -> None:
        self.cells, self.listed = cells, listed
        self._found: dict[Cell, CellValue] | None = None

    def _dict(self) -> dict[Cell, CellValue]:
        if self._found is None:
            self._found = dict(zip(self.cells, self.listed, strict=True))
        return self._found

    def __getitem__(self, cell: Cell) -> CellValue:
        return self._dict()[cell]

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _GridCells) and other.cells == self.cells:
            return self.listed == other.listed
        if not isinstance(other, Mapping):
            return NotImplemented
        return len(other) == len(self.cells) and self._dict() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # (a mapping, as a dict)


def listed(cells: Cells) -> list[CellValue] | tuple[CellValue, ...]:
    """The values of `cells`, in order."""
    return cells.listed if isinstance(cells, _GridCells) else list(cells.values())


@dataclass(slots=True)  # never changed once made (not frozen: see Version)
class Entry:
    """What one commit did to one flag (`flag`), or to _project.yaml (`flag` None, `change`
    "project"). `file` is where the flag is after the commit (where it was, if deleted),
    `previous_file` where it was before a move. A version whose file was not valid says why
    in `invalid` and lists no changes: the next valid version is compared with the last
    valid one, not with it.

    `values` and `rules` are computed when asked, from the flag before and after (`flags`),
    its cells on each side's grid (`cells`, `grids`): audit.json writes a created flag's
    every cell per environment from its cells (`document`), and has no rules."""

    commit: Commit
    change: EntryKind
    flag: str | None
    file: str | None
    previous_file: str | None = None
    fields: tuple[FieldChange, ...] = ()
    invalid: str | None = None
    flags: tuple[Flag | None, Flag | None] = (None, None)
    cells: tuple[Cells, Cells] = (_NO_CELLS, _NO_CELLS)
    grids: Grids = (None, None)

    @property
    def values(self) -> tuple[ValueChange, ...]:
        """The cells whose value changed (`value_changes`)."""
        before, after = self.flags
        return value_changes(*self.cells, (off_value(before), off_value(after)))

    @property
    def rules(self) -> tuple[RuleChange, ...]:
        """The changes to the rules (`rule_changes`), for `flagc audit`'s words: only when a
        declared field changed and a side has rules."""
        before, after = self.flags
        if self.flag is None or not self.fields or not (has_rules(before) or has_rules(after)):
            return ()
        return rule_changes(self.flag, before, after, self.grids)


def to_json(entry: Entry) -> dict[str, Any]:
    """The entry as audit.json and `flagc audit --format json` write it (in this key order,
    which the JSON of `flagc audit` shows as it is)."""
    commit = entry.commit
    return {
        "commit": commit.sha,
        "author": {"name": commit.author_name, "email": commit.author_email},
        "committer": {"name": commit.committer_name, "email": commit.committer_email},
        "timestamp": commit.authored_at,
        "committed_at": commit.committed_at,
        "subject": commit.subject,
        "reason": commit.message,
        "change": entry.change,
        "flag": entry.flag,
        "file": entry.file,
        "previous_file": entry.previous_file,
        "fields": [{"field": f.path, "from": f.before, "to": f.after} for f in entry.fields],
        "values": [{"cell": v.cell, "from": v.before, "to": v.after} for v in entry.values],
        "invalid": entry.invalid,
    }


def document(entries: Sequence[Entry], head: str | None, complete: bool) -> dict[str, Any]:
    """The file's document (format 3) of the log of `entries` (newest first): what
    `core.audit_format.compact` makes of their `to_json`, written from them without it, so
    that a created or deleted flag's every cell is no format-1 item (tests/compiler/
    test_audit.py holds the two equal)."""
    writer = audit_format.Writer()
    last: Commit | None = None
    for entry in entries:
        if entry.commit is not last:
            last = entry.commit
            writer.commit(_commit_metadata(last))
        writer.entry(
            entry.change,
            entry.flag,
            entry.file,
            entry.fields,
            _values(writer, entry),
            previous_file=entry.previous_file,
            invalid=entry.invalid,
        )
    return writer.document(head, complete)


def _commit_metadata(commit: Commit) -> audit_format.Metadata:
    """The commit's metadata, as `to_json` gives it."""
    return audit_format.Metadata(
        commit.sha,
        (commit.author_name, commit.author_email),
        (commit.committer_name, commit.committer_email),
        commit.authored_at,
        commit.committed_at,
        commit.subject,
        commit.message,
    )


def _values(writer: audit_format.Writer, entry: Entry) -> Any:
    """The entry's values as the writer writes `to_json`'s; None for none."""
    before, after = entry.cells
    if before is after or before == after:  # most changes leave every value as it was
        return None
    if not before or not after:  # every cell of one side's grid: by environment
        side, grid, cells = (
            ("to", entry.grids[1], after) if after else ("from", entry.grids[0], before)
        )
        assert grid is not None  # cells come from a grid
        found = writer.grid_values(grid.names, side, listed(cells))
        if found is not None:
            return found
    elif entry.grids[0] is entry.grids[1] and entry.grids[1] is not None:
        # One grid, so both sides list its cells in its order: `value_changes`, in pairs.
        pairs = zip(entry.grids[1].names, listed(before), listed(after), strict=True)
        return writer.values([(name, old, new) for name, old, new in pairs if old != new])
    return writer.values([(value.cell, value.before, value.after) for value in entry.values])


@dataclass(slots=True)
class _State:
    """What the replay knows between commits: the project's last valid version, and each
    flag's (a change is judged against that, so a broken commit in between is skipped)."""

    project: Version | None = None
    flags: dict[str, Version] = field(default_factory=dict)
    # Continuing an earlier log: each flag's version before the range comes from the old
    # blob of its first change in it.
    partial: bool = False
    seen: set[str] = field(default_factory=set)
    # Each version's cells on each grid, resolved once: a version is the "after" of one
    # change and the "before" of the next, and most changes leave what decides the cells
    # as it was, so they are kept by that (`_cell_inputs`) and the grid. Keyed by id(),
    # so each entry holds the grid its key names: an id is reused only once it is gone.
    cells: dict[tuple[int, str], Cells] = field(default_factory=dict)
    grid_cells: dict[int, tuple[Grid, tuple[Cell, ...]]] = field(default_factory=dict)
    inputs: dict[int, tuple[Version, str]] = field(default_factory=dict)  # by id(version)
    resolved: dict[int, Cells] = field(default_factory=dict)  # of versions that hold theirs

    def cells_of(self, version: Version | None, grid: Grid | None) -> Cells:
        if version is None or version.flag is None or grid is None:
            return _NO_CELLS
        if version.resolved is not None and version.resolved[0] is grid:
            found = self.resolved.get(id(version))  # (`versions` keeps each version alive)
            if found is None:
                found = _GridCells(self._cells(grid), version.resolved[1])
                self.resolved[id(version)] = found
            return found
        inputs = self.inputs.get(id(version))
        if inputs is None:
            inputs = self.inputs[id(version)] = (version, _cell_inputs(version.data))
        key = (id(grid), inputs[1])
        found = self.cells.get(key)
        if found is None:
            values = cell_values(grid, version.flag)
            found = self.cells[key] = _GridCells(self._cells(grid), values)
        return found

    def _cells(self, grid: Grid) -> tuple[Cell, ...]:
        # A grid's cells are listed once: the same few grids serve the whole history.
        if id(grid) not in self.grid_cells:
            count = len(grid.environments) * grid.width
            self.grid_cells[id(grid)] = (grid, tuple(grid.cell(index) for index in range(count)))
        return self.grid_cells[id(grid)][1]


# What only describes a flag, its dependencies and its rules: its cells do not depend on
# them (the rules decide values per context, not the cells; tests/compiler/test_audit.py).
_NOT_CELL_INPUTS = frozenset(("description", "owner", "tags", "expires", "depends_on", "rules"))


def _cell_inputs(data: Data) -> str:
    """What decides a valid flag's cells on a grid, as text: equal text, equal cells."""
    assert isinstance(data, dict)
    return repr([item for item in data.items() if item[0] not in _NOT_CELL_INPUTS])


class NeedsWholeHistory(Exception):
    """A flag's file was broken where the range starts, so the version to compare its next
    change with is older than the range."""


Versions = dict[tuple[str, bool], Version]  # by blob SHA and whether it is _project.yaml


def entries(
    commits: Sequence[Commit],
    blobs: Mapping[str, bytes],
    project: Version | None = None,
    *,
    partial: bool = False,
    versions: Versions | None = None,
) -> list[Entry]:
    """Audit entries for `commits` (oldest first), newest first. With `partial`, the commits
    continue an earlier log and `project` is _project.yaml where they start. `versions`
    holds blobs already read; the others are read from `blobs` when first needed."""
    state = _State(project, partial=partial)
    read = versions if versions is not None else {}

    def version(sha: str | None, path: str | None) -> Version | None:
        """The version in blob `sha`; None for no blob (the file is absent on that side)."""
        if sha is None or path is None:
            return None
        key = (sha, path == PROJECT_FILE)
        if key not in read:
            read[key] = read_version(blobs.get(sha), path)
        return read[key]

    found: list[Entry] = []
    for commit in commits:
        changes = _paired(commit.changes)
        grids = _grids(state.project.grid if state.project else None, changes, version)
        for change in changes:
            found.extend(_entries_for(commit, change, state, version, grids))
    return found[::-1]


Reader = Callable[[str | None, str | None], "Version | None"]


def _paired(changes: Sequence[Change]) -> list[Change]:
    """The commit's changes by path, with a flag deleted at one path and added at another
    made one move: git pairs renames only while the content stays similar enough."""
    deleted: dict[str, Change] = {}
    added: dict[str, Change] = {}
    for change in changes:
        if change.status == "D" and change.old_path and (key := flag_key(change.old_path)):
            deleted.setdefault(key, change)
        elif change.status == "A" and change.new_path and (key := flag_key(change.new_path)):
            added.setdefault(key, change)
    moved = {key: (deleted[key], added[key]) for key in deleted.keys() & added.keys()}
    if not moved:  # most commits
        return sorted(changes, key=lambda c: c.new_path or c.old_path or "")
    paired = [c for c in changes if not any(c in pair for pair in moved.values())]
    for old, new in moved.values():
        paired.append(Change("R", old.old_path, new.new_path, old.old_blob, new.new_blob))
    return sorted(paired, key=lambda c: c.new_path or c.old_path or "")


def _grids(before: Grid | None, changes: Sequence[Change], version: Reader) -> Grids:
    """The grid before and after the commit: a project change applies to the whole commit."""
    for change in changes:
        if PROJECT_FILE in (change.old_path, change.new_path):
            new = version(change.new_blob, change.new_path)
            if new is None:  # _project.yaml deleted: no values to resolve any more
                return before, None
            if new.grid is not None:
                return before, new.grid
    return before, before


def _entries_for(
    commit: Commit, change: Change, state: _State, version: Reader, grids: Grids
) -> Iterator[Entry]:
    if PROJECT_FILE in (change.old_path, change.new_path):
        yield from _project_entry(commit, change, state, version)
        return
    old_key = flag_key(change.old_path) if change.old_path else None
    same_path = change.new_path == change.old_path  # most changes: one key to find
    new_key = old_key if same_path else flag_key(change.new_path) if change.new_path else None
    if old_key is not None and state.partial:
        _seed(state, old_key, version(change.old_blob, change.old_path))
    if old_key is not None and old_key != new_key:
        yield _flag_entry(commit, "deleted", old_key, change.old_path, None, state, None, grids)
    if new_key is not None:
        kind = _kind(change, same_key=old_key == new_key)
        previous = change.old_path if kind == "moved" else None
        new = version(change.new_blob, change.new_path)
        yield _flag_entry(commit, kind, new_key, change.new_path, previous, state, new, grids)


def _kind(change: Change, *, same_key: bool) -> EntryKind:
    """What a change with a new side did to its flag: under the same key it moved (another
    path) or was modified; under a new key (a new file, or one renamed from another key,
    whose old key gets its own "deleted" entry) it was created."""
    if same_key:
        return "moved" if change.old_path != change.new_path else "modified"
    return "deleted" if change.status == "D" else "created"


def _seed(state: _State, key: str, before: Version | None) -> None:
    if key in state.seen:
        return
    state.seen.add(key)
    if before is not None and before.invalid is not None:
        raise NeedsWholeHistory(key)
    if before is not None:
        state.flags[key] = before


def _flag_entry(
    commit: Commit,
    kind: EntryKind,
    key: str,
    path: str | None,
    previous_file: str | None,
    state: _State,
    new: Version | None,
    grids: Grids,
) -> Entry:
    if new is not None and new.invalid is not None:
        # Judged later against the last valid version, which stays in `state`.
        return Entry(commit, kind, key, path, previous_file, invalid=new.invalid)
    old = state.flags.get(key) if kind != "created" else None
    fields = field_changes(old.data if old else None, new.data if new else None)
    flags = (old.flag if old else None, new.flag if new else None)
    cells = (state.cells_of(old, grids[0]), state.cells_of(new, grids[1]))
    if new is None:
        state.flags.pop(key, None)
    else:
        state.flags[key] = new
    return Entry(
        commit, kind, key, path, previous_file, fields, flags=flags, cells=cells, grids=grids
    )


def rule_changes(
    key: str, before: Flag | None, after: Flag | None, grids: Grids
) -> tuple[RuleChange, ...]:
    """The changes to the rules in force in each environment of either grid, in the order
    of the grid after the commit."""
    old, new = _environments(grids[0]), _environments(grids[1])
    return flag_rule_changes(
        dict.fromkeys([*new, *old]), FlagAt(key, before, old), FlagAt(key, after, new)
    )


def _environments(grid: Grid | None) -> tuple[str, ...]:
    return () if grid is None else grid.environments


def _project_entry(
    commit: Commit, change: Change, state: _State, version: Reader
) -> Iterator[Entry]:
    new = version(change.new_blob, change.new_path) if change.new_path == PROJECT_FILE else None
    if new is not None and new.invalid is not None:
        yield Entry(commit, "project", None, PROJECT_FILE, invalid=new.invalid)
        return
    old_data = state.project.data if state.project else None
    state.project = new
    fields = field_changes(old_data, new.data if new else None)
    yield Entry(commit, "project", None, PROJECT_FILE, fields=fields)


def value_changes(
    before: Mapping[Cell, CellValue],
    after: Mapping[Cell, CellValue],
    off: tuple[CellValue | None, CellValue | None] = (False, False),
) -> tuple[ValueChange, ...]:
    """Cells whose value changed, in the order of `after` then `before` (each in its grid's
    order); None is absent. `off`: the value that means off before and after."""
    if before is after or before == after:  # most changes leave every value as it was
        return ()
    cells = [*after, *(cell for cell in before if cell not in after)]
    return changed_values(before, after, cells, off)


def field_changes(before: Data, after: Data) -> tuple[FieldChange, ...]:
    """Declared fields that changed, as dotted paths, sorted by path; None is absent."""
    return tuple(sorted(changed_fields(before, after), key=itemgetter(0)))  # by path


def extract(repository: GitRepository, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The audit.json document for HEAD; with `previous` (an earlier document) only the
    commits after its head are read, unless history was rewritten since."""
    head = repository.head()
    since = _continuable(repository, previous)
    if previous is not None and since is not None and since == head:
        return dict(previous)  # nothing new to read
    try:
        new = [to_json(entry) for entry in log(repository, since)]
    except NeedsWholeHistory:
        return extract(repository)
    older = list(previous["entries"]) if since is not None and previous else []
    continued = bool(previous["complete"]) if since is not None and previous else True
    complete = continued and not repository.is_shallow()
    return {"format": AUDIT_FORMAT, "head": head, "complete": complete, "entries": new + older}


@dataclass(frozen=True, slots=True)
class Whole:
    """A whole history's audit log as a build writes it: the file's document (format 3),
    each flag's metadata (`flag_metadata`) and the number of entries."""

    document: dict[str, Any]
    metadata: dict[str, dict[str, Any]]
    entries: int


def extract_whole(
    repository: GitRepository,
    *,
    shallow: bool,
    known: Versions | None = None,
    tell: Callable[[dict[str, dict[str, Any]]], None] | None = None,
) -> Whole:
    """`compact(extract(repository))` and its `flag_metadata` (`shallow`: whether the
    repository is, as `extract` asks it), made from the entries rather than through the log
    in memory (format 1), which lists a created flag's every cell. `known`: versions read
    already (`log`); `tell` is given the metadata before the document is written."""
    found = log(repository, known=known)
    keep(found)  # in a process that ends at once, never freed entry by entry
    metadata = entries_metadata(found)
    if tell is not None:
        tell(metadata)
    document_ = document(found, repository.head(), not shallow)
    return Whole(document_, metadata, len(found))


def log(
    repository: GitRepository, since: str | None = None, known: Versions | None = None
) -> list[Entry]:
    """The entries of the commits on HEAD after `since` (all of them with None), newest
    first. Continuing from `since` raises NeedsWholeHistory when a file was broken there.
    `known`: versions read already (a build's of the files it compiled, by blob id), not
    read again."""
    contents: dict[str, bytes] = {}
    versions: Versions = dict(known or {})
    commits: list[Commit] = []
    given = frozenset(versions)  # its blobs are not read from git at all

    def skip(sha: str, path: str) -> bool:
        return (sha, path == PROJECT_FILE) in given

    if repository.head() is not None:
        with repository.stream(since, skip if given else None) as stream:
            # Each blob is parsed while git is still producing the rest of the log.
            for sha, path, content in stream.blobs():  # none of them given: `skip`
                contents[sha] = content
                versions[sha, path == PROJECT_FILE] = read_version(content, path)
            commits = stream.commits
    project = _project_at(repository, since)
    return entries(commits, contents, project, partial=since is not None, versions=versions)


def _continuable(repository: GitRepository, previous: Mapping[str, Any] | None) -> str | None:
    """The head to continue `previous` from: only a well-formed log whose head is still on
    HEAD's first-parent line (not rewritten away, not a branch since merged)."""
    if previous is None or not usable(previous) or previous["head"] is None:
        return None
    head = str(previous["head"])
    return head if repository.on_first_parent_line(head) else None


_ENTRY_KEYS = frozenset(("commit", "author", "timestamp", "reason", "change", "flag"))


def usable(document: Any) -> bool:
    """Whether an earlier audit.json has the shape this version writes (cheaply: a full
    schema validation would cost more than reading the history again)."""
    if not isinstance(document, dict) or document.get("format") != AUDIT_FORMAT:
        return False
    head = document.get("head")  # null outside git, where a build still has an audit.json
    if not (head is None or isinstance(head, str)):
        return False
    if not isinstance(document.get("complete"), bool):
        return False
    items = document.get("entries")
    return isinstance(items, list) and all(
        isinstance(item, dict) and item.keys() >= _ENTRY_KEYS and isinstance(item["author"], dict)
        for item in items
    )


def _project_at(repository: GitRepository, revision: str | None) -> Version | None:
    if revision is None:
        return None
    content = repository.file_at(revision, PROJECT_FILE)
    if content is None:
        return None
    version = read_version(content, PROJECT_FILE)
    if version.project is None:  # its last valid version is older than the range
        raise NeedsWholeHistory(PROJECT_FILE)
    return version


def empty() -> dict[str, Any]:
    """The audit document outside git: no history to tell."""
    return {"format": AUDIT_FORMAT, "head": None, "complete": False, "entries": []}


def flag_metadata(audit: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per flag: when and by whom it was created (its latest creation, if it was deleted and
    created again) and last changed, and why."""
    return _flag_metadata(
        (
            entry["flag"],
            entry["change"],
            entry["timestamp"],
            entry["author"]["name"],
            entry["reason"],
        )
        for entry in audit["entries"]
    )


def entries_metadata(entries: Iterable[Entry]) -> dict[str, dict[str, Any]]:
    """`flag_metadata` of the log of `entries` (newest first)."""
    return _flag_metadata(
        (e.flag, e.change, e.commit.authored_at, e.commit.author_name, e.commit.message)
        for e in entries
    )


Heading = tuple[str | None, str, Any, Any, Any]  # flag, change, timestamp, author, reason


def _flag_metadata(headings: Iterable[Heading]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    settled: set[str] = set()  # deleted for good, or creation found: older entries are past
    for key, change, timestamp, author, reason in headings:  # newest first
        if key is None or key in settled:
            continue
        if change == "deleted" and key not in found:
            settled.add(key)
            continue
        meta = found.get(key)
        if meta is None:
            meta = found[key] = _metadata(timestamp, author, reason)
        if change == "created":
            meta["created_at"], meta["created_by"] = timestamp, author
            settled.add(key)
    return found


def _metadata(timestamp: Any, author: Any, reason: Any) -> dict[str, Any]:
    return {
        "created_at": None,
        "created_by": None,
        "updated_at": timestamp,
        "updated_by": author,
        "updated_reason": reason,
    }


def continued(repository: GitRepository, head: str | None) -> list[dict[str, Any]] | None:
    """The entries (as `to_json` makes them) of the commits on HEAD after `head`, the head
    of an earlier log, newest first; None when that log cannot simply be continued (no
    head, history rewritten since, a file broken there): then the history is read whole."""
    if head is None or not repository.on_first_parent_line(head):
        return None
    if repository.head() == head:
        return []
    try:
        return [to_json(entry) for entry in log(repository, head)]
    except NeedsWholeHistory:
        return None


def continued_metadata(
    previous: Mapping[str, Mapping[str, Any]], newer: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]] | None:
    """`flag_metadata` of a log whose newest entries are `newer`, for the flags they name
    (a flag they leave with no metadata, all None), from `previous`: the metadata of the
    older log, of the flags it has metadata for. None when that does not decide it (a
    flag's creation is older than `newer` but `previous` does not have the flag)."""
    found: dict[str, dict[str, Any] | None] = {}
    settled: set[str] = set()
    for entry in newer:  # newest first, as flag_metadata reads
        key = entry["flag"]
        if key is None or key in settled:
            continue
        if entry["change"] == "deleted" and key not in found:
            settled.add(key)
            found[key] = None
            continue
        meta = found.setdefault(
            key, _metadata(entry["timestamp"], entry["author"]["name"], entry["reason"])
        )
        if entry["change"] == "created" and meta is not None:
            meta["created_at"], meta["created_by"] = entry["timestamp"], entry["author"]["name"]
            settled.add(key)
    for key, meta in found.items():
        if meta is not None and key not in settled:  # created before `newer`
            before = previous.get(key)
            if before is None:
                return None
            meta["created_at"], meta["created_by"] = before["created_at"], before["created_by"]
    none = dict.fromkeys(("created_at", "created_by", "updated_at", "updated_by", "updated_reason"))
    return {key: dict(none) if meta is None else meta for key, meta in found.items()}
