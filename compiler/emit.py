"""Stage 5, emit: the checked flags -> the snapshot document, its bytes, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compiler.model import Flag
from compiler.resolve import Cell, Grid, Resolution
from compiler.validate import FlagFile

SNAPSHOT_FORMAT = 1


def snapshot(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    revision: str | None,
) -> dict[str, Any]:
    """The snapshot: every flag declared and resolved, plus revision and content digest.

    The digest covers everything but the revision, so it changes exactly when what a client
    would be told changes; without git the revision is derived from it.
    """
    dependents: dict[str, list[str]] = {key: [] for key in flags}
    for key in sorted(flags):
        for dependency in flags[key].flag.depends_on:
            dependents[dependency].append(key)
    document: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "environments": list(grid.environments),
        "applications": list(grid.applications),
        "flags": {
            key: _flag(flags[key], resolved[key], dependents[key], grid) for key in sorted(flags)
        },
    }
    digest = hashlib.sha256(serialize(document)).hexdigest()
    document["digest"] = f"sha256:{digest}"
    document["revision"] = revision or f"content-{digest[:12]}"
    return document


def _flag(
    flag_file: FlagFile, resolution: Resolution, dependents: list[str], grid: Grid
) -> dict[str, Any]:
    flag: Flag = flag_file.flag
    declared = flag.model_dump(exclude_defaults=True, exclude={"description", "owner", "enabled"})
    return {
        "key": flag_file.key,
        "file": flag_file.document.path,
        "description": flag.description,
        "owner": flag.owner,
        "tags": flag.tags,
        "expires": flag.expires,
        "enabled": flag.enabled,
        "environments": declared.get("environments", {}),
        "applications": declared.get("applications", {}),
        "depends_on": flag.depends_on,
        "dependents": dependents,
        "resolved": _resolved(resolution.cells, grid),
    }


def _resolved(cells: tuple[Cell, ...], grid: Grid) -> dict[str, Any]:
    width = grid.width
    return {
        environment: {
            **_cell(cells[row * width]),
            "applications": {
                application: _cell(cells[row * width + 1 + column])
                for column, application in enumerate(grid.applications)
            },
        }
        for row, environment in enumerate(grid.environments)
    }


def _cell(cell: Cell) -> dict[str, Any]:
    return {"value": cell.value, "source": cell.source}


def serialize(document: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, fixed separators, UTF-8, a final newline."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place:
    readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
