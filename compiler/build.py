"""The build, as one use case: compile the flags folder, read its git history, and publish
OUT/snapshot.json, OUT/audit.json and OUT/flagd/<environment>.json as one build.

    compile (load, validate, resolve) -> snapshot -> render -> flagd -> write, with the
    history (the audit log) read beside the compile, the checks run beside the making of
    the outputs and, in git, flagd files made beside the rendering (compiler.beside)

`build` is the one place that knows this order. `flagc build` (compiler/commands/build.py)
parses its arguments, calls it and reports; the benchmarks and the tests call it directly.
It prints nothing: what the person running it should read comes back in the result.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

from compiler import audit, emit, incremental, load, publish
from compiler.beside import Beside
from compiler.diagnostics import Diagnostic, has_errors
from compiler.git_repository import GitRepository
from compiler.load import ReadAhead
from compiler.pipeline import Compiled, Stopwatch, check, compile_flags
from compiler.validate import FlagFile
from core import audit_format, flagd
from core.canonical import serialize
from core.regular import read_regular_file
from core.schedule import scheduled

SHALLOW = (
    "this is a shallow clone, so the audit log would miss older changes; fetch "
    "the whole history (git fetch --unshallow; in GitHub Actions, actions/checkout "
    "with fetch-depth: 0), or build with --allow-shallow to mark it incomplete"
)


@dataclass(frozen=True, slots=True)
class Note:
    """Something the person running the build should know that is not about a flag file
    (so not a Diagnostic): the folder is outside git, or has uncommitted changes."""

    level: Literal["note", "warning"]
    message: str


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What one build did.

    `outputs` are the paths readers use (OUT/snapshot.json, OUT/audit.json, then
    OUT/flagd/<environment>.json by environment), empty when nothing was written: the
    flags have errors (see `diagnostics`), the build was `refused` (a shallow clone), or
    reading the history or writing OUT `failed` (an I/O problem: a file in OUT's way, a
    full disk). Each message says why. `timings` gives the seconds of each stage that ran,
    in the order they ran. `flag_count` flags were written; `reused` of them were taken
    from the previous build (compiler.incremental; 0 for a full build), whose `compiled`
    then holds only the flags compiled again (the diagnostics are the whole tree's).
    """

    compiled: Compiled
    timings: Mapping[str, float]
    outputs: tuple[Path, ...] = ()
    revision: str | None = None
    audit_entries: int = 0
    notes: tuple[Note, ...] = ()
    refused: str | None = None
    failed: str | None = None
    flag_count: int = 0
    reused: int = 0

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every finding about the flag files, sorted by file and position."""
        return self.compiled.diagnostics


class ShallowClone(Exception):
    """The history is cut short, so the audit log would be incomplete."""


@dataclass(frozen=True, slots=True)
class History:
    """The audit log (continuing the last build's), the revision (None outside git: the
    snapshot's is then a hash of its content), and what to tell about either."""

    log: dict[str, Any]
    revision: str | None
    notes: tuple[Note, ...] = ()


def build(
    flags_dir: Path,
    out: Path,
    *,
    display_root: str | None = None,
    today: datetime.date | None = None,
    strict: bool = False,
    allow_shallow: bool = False,
    fork: bool = True,
    reuse: bool = True,
    ahead: ReadAhead | None = None,
) -> BuildResult:
    """Check `flags_dir`; only when no diagnostic is an error, publish one build into `out`.

    Findings come back in the result, never raised, and so does an OSError or ValueError
    met after the flags compiled (`failed`), so that a caller still reports the findings.
    What the caller asked for wrongly is raised before anything is written:
    publish.OutputError when `out` cannot take a build, NotADirectoryError when
    `flags_dir` is not a folder. A shallow clone is refused (nothing written) unless
    `allow_shallow`, which marks the audit log incomplete. Builds into one `out` take turns.

    With `reuse`, what the previous build in OUT knows is reused where the flags' files
    show it still holds (compiler.incremental); otherwise, and when that cannot be done,
    the build is full. A full build reads the history beside the compile, in a forked
    process where that helps (compiler.beside; `fork=False` never forks). The outputs are
    the same bytes either way; the `history` stage is the wait for it once the flags
    compiled. `ahead` is the flag files' reading, started already (compiler.load).
    """
    try:
        return _build(
            flags_dir, out, display_root, today, strict, allow_shallow, fork, reuse, ahead
        )
    finally:
        if ahead is not None:  # whatever the build read, or did not
            ahead.cancel()


def _build(
    flags_dir: Path,
    out: Path,
    display_root: str | None,
    today: datetime.date | None,
    strict: bool,
    allow_shallow: bool,
    fork: bool,
    reuse: bool,
    ahead: ReadAhead | None,
) -> BuildResult:
    publish.require_usable_out(out)
    stopwatch = Stopwatch()
    shown = str(flags_dir) if display_root is None else display_root
    with publish.locked(out):  # a second build into OUT waits for this one
        notes: tuple[Note, ...] = ()
        if reuse and flags_dir.is_dir():
            try:
                reused = _reuse(flags_dir, out, shown, today, strict, stopwatch)
            except incremental.Untrusted as exc:
                reused, notes = None, (Note("note", f"{exc}: built in full"),)
            except (KeyError, TypeError, ValueError) as exc:  # a cache this flagc misread
                why = f"the previous build could not be reused ({exc!r}): built in full"
                reused, notes = None, (Note("warning", why),)
            if reused is not None:
                return reused
        result = _full(flags_dir, out, shown, today, strict, allow_shallow, fork, stopwatch, ahead)
        return replace(result, notes=notes + result.notes) if notes else result


def _full(
    flags_dir: Path,
    out: Path,
    display_root: str,
    today: datetime.date | None,
    strict: bool,
    allow_shallow: bool,
    fork: bool,
    stopwatch: Stopwatch,
    ahead: ReadAhead | None,
) -> BuildResult:
    """Compile every flag, read the history beside, and publish (under OUT's lock). Once
    the flags are resolved, their checks run beside the outputs' making (compiler.beside):
    the outputs are made as if the checks will pass, and written only if they do."""
    reading = Beside(summarize_history, flags_dir, out, allow_shallow, fork=fork)
    try:
        compiled = compile_flags(
            flags_dir, display_root=display_root, stopwatch=stopwatch, ahead=ahead
        )
    except BaseException:
        reading.cancel()
        raise
    if has_errors(compiled.diagnostics) or compiled.grid is None:  # nothing to publish
        reading.cancel()
        _checked(compiled, Beside(check, compiled, today, strict, fork=False), stopwatch)
        return BuildResult(compiled, stopwatch.seconds)
    checking = Beside(check, compiled, today, strict, fork=fork)
    return _finish(out, (flags_dir, display_root), compiled, reading, checking, stopwatch)


def _checked(compiled: Compiled, checking: Beside[list[Diagnostic]], stopwatch: Stopwatch) -> bool:
    """Add the checks' findings to `compiled`'s, in order; whether any is an error. The
    `check` stage is the wait for them."""
    with stopwatch.stage("check"):
        compiled.diagnostics += checking.result()
        compiled.diagnostics.sort()
    return has_errors(compiled.diagnostics)


def _finish(
    out: Path,
    source: tuple[Path, str],
    compiled: Compiled,
    reading: Beside[HistorySummary],
    checking: Beside[list[Diagnostic]],
    stopwatch: Stopwatch,
) -> BuildResult:
    """Wait for the history, make the outputs, and publish them (under OUT's lock) if the
    checks found no error. What went wrong in the making matters only then: made from flags
    with errors (a dependency cycle, say), it may fail, and the findings say why."""
    history: HistorySummary | None = None
    try:
        with stopwatch.stage("history"):
            history = reading.result()
        made = _make(compiled, history, stopwatch, reading.forked)
    except Exception as exc:
        if _checked(compiled, checking, stopwatch):
            return BuildResult(compiled, stopwatch.seconds)
        return _failed(compiled, stopwatch, history, exc)
    except BaseException:
        checking.cancel()
        raise
    if _checked(compiled, checking, stopwatch):
        return BuildResult(compiled, stopwatch.seconds)
    try:
        _publish(out, source, compiled, history, made, stopwatch)
    except (OSError, ValueError) as exc:
        return _failed(compiled, stopwatch, history, exc)
    return BuildResult(
        compiled,
        stopwatch.seconds,
        outputs=outputs(out, compiled),
        revision=made.rendered.revision,
        audit_entries=history.entries,
        notes=history.notes,
        flag_count=len(compiled.flags),
    )


def _failed(
    compiled: Compiled, stopwatch: Stopwatch, history: HistorySummary | None, exc: Exception
) -> BuildResult:
    """The build refused (a shallow clone) or failed with what flagc reports as an error
    of its own (exit 2: an OSError or ValueError); anything else is raised again."""
    if isinstance(exc, ShallowClone):
        return BuildResult(compiled, stopwatch.seconds, refused=str(exc))
    if isinstance(exc, OSError | ValueError):
        notes = history.notes if history is not None else ()
        return BuildResult(compiled, stopwatch.seconds, notes=notes, failed=str(exc))
    raise exc


@dataclass(frozen=True, slots=True)
class _Made:
    """A build's outputs, made and not yet written."""

    content: dict[str, Any]
    rendered: emit.Rendered
    definitions: dict[str, flagd.File]


def _make(compiled: Compiled, history: HistorySummary, stopwatch: Stopwatch, fork: bool) -> _Made:
    """Emit the snapshot and the flagd definitions. `fork`: whether work may be done in a
    forked process (compiler.beside)."""
    assert compiled.grid is not None  # build() publishes only what compiled
    with stopwatch.stage("snapshot"):
        content = emit.snapshot(compiled.grid, compiled.flags, compiled.resolved, history.metadata)
    # flagd's files need the revision and not the digest: git's revision is known, so the
    # first environments' are made beside the rendering, and this process makes the others
    # meanwhile; without git the revision is made from the digest.
    making, environments = None, list(content["environments"])
    if history.revision is not None and fork:
        half = (len(environments) + 1) // 2
        beside, environments = environments[:half], environments[half:]
        document = {**content, "revision": history.revision, "environments": beside}
        making = Beside(flagd.files, document, fork=fork)
    try:
        with stopwatch.stage("render"):
            rendered = emit.render(content, history.revision)
    except BaseException:
        if making is not None:
            making.cancel()
        raise
    with stopwatch.stage("flagd"):
        document = {**content, "revision": rendered.revision, "environments": environments}
        definitions = flagd.files(document)
        if making is not None:
            definitions.update(making.result())
    return _Made(content, rendered, definitions)


def _publish(
    out: Path,
    source: tuple[Path, str],
    compiled: Compiled,
    history: HistorySummary,
    made: _Made,
    stopwatch: Stopwatch,
) -> None:
    """Swap the outputs into OUT, with the audit log and the cache, as one build (call
    under OUT's lock)."""
    with stopwatch.stage("write"):
        head = {name: value for name, value in made.content.items() if name != "flags"}
        definitions = made.definitions
        cache = _cache(out, source, compiled, history, made.rendered, head, definitions)
        data = {environment: file.data for environment, file in definitions.items()}
        cached = cache.to_bytes() if cache is not None else None
        publish.publish(out, made.rendered.data, history.log, data, cached)


def _cache(
    out: Path,
    source: tuple[Path, str],
    compiled: Compiled,
    history: HistorySummary,
    rendered: emit.Rendered,
    head: dict[str, Any],
    definitions: dict[str, flagd.File],
) -> incremental.Cache | None:
    """What the next build may reuse of this full build: nothing when a flag has a
    schedule (`_reusable`)."""
    assert compiled.project_file is not None  # a build that publishes has a project
    flags = compiled.flags
    if not _reusable(flags):
        return None
    folder, display_root = source
    audit_bytes = history.log if history.log is not None else read_regular_file(out / publish.AUDIT)
    edges = {key: list(flag_file.flag.depends_on) for key, flag_file in flags.items()}
    return incremental.cache_of(
        folder,
        display_root,
        compiled.project_file.blob,
        {flag_file.document.path: flag_file.document.blob for flag_file in flags.values()},
        compiled.diagnostics,
        incremental.expires_of(flags),
        history.record(),
        incremental.Written(rendered, head, edges, definitions, audit_bytes),
    )


def _reusable(flags: Mapping[str, FlagFile]) -> bool:
    """Whether a build of `flags` may leave a cache for the next: not when one has a
    schedule, so that the next build is full. A schedule's dependency checks span the
    steps of every flag it meets, and `schedule-past` changes with the day, which the
    cache's findings do not."""
    return not any(scheduled(flag_file.flag) for flag_file in flags.values())


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What publishing needs of the history: each flag's creation and last change, the
    revision, the audit log's bytes (None: the last build's log, unchanged), its number
    of entries, and the notes. Small to send from a forked process, but for the log."""

    metadata: dict[str, dict[str, Any]]
    revision: str | None
    log: bytes | None
    entries: int
    notes: tuple[Note, ...]
    head: str | None = None
    complete: bool = False

    def record(self) -> dict[str, Any]:
        """What the incremental build's cache records of the log."""
        return {"head": self.head, "complete": self.complete, "entries": self.entries}


def summarize_history(folder: Path, out: Path, allow_shallow: bool) -> HistorySummary:
    """Read the history of `folder`, continuing OUT's audit log (the last build's, when
    usable), and say what publishing needs of it. A log the last build's cache vouches for
    is continued as its file says it, not expanded (`core.audit_format.prepend`); with
    none to continue, the file is written from the entries (`audit.extract_whole`)."""
    vouched = incremental.vouched_audit(out)
    if vouched is not None:
        summary = _summary_continued(folder, vouched)
        if summary is not None:
            return summary
    whole = _whole_history(folder, out, allow_shallow)
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


def _whole_history(folder: Path, out: Path, allow_shallow: bool) -> HistorySummary | None:
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
        whole = audit.extract_whole(repository, shallow=shallow)
        revision = repository.revision()
    written, told = serialize(whole.document) + b"\n", _told(folder, revision)
    head = whole.document["head"]
    return HistorySummary(whole.metadata, revision, written, whole.entries, told, head, not shallow)


def _summary_continued(folder: Path, document: dict[str, Any]) -> HistorySummary | None:
    """`summarize_history` from the file document of the last build's audit log, read as
    the incremental build reads it; None when it cannot simply be continued."""
    earlier = audit.flag_metadata({"entries": list(audit_format.headings(document))})
    recorded = {
        "head": document["head"],
        "complete": document["complete"],
        "entries": sum(len(commit["entries"]) for commit in document["commits"]),
    }
    continued = _continue_history(folder, None, recorded, lambda: document, lambda _: earlier)
    return (
        None
        if continued is None
        else replace(continued, metadata={**earlier, **continued.metadata})
    )


def outputs(out: Path, compiled: Compiled) -> tuple[Path, ...]:
    """The documented paths of a build of `compiled` in OUT: the snapshot, the audit log,
    and one flagd file per environment, sorted."""
    environments = sorted(compiled.grid.environments) if compiled.grid is not None else []
    flagd_files = [out / publish.FLAGD / f"{environment}.json" for environment in environments]
    return (out / publish.SNAPSHOT, out / publish.AUDIT, *flagd_files)


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


# -- the incremental build ----------------------------------------------------------------


def _reuse(
    flags_dir: Path,
    out: Path,
    shown: str,
    today: datetime.date | None,
    strict: bool,
    stopwatch: Stopwatch,
) -> BuildResult | None:
    """The build made from what the previous build in OUT knows (compiler.incremental), or
    None when it cannot be made so (the caller builds in full). Raises
    incremental.Untrusted when the previous build's cache or outputs are not to be trusted."""
    started = time.perf_counter()
    cache = incremental.read_cache(out, flags_dir, shown)
    if cache is None:  # no previous build to reuse: no `reuse` stage
        return None
    with stopwatch.stage("reuse", since=started):
        tree = incremental.read_tree(flags_dir)
        if tree is None or load.blob_id(tree.project) != cache.project:
            return None
        previous = incremental.Previous.read(out, cache)
        plan = incremental.plan(cache, tree.blobs)
        if plan is None:
            return None
    with stopwatch.stage("compile"):
        today = today or datetime.date.today()
        part = incremental.compile_part(
            tree, plan, cache, display_root=shown, today=today, strict=strict
        )
    if part is None:
        return None
    with stopwatch.stage("history"):
        history = _continue_history(
            flags_dir,
            tree.dirty,
            cache.audit,
            lambda: orjson.loads(previous.audit()),
            lambda keys: incremental.earlier_metadata(previous, keys),
        )
    if history is None or not incremental.settled(plan, cache, history.metadata):
        return None
    return _publish_reused(out, (flags_dir, shown), previous, tree, plan, part, history, stopwatch)


def _publish_reused(
    out: Path,
    source: tuple[Path, str],
    previous: incremental.Previous,
    tree: incremental.Tree,
    plan: incremental.Plan,
    part: incremental.Part,
    history: HistorySummary,
    stopwatch: Stopwatch,
) -> BuildResult:
    """Make the outputs from the previous build's and publish them (under OUT's lock)."""
    cache = previous.cache
    with stopwatch.stage("snapshot"):
        content, entries = incremental.snapshot_content(previous, part, plan, history.metadata)
    with stopwatch.stage("render"):
        rendered = emit.render(content, history.revision)
    with stopwatch.stage("flagd"):
        files = incremental.flagd_files(previous, content, entries, rendered.revision, plan)
    with stopwatch.stage("write"):
        audit_bytes = history.log if history.log is not None else previous.audit()
        reused = plan.reused()
        kept = {key: at for key, at in cache.expires.items() if key in reused}
        written = incremental.Written(
            rendered, cache.snapshot["head"], plan.edges, files, audit_bytes
        )
        new_cache = incremental.cache_of(
            *source,
            cache.project,
            tree.blobs,
            part.compiled.diagnostics,
            {**kept, **incremental.expires_of(part.compiled.flags)},
            history.record(),
            written,
        )
        definitions = {environment: file.data for environment, file in files.items()}
        cached = new_cache.to_bytes() if new_cache is not None else None
        try:
            publish.publish(out, rendered.data, history.log, definitions, cached)
        except OSError as exc:  # as a full build reports it (flagc exits 2)
            notes = history.notes
            return BuildResult(part.compiled, stopwatch.seconds, notes=notes, failed=str(exc))
    return BuildResult(
        part.compiled,
        stopwatch.seconds,
        outputs=outputs(out, part.compiled),
        revision=rendered.revision,
        audit_entries=history.entries,
        notes=history.notes,
        flag_count=len(plan.files),
        reused=len(plan.files) - len(plan.changed),
    )


def _continue_history(
    folder: Path,
    dirty: bool | None,
    recorded: Mapping[str, Any],
    document: Callable[[], dict[str, Any]],
    earlier: Callable[[set[str]], dict[str, dict[str, Any]]],
) -> HistorySummary | None:
    """The history continued from the previous build's audit log, with what `read_history`
    tells, its `metadata` that of the flags the new commits name only; None when it cannot
    simply be continued (read it whole in a full build).
    `dirty`: whether the flags folder differs from HEAD, when already known (None: ask git);
    `recorded`: the log's head, completeness and number of entries; `document`: the log's
    file document (read only when there are new commits); `earlier`: the history's fields
    of the flags named, from the log."""
    repository = GitRepository.open(folder)
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
    log = serialize(audit_format.prepend(document(), newer, head, complete)) + b"\n"
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
