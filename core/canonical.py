"""The canonical bytes of a document and the snapshot's digest, one definition for the
compiler that writes them and the server (and export) that check them.

Rules: canonical JSON is orjson's with sorted keys, no white space, UTF-8 and no final
newline (files add one). A snapshot's digest is SHA-256 of the canonical bytes of the
document without `digest` and `revision`, so it changes exactly when what a client is told
changes. The large `flags` part is serialized once and spliced in, never serialized or
copied twice (a snapshot may be hundreds of megabytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

# snapshot.json's `format`: 2 added variants, rules and rollouts; 3 lists in a row only the
# applications whose cell is not the environment's (core.rows)
SNAPSHOT_FORMAT = 3

_MARK = b'"@flags"'  # no name can hold '@', so this occurs nowhere else in a snapshot


def serialize(document: Mapping[str, Any] | list[Any]) -> bytes:
    """Canonical bytes: sorted keys, no white space, UTF-8, no final newline."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def digest_of(document: Mapping[str, Any]) -> str:
    """The digest a snapshot document should carry: a reader checks a file with it."""
    content = {k: v for k, v in document.items() if k not in ("digest", "revision")}
    return digest(content, [serialize(content["flags"])])


def digest(content: Mapping[str, Any], flags: Sequence[bytes | memoryview]) -> str:
    """`sha256:<hex>` of `content` (no digest, no revision) with its `flags` already
    serialized as the parts `flags`."""
    hashed = hashlib.sha256()
    for part in around_flags(content, flags):
        hashed.update(part)
    return f"sha256:{hashed.hexdigest()}"


def around_flags(
    document: Mapping[str, Any], flags: Sequence[bytes | memoryview]
) -> list[bytes | memoryview]:
    """The canonical bytes of `document` with `flags` already serialized (as parts), as
    parts to join or hash in turn."""
    marked = serialize({**document, "flags": orjson.Fragment(_MARK)})
    before, after = marked.split(b'"flags":' + _MARK, 1)
    return [before, b'"flags":', *flags, after]


# A value serialized as `marked(value)` is found again in the bytes by `unmarked`: orjson
# escapes every control character inside a string, so a NUL byte is only ever a mark.
_MARK_BYTE = b"\0"
_HOLE = orjson.Fragment(_MARK_BYTE)


def marked(value: Any) -> list[Any]:
    """`value` wrapped so that `unmarked` finds where it stands in one `serialize` call of
    a whole document (one call is what keeps a large document fast)."""
    return [_HOLE, value, _HOLE]


def unmarked(data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """The canonical bytes `data` would be with every `marked` value unwrapped, and where
    each of those values stands in them, in order."""
    # Each mark is `[\0,value,\0]`: the NULs are found with `find` and the bytes around
    # them joined as views of `data`, copied once (splitting and slicing copied them twice
    # more: 20 ms, now 11 ms, for a 17 MB snapshot).
    find = data.find
    at = find(_MARK_BYTE)
    if at < 0:
        return data, []
    view = memoryview(data)
    parts: list[memoryview] = []
    spans: list[tuple[int, int]] = []
    take, place = parts.append, spans.append
    start = removed = 0  # where the bytes still to take start; the bytes left out so far
    while at >= 0:
        end = find(_MARK_BYTE, at + 1)
        take(view[start : at - 1])
        take(view[at + 2 : end - 1])
        first = at - 1 - removed
        place((first, first + end - at - 3))
        removed += 6
        start = end + 2
        at = find(_MARK_BYTE, start)
    take(view[start:])
    return b"".join(parts), spans
