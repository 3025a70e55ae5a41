"""The build's history: OUT's audit log continued, or the git history read whole, and what
publishing needs of it (`compiler.build.HistorySummary`): each flag's creation and last
change, the revision, the log's bytes and what to tell.

`compiler.build` imports this module only where a history is read: in a full build's forked
history process (compiler.beside), or in its own process on one CPU and in an incremental
build. So the main process of a full build on more CPUs never loads the history's and the
audit log's modules (`compiler.git_repository`, `compiler.audit`: about 26 ms of imports,
which it would pay before it compiles; 55 ms while git ran through GitPython). What comes
back from the forked process is of compiler.build's types, so that unpickling it does not
import them either (tests/compiler/test_history.py).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from compiler import audit, incremental, publish
from compiler.build import HistorySummary, Note, ShallowClone
from compiler.git_repository import GitRepository
from compiler.pipeline import Compiled
from core import audit_format
from core.canonical import serialize
from core.process import keep
from core.regular import read_regular_file

SHALLOW = (
    "this is a shallow clone, so the audit log would miss older changes; fetch "
    "the whole history (git fetch --unshallow; in GitHub Actions, actions/checkout "
    "with fetch-depth: 0), or build with --allow-shallow to mark it incomplete"
)


@dataclass(frozen=True, slots=True)
class History:
    """The audit log (continuing the last build's), the revision (None outside git: the
    snapshot's is then a hash of its content), and what to tell about either."""

    log: dict[str, Any]
    revision: str | None
    notes: tuple[Note, ...] = ()


def _untold(_: Any) -> None:
    """A `tell` that tells no one."""


def summarize_history(
    folder: Path,
    out: Path,
    allow_shallow: bool,
    tell: Callable[[Any], None] = _untold,
    compiled: Compiled | None = None,
) -> HistorySummary:
    """Read the history of `folder`, continuing OUT's audit log (the last build's, when
    usable), and say what publishing needs of it. A log the last build's cache vouches for
    is continued as its file says it, not expanded (`core.audit_format.prepend`); with
    none to continue, the file is written from the entries (`audit.extract_whole`): the
    revision is told (`tell`) before the history is read and each flag's history before
    the log is written, so that the outputs that need only those are made meanwhile
    (compiler.build), and the versions of the files `compiled` already are not read again
    (`known_versions`)."""
    vouched = incremental.vouched_audit(out)
    if vouched is not None:
        try:
            summary = _summary_continued(folder, *vouched)
        except (KeyError, IndexError, TypeError, ValueError):  # vouched for, yet misread
            summary = None  # (a forged cache): read whole, as a log nothing vouches for
        if summary is not None:
            return summary
    known = known_versions(compiled) if compiled is not None else None
    keep(known)  # in a process that ends at once (flagc), never freed version by version
    whole = _whole_history(folder, out, allow_shallow, tell, known)
    if whole is not None:
        return whole
    previous = previous_log(out / publish.AUDIT)
    history = read_history(folder, previous, allow_shallow)
    # a build with no new commit keeps the (possibly large) log as it is
    log = None if history.log == previous else serialize(audit_format.compact(history.log)) + b"\n"
    return HistorySummary(
        audit.flag_metadata(history.log),
        history.revision,
        log,
        len(history.log["entries"]),
        history.notes,
        history.log["head"],
        history.log["complete"],
    )


def known_versions(compiled: Compiled) -> audit.Versions:
    """The version of each file as the build compiled it, by its blob id: what
    `audit.read_version` makes of those bytes (parsed alike, and valid, or the build would
    not be reading its history), each flag's with its cells as the build resolved them on
    the project's grid. In a history read whole they are the newest versions of most files:
    10,000 of them are 0.6 s of reading, and their cells another 0.15 s of resolving."""
    grid, project_file = compiled.grid, compiled.project_file
    known: audit.Versions = {}
    if grid is not None and project_file is not None and project_file.blob:
        project = audit.Version(project_file.data, project=compiled.project, grid=grid)
        known[project_file.blob, True] = project
    resolved = compiled.resolved
    for key, flag_file in compiled.flags.items():
        document = flag_file.document
        if document.blob:
            resolution = resolved.get(key)
            cells = None
            if grid is not None and resolution is not None:
                cells = (grid, tuple(map(_VALUE, resolution.cells)))
            known[document.blob, False] = audit.Version(
                document.data, flag_file.flag, resolved=cells
            )
    return known


_VALUE = operator.itemgetter(0)  # a resolved cell's value


def _whole_history(
    folder: Path,
    out: Path,
    allow_shallow: bool,
    tell: Callable[[Any], None],
    known: audit.Versions | None,
) -> HistorySummary | None:
    """`summarize_history` with no log the cache vouches for: the history read whole, its
    audit log written from the entries; None outside git or before the first commit
    (`read_history` says what then), and for a shallow clone with a log in OUT to continue,
    which holds the commits the clone lacks. A log the cache does not vouch for is not
    continued otherwise: reading it back in whole (the log expanded, every entry checked)
    took longer than reading the history (at 50,000 flags, 38 s against 15 s in all)."""
    repository = GitRepository.open(folder)
    if repository is None:
        return None
    with repository:
        if repository.head() is None:
            return None
        shallow = _shallow(repository, allow_shallow)
        if shallow and os.path.lexists(out / publish.AUDIT):
            return None
        revision = repository.revision()
        if revision is not None:
            tell(revision)
        whole = audit.extract_whole(repository, shallow=shallow, known=known, tell=tell)
    written, told = serialize(whole.document) + b"\n", _told(folder, revision)
    keep(whole)  # (as `known`): its document is 10,000 flags' entries
    head = whole.document["head"]
    return HistorySummary(whole.metadata, revision, written, whole.entries, told, head, not shallow)


def _summary_continued(
    folder: Path, data: bytes, document: dict[str, Any]
) -> HistorySummary | None:
    """`summarize_history` from the last build's audit log (the file `data`, its document
    `document`), read as the incremental build reads it; None when it cannot simply be
    continued."""
    earlier = audit.flag_metadata({"entries": list(audit_format.headings(document))})
    recorded = {
        "head": document["head"],
        "complete": document["complete"],
        "entries": sum(len(commit["entries"]) for commit in document["commits"]),
    }
    continued = continue_history(folder, None, None, recorded, lambda: data, lambda _: earlier)
    return (
        None
        if continued is None
        else replace(continued, metadata={**earlier, **continued.metadata})
    )


def read_history(folder: Path, previous: dict[str, Any] | None, allow_shallow: bool) -> History:
    """The audit log continuing `previous` (the last build's) and the revision; outside
    git or before the first commit, an empty log and no revision. Raises ShallowClone for
    a shallow clone unless `allow_shallow`."""
    repository = GitRepository.open(folder)
    head = repository.head() if repository is not None else None
    if repository is None or head is None:
        where = "in a git work tree" if repository is None else "in a repository with commits"
        note = Note(
            "note",
            f"{folder} is not {where}: the audit log is empty and the revision is a hash "
            "of the content",
        )
        return History(audit.empty(), None, (note,))
    with repository:
        _shallow(repository, allow_shallow)
        log = audit.extract(repository, previous)
        revision = repository.revision()
    return History(log, revision, _told(folder, revision))


def _shallow(repository: GitRepository, allow_shallow: bool) -> bool:
    """Whether the clone is shallow; raises ShallowClone for one unless `allow_shallow`."""
    shallow = repository.is_shallow()
    if shallow and not allow_shallow:
        raise ShallowClone(SHALLOW)
    return shallow


def _told(folder: Path, revision: str | None) -> tuple[Note, ...]:
    """The warning a build of uncommitted changes gets (its revision ends in -dirty)."""
    if revision is not None and revision.endswith("-dirty"):
        return (Note("warning", _dirty(folder, revision)),)
    return ()


def _dirty(folder: Path, revision: str) -> str:
    return (
        f"{folder} has uncommitted changes: the revision is {revision}, and the audit "
        "log covers committed changes only"
    )


def previous_log(path: Path) -> dict[str, Any] | None:
    """The audit log of the last build (expanded from the file), to read only newer commits;
    None if unusable: another format, damaged, or a FIFO or a device (never waited on)."""
    try:
        log = audit_format.expand(orjson.loads(read_regular_file(path)))
    except (OSError, orjson.JSONDecodeError, ValueError):
        return None
    return log if audit.usable(log) else None


def continue_history(
    folder: Path,
    dirty: bool | None,
    head: str | None,
    recorded: Mapping[str, Any],
    data: Callable[[], bytes],
    earlier: Callable[[set[str]], dict[str, dict[str, Any]]],
) -> HistorySummary | None:
    """The history continued from the previous build's audit log, with what `read_history`
    tells, its `metadata` that of the flags the new commits name only; None when it cannot
    simply be continued (read it whole in a full build).
    `dirty`: whether the flags folder differs from HEAD, when already known (None: ask git);
    `head`: the commit it was compared with (None: HEAD's now), the one the history is read
    up to and the revision named;
    `recorded`: the log's head, completeness and number of entries; `data`: the log's file
    (read only when there are new commits, and continued without parsing its old commits:
    `core.audit_format.prepend_file`); `earlier`: the history's fields of the flags named,
    from the log."""
    repository = GitRepository.open(folder, head)
    head = repository.head() if repository is not None else None
    if repository is None or head is None:
        if recorded["head"] is not None:
            return None
        told = read_history(folder, None, True).notes
        return _summary({}, None, None, recorded, told)
    with repository:
        # a shallow clone's build is refused, or its log marked incomplete, by a full build
        shallow = repository.is_shallow()
        newer = None if shallow else audit.continued(repository, recorded["head"])
        revision = repository.revision(dirty)
    if newer is None:
        return None
    notes = _told(folder, revision)
    if not newer and head == recorded["head"]:  # no new commit: the log as it was
        return _summary({}, revision, None, recorded, notes)
    metadata = audit.continued_metadata(earlier({entry["flag"] for entry in newer}), newer)
    if metadata is None:
        return None
    complete = bool(recorded["complete"])
    log = audit_format.prepend_file(data(), newer, head, complete)
    entries = int(recorded["entries"]) + len(newer)
    counted = {"head": head, "complete": complete, "entries": entries}
    return _summary(metadata, revision, log, counted, notes)


def _summary(
    metadata: dict[str, dict[str, Any]],
    revision: str | None,
    log: bytes | None,
    recorded: Mapping[str, Any],
    notes: tuple[Note, ...],
) -> HistorySummary:
    """A HistorySummary of a log whose head, completeness and entries are `recorded`."""
    entries, head, complete = int(recorded["entries"]), recorded["head"], bool(recorded["complete"])
    return HistorySummary(metadata, revision, log, entries, notes, head, complete)
