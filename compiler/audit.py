"""The audit log: git history -> who changed which flag, when, why, and what it changed.

`entries` is pure (commits and blob contents in, entries out); `extract` drives it over a
`GitRepository`, which reads the history in one `git log` pass and the blobs in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compiler.changes import changed_fields
from compiler.git_log import Change, Commit
from compiler.git_repository import GitRepository
from compiler.load import PROJECT_FILE, SourceFile, flag_key
from compiler.validate import validate_document
from compiler.yamlsource import Data, Parsed, parse
from core.model import Flag, Project
from core.resolve import Grid, grid_of, resolve

AUDIT_FORMAT = 1
Entry = dict[str, Any]
Grids = tuple["Grid | None", "Grid | None"]  # the project's grid before and after a commit


@dataclass(frozen=True, slots=True)
class Version:
    """One version (blob) of a flag or project file, read and checked."""

    data: Data = None
    flag: Flag | None = None
    project: Project | None = None
    grid: Grid | None = None  # of a valid project
    invalid: str | None = None  # what was wrong, when the file was not valid


def read_version(content: bytes | None, path: str) -> Version:
    """Parse and check one file's content; a broken file is a value, never an exception."""
    if content is None:
        return Version(invalid="the file could not be read from git")
    try:
        text = content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return Version(invalid="the file is not UTF-8")
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
    if isinstance(value, Project):
        return Version(parsed.data, project=value, grid=grid_of(value))
    return Version(parsed.data, flag=value if isinstance(value, Flag) else None)


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
    # change and the "before" of the next.
    cells: dict[tuple[int, int], dict[str, bool]] = field(default_factory=dict)

    def cells_of(self, version: Version | None, grid: Grid | None) -> dict[str, bool]:
        if version is None or version.flag is None or grid is None:
            return {}
        key = (id(version), id(grid))
        if key not in self.cells:
            cells = resolve(grid, {"_": version.flag})["_"].cells
            self.cells[key] = dict(zip(grid.names, (c.value for c in cells), strict=True))
        return self.cells[key]


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
    new_key = flag_key(change.new_path) if change.new_path else None
    if old_key is not None and state.partial:
        _seed(state, old_key, version(change.old_blob, change.old_path))
    if old_key is not None and old_key != new_key:
        yield _flag_entry(commit, "deleted", old_key, change.old_path, None, state, None, grids)
    if new_key is not None:
        kind = {"A": "created", "D": "deleted"}.get(change.status, "modified")
        previous = None
        if old_key == new_key:
            kind = "moved" if change.old_path != change.new_path else "modified"
            previous = change.old_path if kind == "moved" else None
        elif kind != "deleted":
            kind = "created"
        new = version(change.new_blob, change.new_path)
        yield _flag_entry(commit, kind, new_key, change.new_path, previous, state, new, grids)


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
    kind: str,
    key: str,
    path: str | None,
    previous_file: str | None,
    state: _State,
    new: Version | None,
    grids: Grids,
) -> Entry:
    old = state.flags.get(key) if kind != "created" else None
    entry = _entry(commit, kind, key, path, previous_file)
    if new is not None and new.invalid is not None:
        entry["invalid"] = new.invalid
        return entry  # judged later against the last valid version
    entry["fields"] = field_changes(old.data if old else None, new.data if new else None)
    entry["values"] = value_changes(state.cells_of(old, grids[0]), state.cells_of(new, grids[1]))
    if new is None:
        state.flags.pop(key, None)
    else:
        state.flags[key] = new
    return entry


def _project_entry(
    commit: Commit, change: Change, state: _State, version: Reader
) -> Iterator[Entry]:
    new = version(change.new_blob, change.new_path) if change.new_path == PROJECT_FILE else None
    entry = _entry(commit, "project", None, PROJECT_FILE, None)
    if new is not None and new.invalid is not None:
        entry["invalid"] = new.invalid
    else:
        old_data = state.project.data if state.project else None
        entry["fields"] = field_changes(old_data, new.data if new else None)
        state.project = new
    yield entry


def _entry(
    commit: Commit, kind: str, key: str | None, path: str | None, previous: str | None
) -> Entry:
    return {
        "commit": commit.sha,
        "author": {"name": commit.author_name, "email": commit.author_email},
        "committer": {"name": commit.committer_name, "email": commit.committer_email},
        "timestamp": commit.authored_at,
        "committed_at": commit.committed_at,
        "subject": commit.subject,
        "reason": commit.message,
        "change": kind,
        "flag": key,
        "file": path,
        "previous_file": previous,
        "fields": [],
        "values": [],
        "invalid": None,
    }


def value_changes(before: Mapping[str, bool], after: Mapping[str, bool]) -> list[Entry]:
    """Cells whose value changed, in the order of `after` then `before`; None is absent."""
    if before == after:  # most changes leave every value as it was
        return []
    names = [*after, *(name for name in before if name not in after)]
    return [
        {"cell": name, "from": before.get(name), "to": after.get(name)}
        for name in names
        if before.get(name) != after.get(name)
    ]


def field_changes(before: Data, after: Data) -> list[Entry]:
    """Declared fields that changed, as dotted paths, sorted; None is absent."""
    return [
        {"field": path, "from": old, "to": new}
        for path, old, new in sorted(changed_fields(before, after), key=lambda c: c[0])
    ]


def extract(repository: GitRepository, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The audit.json document for HEAD; with `previous` (an earlier document) only the
    commits after its head are read, unless history was rewritten since."""
    head = repository.head()
    since = _continuable(repository, previous)
    if previous is not None and since is not None and since == head:
        return dict(previous)  # nothing new to read
    contents: dict[str, bytes] = {}
    versions: Versions = {}
    commits: list[Commit] = []
    if head is not None:
        with repository.stream(since) as stream:
            # Each blob is parsed while git is still producing the rest of the log.
            for sha, path, content in stream.blobs():
                contents[sha] = content
                versions[sha, path == PROJECT_FILE] = read_version(content, path)
            commits = stream.commits
    try:
        project = _project_at(repository, since)
        new = entries(commits, contents, project, partial=since is not None, versions=versions)
    except NeedsWholeHistory:
        return extract(repository)
    older = list(previous["entries"]) if since is not None and previous else []
    continued = bool(previous["complete"]) if since is not None and previous else True
    complete = continued and not repository.is_shallow()
    return {"format": AUDIT_FORMAT, "head": head, "complete": complete, "entries": new + older}


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
    found: dict[str, dict[str, Any]] = {}
    settled: set[str] = set()  # deleted for good, or creation found: older entries are past
    for entry in audit["entries"]:  # newest first
        key = entry["flag"]
        if key is None or key in settled:
            continue
        if entry["change"] == "deleted" and key not in found:
            settled.add(key)
            continue
        meta = found.setdefault(key, _metadata(entry))
        if entry["change"] == "created":
            meta["created_at"], meta["created_by"] = entry["timestamp"], entry["author"]["name"]
            settled.add(key)
    return found


def _metadata(entry: Entry) -> dict[str, Any]:
    return {
        "created_at": None,
        "created_by": None,
        "updated_at": entry["timestamp"],
        "updated_by": entry["author"]["name"],
        "updated_reason": entry["reason"],
    }
