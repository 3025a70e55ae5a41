"""`flagc export SITE [--from OUT]`: every document flagserve serves on GET for the build in
OUT, as static files in SITE at the same paths and with the same bytes, for any object store
or CDN to serve with no Python running; and SITE/index.json, the manifest.

The site is written into a temporary folder beside SITE and renamed into place, so a reader
sees the previous export or the new one, never a mix. SITE may be missing, empty or a
previous export (it has our manifest); anything else is refused rather than replaced.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from compiler import emit
from compiler.commands import OK, Subcommands, UsageError

if TYPE_CHECKING:
    from server.documents import Document
    from server.store import Snapshot

MANIFEST = "index.json"
GENERATOR = "flagc export"  # how a previous export is recognized
FORMAT = 1


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "export",
        help="write every document flagserve serves on GET for a build as static files",
        description="Write every document flagserve serves on GET for the build in OUT into "
        "SITE, at the server's paths plus .json and with the same bytes, and SITE/index.json "
        "listing each with its ETag. SITE is replaced as a whole.",
    )
    parser.add_argument("site", type=Path, metavar="SITE", help="the folder to write")
    parser.add_argument(
        "--from", dest="out", type=Path, default=Path("build"), metavar="OUT",
        help="the build to export, as flagc build wrote it (default: build)",
    )  # fmt: skip
    parser.add_argument(
        "--page-size", type=int, metavar="N",
        help="items per page of the full lists: 1 up to the server's largest page (the default)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The one command that needs the server package: the documents are the server's own
    # answers, computed by its code (imported here, so other commands start without Falcon).
    from server.documents import documents  # noqa: PLC0415
    from server.respond import MAX_LIMIT  # noqa: PLC0415
    from server.store import SnapshotError, load  # noqa: PLC0415

    site: Path = args.site
    page_size: int = MAX_LIMIT if args.page_size is None else args.page_size
    try:
        check_site(site)
        snapshot = load(args.out)
        written = write_site(site, documents(snapshot, page_size), snapshot, page_size)
    except SnapshotError as exc:
        raise UsageError(f"cannot export the build in {args.out}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or site}: {exc.strerror or exc}") from None
    print(
        f"flagc: exported {written} documents of revision {snapshot.revision} -> {site}/",
        file=sys.stderr,
    )
    return OK


def check_site(site: Path) -> None:
    """SITE must be missing, an empty folder or a previous export: never someone's files."""
    if site.is_symlink():
        raise UsageError(f"{site} is a symbolic link; give the folder itself")
    if not site.exists():
        return
    if not site.is_dir():
        raise UsageError(f"{site} exists and is not a folder")
    if any(site.iterdir()) and not is_export(site):
        raise UsageError(
            f"{site} is neither empty nor a previous export (it has no {MANIFEST} written by "
            f"{GENERATOR}); remove it or choose another folder"
        )


def is_export(site: Path) -> bool:
    """Whether `site` holds a manifest this command wrote."""
    try:
        manifest = orjson.loads((site / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == GENERATOR


def write_site(site: Path, found: Iterable[Document], snapshot: Snapshot, page_size: int) -> int:
    """Write the documents and the manifest into a new folder beside SITE, then swap it in;
    the number of documents written."""
    site = site.resolve()  # a name to put the temporary folder beside, even for "."
    previous = site if site.is_dir() else None
    site.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{site.name}.", suffix=".export", dir=site.parent))
    try:
        listed: dict[str, dict[str, Any]] = {}
        for document in found:
            _write(staging, document.path, document.body.data, previous)
            listed[document.path] = {
                "url": document.url,
                "etag": document.body.etag,
                "size": len(document.body.data),
                "content_type": document.body.content_type,
            }
        _write(staging, MANIFEST, manifest(snapshot, page_size, listed), previous)
        for folder in [staging, *(path for path in staging.rglob("*") if path.is_dir())]:
            folder.chmod(0o755)  # for web servers to read, whatever mkdtemp and the umask gave
        # One sync for the whole tree (thousands of fsyncs would take long): the files are on
        # disk before the rename makes them the site.
        os.sync()
        _swap(staging, site)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(listed)


def manifest(snapshot: Snapshot, page_size: int, listed: dict[str, dict[str, Any]]) -> bytes:
    """index.json: every document's path with the server URL it holds, our ETag (object
    stores and CDNs compute their own), size and content type."""
    document = {
        "generator": GENERATOR,
        "format": FORMAT,
        "revision": snapshot.revision,
        "digest": snapshot.digest,
        "page_size": page_size,
        "documents": listed,
    }
    return emit.serialize(document) + b"\n"


def _write(root: Path, relative: str, data: bytes, previous: Path | None) -> None:
    """Write `data` at `root/relative`; a file the previous export (`previous`) had with the
    same bytes keeps its modification time, so that sync tools (`aws s3 sync`, `gsutil
    rsync`) upload only what changed."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o644)
    old = previous / relative if previous is not None else None
    if old is not None and _holds(old, data):
        kept = old.stat()
        os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))


def _holds(path: Path, data: bytes) -> bool:
    """Whether `path` is a file of exactly `data` (read only when the size matches)."""
    return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data


def _swap(staging: Path, site: Path) -> None:
    """Put `staging` where `site` is. A missing or empty SITE is replaced by one rename; a
    previous export is moved aside first (for that moment SITE is absent, never partial)
    and removed once the new one is in place."""
    if not site.exists() or not any(site.iterdir()):
        staging.replace(site)  # rename(2) replaces an empty folder
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{site.name}.", suffix=".old", dir=site.parent))
    site.replace(retired)
    try:
        staging.replace(site)
    except OSError:
        retired.replace(site)  # the previous export stays
        raise
    shutil.rmtree(retired, ignore_errors=True)
