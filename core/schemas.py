"""Where the JSON Schemas of the file formats are (`schemas/`), and reading one.

Rule: in a checkout (or an editable install) the schemas sit beside the packages; an
installed wheel carries them as data files under the environment's share/ folder. Each
schema is read once per process.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

_SCHEMA_DIRS = (
    Path(__file__).resolve().parent.parent / "schemas",
    Path(sys.prefix) / "share" / "gitflags" / "schemas",
)
SCHEMA_DIR = next((d for d in _SCHEMA_DIRS if (d / "flag.schema.json").is_file()), _SCHEMA_DIRS[0])


@functools.cache
def schema_document(name: str) -> dict[str, Any]:
    """The parsed `schemas/<name>.schema.json` (flag, project, snapshot, audit, ...)."""
    with (SCHEMA_DIR / f"{name}.schema.json").open(encoding="utf-8") as stream:
        loaded: dict[str, Any] = json.load(stream)
    return loaded
