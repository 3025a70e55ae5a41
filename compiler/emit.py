"""Stage 5, emit: the checked flags -> the snapshot document and its bytes (written into OUT,
with the audit log and flagd's files, as one build by `compiler.publish`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from compiler.validate import FlagFile
from core import graph
from core.canonical import (
    SNAPSHOT_FORMAT,
    around_flags,
    digest,
    marked,
    serialize,
    unmarked,
)
from core.model import Flag
from core.resolve import Grid, Resolution
from core.rows import Row, declared_fields, resolved_rows, steps
from core.schedule import scheduled

# The fields a flag's entry takes from the history (compiler.audit.flag_metadata)
HISTORY_FIELDS = ("created_at", "created_by", "updated_at", "updated_by", "updated_reason")
_NO_HISTORY = dict.fromkeys(HISTORY_FIELDS)


def snapshot(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
) -> dict[str, Any]:
    """The snapshot's content: every flag declared and resolved, its history's fields empty
    until `add_history` gives them (the history is read beside: compiler.build); `render`
    adds the digest and revision."""
    rows: dict[Row, dict[str, Any]] = {}  # identical rows are built once and shared
    dependents = graph.dependents({key: flag.flag.depends_on for key, flag in flags.items()})
    document: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "environments": list(grid.environments),
        "applications": list(grid.applications),
        "flags": {
            key: flag_entry(flags[key], resolved[key], dependents[key], grid, rows) | _NO_HISTORY
            for key in sorted(flags)
        },
    }
    return document


def add_history(content: dict[str, Any], history: Mapping[str, Mapping[str, Any]]) -> None:
    """Give the flags of `content` (a `snapshot`'s) their fields from `history`
    (`compiler.audit.flag_metadata`), replacing any given before: empty for a flag it does
    not name."""
    for key, entry in content["flags"].items():
        entry.update(history.get(key, _NO_HISTORY))


# The canonical bytes of a snapshot's flags object, as parts to join, and where each flag's
# entry stands in them
Flags = tuple[list[bytes | memoryview], dict[str, tuple[int, int]]]


class Rendered(NamedTuple):
    data: bytes
    digest: str
    revision: str
    spans: dict[str, tuple[int, int]]  # where each flag's entry stands in `data`


def render(content: Mapping[str, Any], revision: str | None) -> Rendered:
    """The snapshot's bytes, with `digest` and `revision` added.

    The digest is SHA-256 of the canonical bytes of everything but digest and revision, so
    it changes exactly when what a client would be told changes; without git the revision
    is derived from it. The large `flags` part is serialized once and reused, flag by flag
    (an entry given as bytes is taken as it is: an incremental build's), with where each
    entry stands in the bytes, for the next build to take them again.
    """
    flags, spans = flags_of(content["flags"])
    return _rendered(content, revision, flags, spans, digest(content, flags))


def rendering(
    content: Mapping[str, Any], revision: str | None, joined: Flags | None = None
) -> Callable[[], Rendered]:
    """`render`, its digest worked out in a thread while the caller goes on (hashlib lets
    go of the GIL; 10 ms for the 17.8 MB of a 10,000-flag snapshot): call what this returns
    for the result, as often as needed. For a caller with other work meanwhile (an
    incremental build's flagd files, which need only git's revision). `joined`: the flags'
    bytes as the caller has them already (an incremental build's, mostly the last one's)."""
    flags, spans = joined if joined is not None else flags_of(content["flags"])
    pool = ThreadPoolExecutor(max_workers=1)
    hashing = pool.submit(digest, content, flags)
    pool.shutdown(wait=False)  # its thread ends with the hashing

    @functools.cache
    def rendered() -> Rendered:
        return _rendered(content, revision, flags, spans, hashing.result())

    return rendered


def flags_of(given: Mapping[str, Any]) -> Flags:
    """The canonical bytes of the flags object, and where each entry stands in them, as a
    full build makes them (one serialization)."""
    flags, places = unmarked(serialize({key: marked(e) for key, e in given.items()}))
    return [flags], dict(zip(sorted(given), places, strict=True))


def _rendered(
    content: Mapping[str, Any],
    revision: str | None,
    flags: list[bytes | memoryview],
    spans: dict[str, tuple[int, int]],
    hashed: str,
) -> Rendered:
    revision = revision or f"content-{hashed[7:19]}"
    extra = {"digest": hashed, "revision": revision}
    parts = around_flags({**content, **extra}, flags)
    offset = len(parts[0]) + len(parts[1])
    spans = {key: (start + offset, end + offset) for key, (start, end) in spans.items()}
    return Rendered(b"".join([*parts, b"\n"]), hashed, revision, spans)


def flag_entry(
    flag_file: FlagFile,
    resolution: Resolution,
    dependents: list[str],
    grid: Grid,
    rows: dict[Row, dict[str, Any]],
) -> dict[str, Any]:
    """A flag's entry in the snapshot, but the history's fields."""
    flag: Flag = flag_file.flag
    declared: Any = flag_file.document.data  # valid, hence plain JSON-like data as written
    entry = {
        "key": flag_file.key,
        "file": flag_file.document.path,
        "description": flag.description,
        "owner": flag.owner,
        "tags": flag.tags,
        "expires": flag.expires,
        **declared_fields(flag),
        "rules": declared.get("rules", []),
        "environments": declared.get("environments", {}),
        "applications": declared.get("applications", {}),
        "depends_on": flag.depends_on,
        "dependents": dependents,
        "resolved": resolved_rows(flag_file.key, flag, resolution, grid, rows),
    }
    if scheduled(flag):  # only then: other entries are as they were before schedules
        entry["schedule"] = declared.get("schedule", [])
        entry["steps"] = steps(flag_file.key, flag, grid, rows)
    return entry
