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
from collections.abc import Mapping
from typing import Any

import orjson

# snapshot.json's `format`: 2 added variants, rules and rollouts; 3 lists in a row only the
# applications whose cell is not the environment's (core.rows)
SNAPSHOT_FORMAT = 3

_MARK = b'"@flags"'  # no name can hold '@', so this occurs nowhere else in a snapshot


def serialize(document: Mapping[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, no white space, UTF-8, no final newline."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def digest_of(document: Mapping[str, Any]) -> str:
    """The digest a snapshot document should carry: a reader checks a file with it."""
    content = {k: v for k, v in document.items() if k not in ("digest", "revision")}
    return digest(content, serialize(content["flags"]))


def digest(content: Mapping[str, Any], flags: bytes) -> str:
    """`sha256:<hex>` of `content` (no digest, no revision) with its `flags` already
    serialized as `flags`."""
    hashed = hashlib.sha256()
    for part in around_flags(content, flags):
        hashed.update(part)
    return f"sha256:{hashed.hexdigest()}"


def around_flags(document: Mapping[str, Any], flags: bytes) -> list[bytes]:
    """The canonical bytes of `document` with `flags` already serialized, as parts to join
    or hash in turn."""
    marked = serialize({**document, "flags": orjson.Fragment(_MARK)})
    before, after = marked.split(b'"flags":' + _MARK, 1)
    return [before, b'"flags":', flags, after]


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
    pieces = data.split(_MARK_BYTE)
    last = len(pieces) - 1
    if not last:
        return data, []
    parts = [pieces[0][:-1]]  # up to the `[` of the first mark
    offset = len(parts[0])
    spans = []
    for index in range(1, last, 2):
        value = pieces[index][1:-1]  # `,value,` between the marks
        after = pieces[index + 1][1:] if index + 1 == last else pieces[index + 1][1:-1]
        spans.append((offset, offset + len(value)))
        parts += [value, after]
        offset += len(value) + len(after)
    return b"".join(parts), spans
