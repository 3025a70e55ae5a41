"""The build, as one use case: compile the flags folder, read its git history, and publish
OUT/snapshot.json, OUT/audit.json and OUT/flagd/<environment>.json as one build.

    compile (load, validate, resolve) -> snapshot -> flagd -> render -> write, with the
    history (the audit log, compiler.history) read beside the compile (or, into an empty
    OUT, read whole from when the flags compiled), the checks run beside the making of the
    outputs and, in git, half of flagd's files made beside the rest (compiler.beside);
    flagd's files need only the revision, which the history tells first, and the snapshot's
    rendering each flag's history

`build` is the one place that knows this order. `flagc build` (compiler/commands/build.py)
parses its arguments, calls it and reports; the benchmarks and the tests call it directly.
It prints nothing: what the person running it should read comes back in the result.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from compiler import emit, incremental, publish
from compiler.beside import Beside
from compiler.diagnostics import Diagnostic, has_errors
from compiler.load import ReadAhead, settled
from compiler.pipeline import Compiled, Stopwatch, check, compile_flags
from compiler.validate import FlagFile
from core import flagd
from core.regular import read_regular_file
from core.schedule import scheduled


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
    `published`: the build written, as this process holds it, for its next build to
    continue from (`kept`: a resident builder's); None when it leaves no cache.
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
    published: incremental.Kept | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every finding about the flag files, sorted by file and position."""
        return self.compiled.diagnostics


class ShallowClone(Exception):
    """The history is cut short, so the audit log would be incomplete."""


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
    kept: incremental.Kept | None = None,
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
    compiled. `ahead` is the flag files' reading, started already (compiler.load). `kept`:
    the build this process published last (`BuildResult.published`), taken instead of
    reading OUT's while OUT still shows it as written (`incremental.Kept.current`).
    """
    options = (allow_shallow, fork, reuse, ahead, kept)
    try:
        return _build(flags_dir, out, display_root, today, strict, *options)
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
    kept: incremental.Kept | None,
) -> BuildResult:
    publish.require_usable_out(out)
    stopwatch = Stopwatch()
    shown = str(flags_dir) if display_root is None else display_root
    flags_dir = settled(flags_dir)  # (one work tree, though a link swaps meanwhile)
    with publish.locked(out):  # a second build into OUT waits for this one
        notes: tuple[Note, ...] = ()
        if reuse and flags_dir.is_dir():
            try:
                reused = _reuse(flags_dir, out, shown, today, strict, stopwatch, kept)
            except incremental.Untrusted as exc:
                reused, notes = None, (Note("note", f"{exc}: built in full"),)
            except (KeyError, TypeError, ValueError) as exc:  # a cache this flagc misread
                why = f"the previous build could not be reused ({exc!r}): built in full"
                reused, notes = None, (Note("warning", why),)
            if reused is not None:
                return reused
        result = _full(flags_dir, out, shown, today, strict, allow_shallow, fork, stopwatch, ahead)
        return replace(result, notes=notes + result.notes) if notes else result


def _summarize_history(
    folder: Path,
    out: Path,
    allow_shallow: bool,
    compiled: Compiled | None,
    tell: Callable[[Any], None],
) -> HistorySummary:
    """`compiler.history.summarize_history`, its modules imported here: in the forked
    history process, where there is one (compiler.history says why)."""
    from compiler.history import summarize_history  # noqa: PLC0415

    return summarize_history(folder, out, allow_shallow, tell, compiled)


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
    """Compile every flag, read the history, and publish (under OUT's lock). Once the flags
    are resolved, their checks run beside the outputs' making (compiler.beside): the outputs
    are made as if the checks will pass, and written only if they do.

    The history is read beside the compile when OUT holds a previous build, whose audit
    log it continues; otherwise it is read whole, from when the flags compiled, with the
    compiled files' versions not read again (compiler.history.known_versions): that saves
    more than it waits (bench/build_bench.py, `first`)."""
    reads = (flags_dir, out, allow_shallow)
    reading = None
    if publish.cache_path(out).exists():  # a previous build, whose log is continued
        reading = Beside(_summarize_history, *reads, None, fork=fork, telling=True)
    try:
        compiled = compile_flags(
            flags_dir, display_root=display_root, stopwatch=stopwatch, ahead=ahead
        )
    except BaseException:
        if reading is not None:
            reading.cancel()
        raise
    if has_errors(compiled.diagnostics) or compiled.grid is None:  # nothing to publish
        if reading is not None:
            reading.cancel()
        _checked(compiled, Beside(check, compiled, today, strict, fork=False), stopwatch)
        return BuildResult(compiled, stopwatch.seconds)
    if reading is None:
        reading = Beside(_summarize_history, *reads, compiled, fork=fork, telling=True)
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
    """Make the outputs, waiting for the history only where they need it (`_Waiting`), and
    publish them (under OUT's lock) if the checks found no error. What went wrong in the
    making matters only then: made from flags with errors (a dependency cycle, say), it may
    fail, and the findings say why."""
    waiting = _Waiting(reading, stopwatch)
    try:
        made = waiting.made(compiled)
    except Exception as exc:
        reading.cancel()  # when the making failed first
        if _checked(compiled, checking, stopwatch):
            return BuildResult(compiled, stopwatch.seconds)
        return _failed(compiled, stopwatch, waiting.history, exc)
    except BaseException:
        reading.cancel()
        checking.cancel()
        raise
    history = waiting.answer()  # known by now: made waited for it
    if _checked(compiled, checking, stopwatch):
        return BuildResult(compiled, stopwatch.seconds)
    try:
        published = _publish(out, source, compiled, history, made, stopwatch)
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
        published=published,
    )


@dataclass(slots=True)
class _Waiting:
    """The outputs' making as the history tells what they need. A history read whole tells
    git's revision, then each flag's history, before its answer, the log (compiler.history):
    flagd's files are made with the revision and the snapshot rendered with the flags'
    history meanwhile, and made again should the answer say otherwise. A history that tells
    nothing (a continued log, outside git) is waited for first."""

    reading: Beside[HistorySummary]
    stopwatch: Stopwatch
    history: HistorySummary | None = None  # the answer, once had

    def answer(self) -> HistorySummary:
        if self.history is None:
            with self.stopwatch.stage("history"):
                self.history = self.reading.result()
        return self.history

    def made(self, compiled: Compiled) -> _Made:
        with self.stopwatch.stage("history"):
            told = self.reading.told()
        if told is None:  # no word before the answer: the answer (or its exception)
            self.answer()
        early = _begin(compiled, told, self.stopwatch, self.reading.forked)
        try:
            return self._rest(early, told)
        except BaseException:
            early.cancel()
            raise

    def _rest(self, early: _Early, told: str | None) -> _Made:
        fork = self.reading.forked
        if self.history is None:
            with self.stopwatch.stage("history"):
                metadata = self.reading.told()
            if metadata is not None:  # the log is being written: the outputs meanwhile
                made = _make(early, told, metadata, self.stopwatch, fork)
                history = self.answer()
                if (history.revision, history.metadata) == (told, metadata):
                    return made
        history = self.answer()
        return _make(early, history.revision, history.metadata, self.stopwatch, fork)


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


@dataclass(slots=True)
class _Early:
    """What the outputs' making does before the history's answer: the snapshot's content,
    without the history's fields, and flagd's files when the revision was told first
    (`files`, those of `making` still being made beside)."""

    content: dict[str, Any]
    revision: str | None = None  # the revision flagd's files were made with
    files: dict[str, flagd.File] = field(default_factory=dict)
    making: Beside[dict[str, flagd.File]] | None = None

    def cancel(self) -> None:
        if self.making is not None:
            self.making.cancel()
            self.making = None


def _begin(compiled: Compiled, told: str | None, stopwatch: Stopwatch, fork: bool) -> _Early:
    """The snapshot's content and, with the revision `told` (the history's of a git folder,
    told before it reads the log: compiler.history), flagd's files, which need nothing
    else: so made while the history is read. `fork`: whether work may be done in a forked
    process (compiler.beside)."""
    assert compiled.grid is not None  # build() publishes only what compiled
    with stopwatch.stage("snapshot"):
        early = _Early(emit.snapshot(compiled.grid, compiled.flags, compiled.resolved))
    if told is not None:
        early.revision = told
        try:
            rest = _flagd_beside(early, told, fork)
            with stopwatch.stage("flagd"):
                early.files = flagd.files(_document(early.content, told, rest))
        except BaseException:
            early.cancel()
            raise
    return early


def _make(
    early: _Early,
    revision: str | None,
    metadata: dict[str, dict[str, Any]],
    stopwatch: Stopwatch,
    fork: bool,
) -> _Made:
    """The outputs, once the history's `revision` and `metadata` (each flag's history) are
    known: the snapshot's bytes with each flag's history, and flagd's files not made yet.
    Those need the revision and not the digest: git's revision is known, so the first
    environments' are made beside the rendering and this process makes the others
    meanwhile; without git the revision is made from the digest. Files made with another
    revision are made again."""
    content, rest = early.content, None
    if early.revision is None or early.revision != revision:  # none told, or HEAD moved
        early.cancel()
        early.files, early.revision = {}, revision
        rest = content["environments"]
        if revision is not None:
            rest = _flagd_beside(early, revision, fork)
    emit.add_history(content, metadata)
    with stopwatch.stage("render"):
        rendered = emit.render(content, revision)
    with stopwatch.stage("flagd"):
        definitions = dict(early.files)
        if rest:
            definitions.update(flagd.files(_document(content, rendered.revision, rest)))
        if early.making is not None:
            definitions.update(early.making.result())
    return _Made(content, rendered, definitions)


def _flagd_beside(early: _Early, revision: str, fork: bool) -> list[str]:
    """Start making the first half of the environments' flagd files beside (when `fork`);
    the environments left for this process."""
    environments = list(early.content["environments"])
    if not fork:
        return environments
    half = (len(environments) + 1) // 2
    document = _document(early.content, revision, environments[:half])
    early.making = Beside(flagd.files, document, fork=fork)
    return environments[half:]


def _document(content: dict[str, Any], revision: str, environments: list[str]) -> dict[str, Any]:
    """The document `flagd.files` makes the files of `environments` from."""
    return {**content, "revision": revision, "environments": environments}


def _publish(
    out: Path,
    source: tuple[Path, str],
    compiled: Compiled,
    history: HistorySummary,
    made: _Made,
    stopwatch: Stopwatch,
) -> incremental.Kept | None:
    """Swap the outputs into OUT, with the audit log and the cache, as one build (call
    under OUT's lock); the build as published, when it leaves a cache."""
    with stopwatch.stage("write"):
        head = {name: value for name, value in made.content.items() if name != "flags"}
        definitions = made.definitions
        sealing = _Sealing(
            lambda: _cache(out, source, compiled, history, made.rendered, head, definitions)
        )
        data = {environment: file.data for environment, file in definitions.items()}
        directory = publish.publish(out, made.rendered.data, history.log, data, sealing)
        return sealing.kept(out, directory)


@dataclass(slots=True)
class _Sealing:
    """The cache of a build, made (by `make`) and sealed when `publish.publish` calls for
    it, while the outputs are being written: its SHA-256 of each output runs beside their
    writing (hashlib lets go of the GIL). Then, what this process keeps of the build."""

    make: Callable[[], tuple[incremental.Cache, incremental.Written] | None]
    made: tuple[incremental.Cache, incremental.Written] | None = None

    def __call__(self) -> bytes | None:
        self.made = self.make()
        return self.made[0].to_bytes() if self.made is not None else None

    def kept(self, out: Path, directory: Path) -> incremental.Kept | None:
        """The build as published into `directory`, if it has a cache."""
        if self.made is None:
            return None
        return incremental.Kept.published(out, directory, *self.made)


def _cache(
    out: Path,
    source: tuple[Path, str],
    compiled: Compiled,
    history: HistorySummary,
    rendered: emit.Rendered,
    head: dict[str, Any],
    definitions: dict[str, flagd.File],
) -> tuple[incremental.Cache, incremental.Written] | None:
    """What the next build may reuse of this full build, with what it writes: nothing
    when a flag has a schedule (`_reusable`)."""
    assert compiled.project_file is not None  # a build that publishes has a project
    flags = compiled.flags
    if not _reusable(flags):
        return None
    folder, display_root = source
    audit_bytes = history.log if history.log is not None else read_regular_file(out / publish.AUDIT)
    edges = {key: list(flag_file.flag.depends_on) for key, flag_file in flags.items()}
    written = incremental.Written(rendered, head, edges, definitions, audit_bytes)
    cache = incremental.cache_of(
        incremental.folder_identity(folder),
        display_root,
        compiled.project_file.blob,
        {flag_file.document.path: flag_file.document.blob for flag_file in flags.values()},
        compiled.diagnostics,
        incremental.expires_of(flags),
        history.record(),
        written,
    )
    return (cache, written) if cache is not None else None


def _reusable(flags: Mapping[str, FlagFile]) -> bool:
    """Whether a build of `flags` may leave a cache for the next: not when one has a
    schedule, so that the next build is full. A schedule's dependency checks span the
    steps of every flag it meets, and `schedule-past` changes with the day, which the
    cache's findings do not."""
    return not any(scheduled(flag_file.flag) for flag_file in flags.values())


def outputs(out: Path, compiled: Compiled) -> tuple[Path, ...]:
    """The documented paths of a build of `compiled` in OUT: the snapshot, the audit log,
    and one flagd file per environment, sorted."""
    environments = sorted(compiled.grid.environments) if compiled.grid is not None else []
    flagd_files = [out / publish.FLAGD / f"{environment}.json" for environment in environments]
    return (out / publish.SNAPSHOT, out / publish.AUDIT, *flagd_files)


# -- the incremental build ----------------------------------------------------------------


def _reuse(
    flags_dir: Path,
    out: Path,
    shown: str,
    today: datetime.date | None,
    strict: bool,
    stopwatch: Stopwatch,
    kept: incremental.Kept | None,
) -> BuildResult | None:
    """The build made from what the previous build in OUT knows (compiler.incremental), or
    None when it cannot be made so (the caller builds in full). Raises
    incremental.Untrusted when the previous build's cache or outputs are not to be trusted.
    `kept`: that build as this process published it, if it is still OUT's as written."""
    started = time.perf_counter()
    kept = kept if kept is not None and kept.current(out, shown) else None
    cache = kept.cache if kept is not None else incremental.read_cache(out, shown)
    if cache is None:  # no previous build to reuse: no `reuse` stage
        return None
    with stopwatch.stage("reuse", since=started):
        found = _found(flags_dir, out, cache, kept)
        if found is None:
            return None
        tree, previous = found
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
        from compiler.history import continue_history  # noqa: PLC0415 - as `_summarize_history`

        history = continue_history(
            flags_dir,
            tree.dirty,
            tree.head,
            cache.audit,
            previous.audit,
            lambda keys: incremental.earlier_metadata(previous, keys),
        )
    if history is None or not incremental.settled(plan, cache, history.metadata):
        return None
    return _publish_reused(out, shown, previous, tree, plan, part, history, stopwatch)


def _found(
    flags_dir: Path, out: Path, cache: incremental.Cache, kept: incremental.Kept | None
) -> tuple[incremental.Tree, incremental.Previous] | None:
    """The flags folder as found (`incremental.read_tree`) and the previous build (`kept`,
    or read from OUT), or None when the folder needs a full build. The folder is judged
    first: one that was not the cache's raises Untrusted before the outputs are. Read from
    OUT, the outputs are read and checked against the cache in a thread while git answers
    and the folder is listed (reading and hashing let go of the GIL: 30 ms of 39 MB at
    10,000 flags); the thread has ended when this returns, as what forks after wants."""
    with ThreadPoolExecutor(max_workers=1) as pool:  # no thread until a reading is asked
        reading = pool.submit(incremental.Previous.read, out, cache) if kept is None else None
        tree = incremental.read_tree(flags_dir)
        if tree is None or not incremental.same_project(cache, tree):
            return None
        if kept is not None:
            return tree, incremental.Previous.of_kept(kept)
        assert reading is not None
        return tree, reading.result()  # Untrusted, if the outputs are not what was built


def _publish_reused(
    out: Path,
    shown: str,
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
        # its digest is worked out beside flagd's files
        rendering = emit.rendering(content, history.revision, entries.joined())
        revision = history.revision or rendering().revision  # git's; else the digest's
    with stopwatch.stage("flagd"):
        files = incremental.flagd_files(previous, content, entries, revision, plan)
    with stopwatch.stage("write"):
        rendered = rendering()
        audit_bytes = history.log if history.log is not None else previous.audit()
        reused = plan.reused()
        kept = {key: at for key, at in cache.expires.items() if key in reused}
        written = incremental.Written(
            rendered, cache.snapshot["head"], plan.edges, files, audit_bytes, plan.dependents()
        )

        def sealed() -> tuple[incremental.Cache, incremental.Written] | None:
            new_cache = incremental.cache_of(
                tree.folder,
                shown,
                cache.project,
                tree.blobs,
                part.compiled.diagnostics,
                {**kept, **incremental.expires_of(part.compiled.flags)},
                history.record(),
                written,
            )
            return (new_cache, written) if new_cache is not None else None

        sealing = _Sealing(sealed)
        definitions = {environment: file.data for environment, file in files.items()}
        try:
            directory = publish.publish(out, rendered.data, history.log, definitions, sealing)
        except OSError as exc:  # as a full build reports it (flagc exits 2)
            notes = history.notes
            return BuildResult(part.compiled, stopwatch.seconds, notes=notes, failed=str(exc))
        published = sealing.kept(out, directory)
    return BuildResult(
        part.compiled,
        stopwatch.seconds,
        outputs=outputs(out, part.compiled),
        revision=rendered.revision,
        audit_entries=history.entries,
        notes=history.notes,
        flag_count=len(plan.files),
        reused=len(plan.files) - len(plan.changed),
        published=published,
    )
