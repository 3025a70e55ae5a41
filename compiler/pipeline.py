"""The whole compiler, stage after stage: load -> validate -> resolve -> the checks
(references, dependencies, expiry, variants and schedules)."""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compiler.dependencies import check_dependencies
from compiler.diagnostics import Diagnostic
from compiler.expiry import check_expiry
from compiler.load import PROJECT_FILE, ReadAhead, SourceFile, load_tree
from compiler.references import check_references
from compiler.schedules import check_schedules
from compiler.validate import Checked, FlagFile, validate, validate_document
from compiler.variants import check_variants
from core.model import Flag, Project
from core.resolve import Grid, Resolution, grid_of, resolve


class Stopwatch:
    """Seconds spent in each named stage, in the order the stages first ran; a stage run
    twice adds up. The build reports these, and the benchmarks print them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str, since: float | None = None) -> Iterator[None]:
        """Time the block as stage `name`, from `since` (a time.perf_counter()) if given."""
        started = time.perf_counter() if since is None else since
        try:
            yield
        finally:
            took = time.perf_counter() - started
            self.seconds[name] = self.seconds.get(name, 0.0) + took


@dataclass(slots=True)
class Compiled:
    diagnostics: list[Diagnostic]
    project: Project | None = None
    grid: Grid | None = None
    flags: dict[str, FlagFile] = field(default_factory=dict)
    resolved: dict[str, Resolution] = field(default_factory=dict)
    project_file: SourceFile | None = None
    # every flag file's key, whether its content could be read or not (`Loaded.keys`)
    known_keys: set[str] = field(default_factory=set)


def compile_tree(
    root: Path,
    *,
    display_root: str | None = None,
    today: datetime.date | None = None,
    strict: bool = False,
    stopwatch: Stopwatch | None = None,
    ahead: ReadAhead | None = None,
) -> Compiled:
    """Check every file below `root`; the diagnostics come sorted by file and position.
    Each stage is timed on `stopwatch` when one is given; `ahead` reads files beside.

    Raises NotADirectoryError when `root` is not a folder: that is a usage error, not a
    finding about the flags.
    """
    compiled = compile_flags(root, display_root=display_root, stopwatch=stopwatch, ahead=ahead)
    with (stopwatch or Stopwatch()).stage("check"):  # the label timings have always shown
        compiled.diagnostics += check(compiled, today, strict)
        compiled.diagnostics.sort()
    return compiled


def compile_flags(
    root: Path,
    *,
    display_root: str | None = None,
    stopwatch: Stopwatch | None = None,
    ahead: ReadAhead | None = None,
) -> Compiled:
    """`compile_tree` up to the flags resolved: what loading and validation find, without
    the checks (`check`); a build runs those beside its outputs. With `ahead`
    (the files read in another process), each file is validated and resolved as soon as it
    is loaded (`_AsLoaded`), so the `load` stage holds most of that work."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of flag files")
    stage = (stopwatch or Stopwatch()).stage
    early = _AsLoaded() if ahead is not None else None
    with stage("load"):
        loaded = load_tree(root, display_root, ahead, early)
    with stage("validate"):
        validated = validate(loaded, early.checked if early is not None else None)
    with stage("resolve"):
        grid = grid_of(validated.project) if validated.project is not None else None
        resolved = _resolved(grid, validated.flags, early) if grid is not None else {}
    project, flags = validated.project, validated.flags
    # A flag whose file is broken is still known by its file name (docs/check.md, "What is read").
    known = loaded.keys()
    return Compiled(
        validated.diagnostics, project, grid, flags, resolved, validated.project_file, known
    )


class _AsLoaded:
    """Each flag file validated, and resolved when it is valid and the project is, as
    `load_tree` loads it (its `each`): with the files read in another process, the first
    are checked while the last are read. The stages then take these results as they are:
    the same functions made them, so they are the same results, in the same order."""

    __slots__ = ("checked", "grid", "pending", "resolved")

    def __init__(self) -> None:
        self.checked: dict[str, Checked] = {}
        self.resolved: dict[str, Resolution] = {}
        self.grid: Grid | None = None
        self.pending: dict[str, Flag] = {}

    def __call__(self, document: SourceFile) -> None:
        if document.path == PROJECT_FILE:
            project, _ = validate_document(document, Project)
            self.grid = grid_of(project) if project is not None else None
            return
        flag, _ = self.checked[document.path] = validate_document(document, Flag)
        if flag is not None and self.grid is not None:
            self.pending[document.path] = flag
            if len(self.pending) == _RESOLVED_TOGETHER:
                self.resolve_pending()

    def resolve_pending(self) -> None:
        """Resolve the flags not resolved yet, together (`resolve` shares its work across
        the flags it is given: few distinct rows exist)."""
        if self.grid is not None:
            self.resolved.update(resolve(self.grid, self.pending))
        self.pending = {}


_RESOLVED_TOGETHER = 256  # flags resolved together: each batch works out its rows' bits once


def _resolved(
    grid: Grid, flags: Mapping[str, FlagFile], early: _AsLoaded | None
) -> dict[str, Resolution]:
    """Every flag resolved, by key, in `flags`' order: as `early` resolved them when it had
    the same grid (every flag in `flags` passed through it), else here."""
    if early is None or early.grid != grid:
        return resolve(grid, {key: flag_file.flag for key, flag_file in flags.items()})
    early.resolve_pending()
    return {key: early.resolved[flag_file.document.path] for key, flag_file in flags.items()}


def check(compiled: Compiled, today: datetime.date | None, strict: bool) -> list[Diagnostic]:
    """The checks of the resolved flags: references, dependencies, expiry, variants and
    schedules, unsorted. Schedules are judged against midnight UTC of `today` when one is
    given, else now; expiry against `today`, else today."""
    now = _midnight(today) if today is not None else int(time.time())
    today = today or datetime.date.today()
    flags, resolved = compiled.flags, compiled.resolved
    return [
        *check_references(compiled.project, flags, compiled.known_keys),
        *check_dependencies(compiled.grid, flags, resolved),
        *check_expiry(flags, today, strict=strict),
        *check_variants(flags),
        *check_schedules(flags, now),
    ]


def _midnight(day: datetime.date) -> int:
    """Midnight UTC of `day`, in seconds since the epoch (core.schedule's moments)."""
    return int(datetime.datetime.combine(day, datetime.time(), datetime.UTC).timestamp())
