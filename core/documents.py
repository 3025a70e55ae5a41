"""The GET documents of a build: every answer flagserve gives on GET for one snapshot that
depends on nothing but the URL, each with the path a static site holds it at.

This is the one list of them: `flagc export` writes it as files, and a test fetches each
document's URL from a running server and compares the bytes. Each body comes from the code
the resources answer with (`Snapshot.flat_maps`, `core.flag_bodies` and `core.audit_bodies`),
so the bytes are the server's own by construction.

A static file cannot see a query string, so what the server reads from one has a path of
its own: the flat map of an application is at `.../applications/{app}/flags` (a route the
server has too), and the paginated lists are there as the server answers them with no
parameter (the first DEFAULT_LIMIT items) and, in full, as pages of `page_size` items at
`.../pages/{offset}.json`. Filters (`tag`, `owner`, `since`, `actor`, ...) are not there.
The answers to credentials limited to some environments, OFREP (POST) and the operational
endpoints (`/healthz`, `/readyz`, `/metrics`) are not documents of a build.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from core import audit_bodies as audit
from core import flag_bodies as flags
from core.bodies import Body
from core.keys import KEY_PATTERN
from core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from core.snapshot import Snapshot, SnapshotError

SUFFIX = ".json"


class Document(NamedTuple):
    path: str  # in the static site, relative: api/v1/flags/new-checkout.json
    url: str  # the server's URL (path and query string) that answers the same bytes
    body: Body


def documents(snapshot: Snapshot, page_size: int = MAX_LIMIT) -> Iterator[Document]:
    """Every GET document of `snapshot`, full lists cut in pages of `page_size` items.
    Checked before the first is made: ValueError for a page size the server would refuse,
    SnapshotError for a name that cannot be a path segment (flagc never writes one)."""
    if not 1 <= page_size <= MAX_LIMIT:
        raise ValueError(
            f"a page holds 1 to {MAX_LIMIT} items (the server's limit), not {page_size}"
        )
    _require_path_names(snapshot)
    return _all(snapshot, page_size)


def _all(snapshot: Snapshot, page_size: int) -> Iterator[Document]:
    yield _at("/api/v1/snapshot", snapshot.snapshot_body)
    yield from _environments(snapshot)
    yield from _flags(snapshot, page_size)
    yield from _audit(snapshot, page_size)


def _require_path_names(snapshot: Snapshot) -> None:
    """Names become path segments: one like `..` or `a/b` would write outside the site."""
    for kind, names in (
        ("environment", snapshot.environments),
        ("application", snapshot.applications),
        ("flag", list(snapshot.flags)),
    ):
        for name in names:
            if not KEY_PATTERN.fullmatch(name):
                raise SnapshotError(f"the {kind} name {name!r} cannot be part of a path")


def _at(url: str, body: Body) -> Document:
    """The document at the server's path with `.json` added."""
    return Document(url.removeprefix("/") + SUFFIX, url, body)


def _environments(snapshot: Snapshot) -> Iterator[Document]:
    flat_maps = snapshot.flat_maps
    for environment in snapshot.environments:
        base = f"/api/v1/environments/{environment}"
        yield _at(f"{base}/flags", flat_maps[environment, None])
        for application in snapshot.applications:
            yield _at(
                f"{base}/applications/{application}/flags", flat_maps[environment, application]
            )
        # flagd's definitions are served at a path that already ends in .json
        yield Document(
            f"{base}/flagd.json".removeprefix("/"),
            f"{base}/flagd.json",
            snapshot.flagd_definitions[environment],
        )


def _flags(snapshot: Snapshot, page_size: int) -> Iterator[Document]:
    yield _at("/api/v1/flags", flags.unfiltered_page(snapshot, Page(DEFAULT_LIMIT, 0)))
    for offset in _offsets(len(snapshot.flags), page_size):
        body = flags.unfiltered_page(snapshot, Page(page_size, offset))
        yield _page("/api/v1/flags", page_size, offset, body)
    for key in snapshot.flags:
        yield _at(f"/api/v1/flags/{key}", flags.detail(snapshot, key, snapshot.environments))


def _audit(snapshot: Snapshot, page_size: int) -> Iterator[Document]:
    # A flag deleted since has a log but no document of its own; a file in the history whose
    # name was never a valid key has none here (its entries are in the whole log).
    keys = [key for key in audit.logged_flags(snapshot) if KEY_PATTERN.fullmatch(key)]
    for url, flag in [("/api/v1/audit", None), *((f"/api/v1/flags/{k}/audit", k) for k in keys)]:
        yield _at(url, audit.unfiltered_page(snapshot, flag, Page(DEFAULT_LIMIT, 0)))
        for offset in _offsets(audit.entry_count(snapshot, flag), page_size):
            body = audit.unfiltered_page(snapshot, flag, Page(page_size, offset))
            yield _page(url, page_size, offset, body)


def _page(url: str, page_size: int, offset: int, body: Body) -> Document:
    """`url?limit=&offset=` at `{url}/pages/{offset}.json`."""
    path = f"{url.removeprefix('/')}/pages/{offset}{SUFFIX}"
    return Document(path, f"{url}?limit={page_size}&offset={offset}", body)


def _offsets(total: int, page_size: int) -> range:
    """The offset of every page, and one (empty) page when there is nothing: a client reads
    page 0 and learns the `total` from it."""
    return range(0, max(total, 1), page_size)
