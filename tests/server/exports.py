"""Reading what `flagc export` wrote, shared by the export tests (tests/server/test_export.py)
and the export safety tests (tests/security/test_export_safety.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from compiler.cli import main as flagc
from compiler.commands.export import MANIFEST


def export(site: Path, out: Path, *options: str) -> int:
    """`flagc export SITE --from OUT OPTIONS`: its exit code."""
    return flagc(["export", str(site), "--from", str(out), *options])


def tree(site: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file below `site`."""
    return {
        path.relative_to(site).as_posix(): path.read_bytes()
        for path in sorted(site.rglob("*"))
        if path.is_file()
    }


def state(root: Path) -> object:
    """Everything below `root` (folders, hidden files, contents), or its bytes if it is a
    file: what a refused export must leave as it was."""
    if not root.is_dir():
        return root.read_bytes()
    found: dict[str, bytes | None] = {}
    for folder, names, files in os.walk(root):
        for name in names:
            found[Path(folder, name).relative_to(root).as_posix()] = None
        for name in files:
            found[Path(folder, name).relative_to(root).as_posix()] = Path(folder, name).read_bytes()
    return found


def manifest(site: Path) -> dict[str, Any]:
    """The export's manifest, parsed."""
    found: dict[str, Any] = orjson.loads((site / MANIFEST).read_bytes())
    return found
