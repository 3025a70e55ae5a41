"""Response bodies computed once per snapshot: bytes, a strong ETag, and a gzip variant."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from typing import Any

from core.canonical import serialize

JSON = "application/json"
GZIP_AT_LEAST = 512  # smaller bodies gain nothing from compression


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes
    etag: str  # strong, quoted
    gzipped: bytes | None = None
    content_type: str = JSON

    @property
    def size(self) -> int:
        """The bytes it holds, plain and gzipped."""
        return len(self.data) + len(self.gzipped or b"")


def body(data: bytes, content_type: str = JSON, *, compress: bool = True) -> Body:
    """A body with its ETag and, when worth it and `compress`, its gzip variant (level 6,
    computed here, once, so that requests only pick one). A body made for one request is
    compressed only when that request accepts gzip: compressing costs more than making it."""
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    worth = compress and len(data) >= GZIP_AT_LEAST
    gzipped = gzip.compress(data, compresslevel=6, mtime=0) if worth else None
    return Body(data, etag, gzipped, content_type)


def json_body(document: Any, *, compress: bool = True) -> Body:
    """Canonical JSON (sorted keys, UTF-8, final newline), as the compiler writes it."""
    return body(serialize(document) + b"\n", compress=compress)
