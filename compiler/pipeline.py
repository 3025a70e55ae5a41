"""The whole compiler, stage after stage: load -> validate -> resolve -> check."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from compiler.check import check
from compiler.diagnostics import Diagnostic
from compiler.load import load_tree
from compiler.model import Project
from compiler.references import check_references
from compiler.resolve import Grid, Resolution, grid_of, resolve
from compiler.validate import FlagFile, validate


@dataclass(slots=True)
class Compiled:
    diagnostics: list[Diagnostic]
    project: Project | None = None
    grid: Grid | None = None
    flags: dict[str, FlagFile] = field(default_factory=dict)
    resolved: dict[str, Resolution] = field(default_factory=dict)


def compile_tree(
    root: Path,
    *,
    display_root: str | None = None,
    today: datetime.date | None = None,
    strict: bool = False,
) -> Compiled:
    """Check every file below `root`; the diagnostics come sorted by file and position.

    Raises NotADirectoryError when `root` is not a folder: that is a usage error, not a
    finding about the flags.
    """
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of flag files")
    loaded = load_tree(root, display_root)
    validated = validate(loaded)
    # A flag whose file is broken is still known by its file name (see README: a broken file).
    known_keys = loaded.keys()
    diagnostics = validated.diagnostics
    diagnostics += check_references(validated.project, validated.flags, known_keys)
    grid = grid_of(validated.project) if validated.project is not None else None
    flags = {key: flag_file.flag for key, flag_file in validated.flags.items()}
    resolved = resolve(grid, flags) if grid is not None else {}
    today = today or datetime.date.today()
    diagnostics += check(grid, validated.flags, resolved, today, strict=strict)
    return Compiled(sorted(diagnostics), validated.project, grid, validated.flags, resolved)
