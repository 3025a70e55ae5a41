"""`flagc export SITE [--from OUT]`: every document flagserve serves on GET for the build in
OUT, as static files in SITE at the same paths and with the same bytes, for any object store
or CDN to serve with no Python running; and SITE/index.json, the manifest.

Export replaces only the files of its own previous export (its manifest lists them) and
keeps every other file in SITE: a Pages checkout's `.git`, `CNAME`, `.nojekyll`, someone's
`README.md`. Where it cannot do that safely it refuses (exit 2) and changes nothing: a
folder with files but no manifest of ours (unless --into-nonempty), a file of someone
else's at a path the export writes, a symbolic link or special file on the way, a manifest
naming a path outside SITE.

The documents are written into a temporary folder inside SITE, then each is renamed into
place (a reader sees each file whole, old or new), the previous export's files that the
new one lacks are removed, and the manifest comes last. A run killed at any point leaves
that temporary folder, whose manifest tells the next run which files it may replace; the
next run finishes the job and removes it (and the folders the former whole-folder swap
left beside SITE).

A build whose flags have schedules serves, at each moment, what its steps say by then: the
documents are the build as it stands at the export's moment (now, or `--at`), and the
manifest's `valid_until` is its next step (null when none is ahead), when the site must be
exported again. The same build and moment give the same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pydantic

from compiler.commands import OK, Subcommands, UsageError
from core import canonical, model

# The documents are the server's own answers, computed by the code its resources look them
# up with, which lives below both (core/): no import of the server, nor of Falcon.
from core.documents import Document, documents
from core.paging import MAX_LIMIT
from core.regular import read_regular_file
from core.schedule import Moment, moment, utc_text
from core.snapshot import Snapshot, SnapshotError, load

MANIFEST = "index.json"
GENERATOR = "flagc export"  # how a previous export is recognized
FORMAT = 1
STAGING_PREFIX, STAGING_SUFFIX = ".flagc-export-", ".tmp"
# A temporary folder of this command inside SITE: mkdtemp's 8 characters between prefix and
# suffix. Only names of this exact shape are ever removed as leftovers.
STAGING = re.compile(re.escape(STAGING_PREFIX) + r"[a-z0-9_]{8}" + re.escape(STAGING_SUFFIX))


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "export",
        help="write every document flagserve serves on GET for a build as static files",
        description="Write every document flagserve serves on GET for the build in OUT into "
        "SITE, at the server's paths plus .json and with the same bytes, and SITE/index.json "
        "listing each with its ETag. Only the files of the previous export are replaced or "
        "removed; every other file in SITE is kept.",
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
    parser.add_argument(
        "--at", type=moment_argument, metavar="MOMENT",
        help="export the build as it stands at this RFC 3339 moment with its zone offset, "
        "e.g. 2027-01-11T09:00:00+01:00 (default: now): what its schedules' steps serve then",
    )  # fmt: skip
    parser.add_argument(
        "--into-nonempty", action="store_true",
        help="write into a folder that holds other files but no previous export (a Pages "
        "checkout with .git and CNAME); its files are kept, and none may be at a path the "
        "export writes",
    )  # fmt: skip
    parser.set_defaults(run=run)


_MOMENT: Final = pydantic.TypeAdapter(
    model.MomentText, config=pydantic.ConfigDict(regex_engine="python-re", strict=True)
)


def moment_argument(text: str) -> Moment:
    """An RFC 3339 moment with its zone offset, as a flag file's schedule writes one (the
    model's pattern and check), as whole seconds (core.schedule.moment)."""
    try:
        return moment(_MOMENT.validate_python(text))
    except pydantic.ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a moment: write it as 2027-01-11T09:00:00Z (RFC 3339, with its "
            "zone offset), between the years 1970 and 2999"
        ) from None


def run(args: argparse.Namespace) -> int:
    site: Path = args.site
    page_size: int = MAX_LIMIT if args.page_size is None else args.page_size
    at: Moment = int(time.time()) if args.at is None else args.at
    try:
        require_site_folder(site)
        # What the build serves at that moment; its answers are made as the documents ask.
        snapshot = load(args.out, answers=False).at(at)
        found = documents(snapshot, page_size)
        written = write_site(site, found, snapshot, page_size, into_nonempty=args.into_nonempty)
    except SnapshotError as exc:
        raise UsageError(f"cannot export the build in {args.out}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or site}: {exc.strerror or exc}") from None
    until = valid_until(snapshot)
    valid = "" if until is None else f" (valid until {until}, its next step)"
    print(
        f"flagc: exported {written} documents of revision {snapshot.revision} -> {site}/{valid}",
        file=sys.stderr,
    )
    return OK


def valid_until(snapshot: Snapshot) -> str | None:
    """The first step after the moment `snapshot` stands at (core.schedule.step_moments of
    the build's document), in UTC: when the export stops being what the build serves."""
    ahead = snapshot.next_step  # None too for a build without steps: valid until the next
    return None if ahead is None else utc_text(ahead)


def require_site_folder(site: Path) -> None:
    """SITE must be missing or a folder, itself and not a symbolic link to one."""
    if site.is_symlink():
        raise UsageError(f"{site} is a symbolic link; give the folder itself")
    if site.exists() and not site.is_dir():
        raise UsageError(f"{site} exists and is not a folder")


@dataclass(frozen=True)
class Previous:
    """What earlier runs left in SITE: the files they wrote (by their manifests, index.json
    included) and the temporary folders of runs that were killed."""

    paths: frozenset[str]
    leftovers: tuple[Path, ...]
    exported: bool  # a manifest of ours, in SITE or in a leftover: SITE is an export


@dataclass(frozen=True)
class Plan:
    """The new export's files to rename into place, and the previous one's to remove."""

    replace: list[str]
    remove: list[str]


def write_site(
    site: Path,
    found: Iterable[Document],
    snapshot: Snapshot,
    page_size: int,
    *,
    into_nonempty: bool = False,
) -> int:
    """Write the documents and the manifest into SITE, replacing only the files of the
    previous export (see the module's docstring); the number of documents written."""
    created = not site.exists()
    site.mkdir(parents=True, exist_ok=True)
    if created:
        site.chmod(0o755)  # for web servers to read, whatever the umask gave
    try:
        with _locked(site):
            return _export(site, found, snapshot, page_size, into_nonempty)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                site.rmdir()  # only while nothing is in it
        raise


def _export(
    site: Path, found: Iterable[Document], snapshot: Snapshot, page_size: int, into: bool
) -> int:
    previous = _previous(site)
    _require_no_foreign_files(site, previous, into)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=site))
    try:
        listed = _stage(staging, found, site, previous.paths)
        _write(staging, MANIFEST, manifest(snapshot, page_size, listed))
        plan = _plan(site, previous.paths, frozenset(listed))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # One sync for the whole tree (thousands of fsyncs would take long): the files are on
    # disk before a rename makes them part of the site.
    os.sync()
    # A failure from here on leaves `staging`: its manifest tells the next run which of the
    # files in SITE are ours, and that run finishes the job.
    _apply(site, staging, plan)
    shutil.rmtree(staging)
    for leftover in [*previous.leftovers, *_former_leftovers(site)]:
        shutil.rmtree(leftover, ignore_errors=True)
    return len(listed)


@contextlib.contextmanager
def _locked(site: Path) -> Iterator[None]:
    """One export at a time into SITE: a second one would take the first one's temporary
    folder for a killed run's. The lock is on the folder itself (no file of ours in SITE)
    and goes with the process, however it ends."""
    descriptor = os.open(site, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = f"another flagc export is writing {site}; try when it is done"
            raise UsageError(message) from None
        yield
    finally:
        os.close(descriptor)


def _previous(site: Path) -> Previous:
    """The files earlier runs wrote in SITE: the manifest's, and those of the manifests in
    killed runs' temporary folders (they may have renamed some into place)."""
    leftovers = tuple(
        entry
        for entry in site.iterdir()
        if STAGING.fullmatch(entry.name) and stat.S_ISDIR(entry.lstat().st_mode)
    )
    paths: set[str] = set()
    exported = False
    for folder in [site, *leftovers]:
        listed = _listed(folder / MANIFEST, site)
        if listed is not None:
            paths |= listed | {MANIFEST}
            exported = True
    return Previous(frozenset(paths), leftovers, exported)


def _listed(path: Path, site: Path) -> frozenset[str] | None:
    """The paths a manifest of ours at `path` lists; None when there is no such manifest.
    A manifest of ours naming a path that is not inside SITE is refused, never followed."""
    data = _read_regular(path)
    try:
        document = orjson.loads(data) if data is not None else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("generator") != GENERATOR:
        return None
    listed = document.get("documents")
    if not isinstance(listed, dict):
        raise UsageError(f"{path} has no documents list; remove {site}'s export by hand")
    for relative in listed:
        if not is_inside(relative):
            raise UsageError(
                f"{path} lists {relative!r}, which is not a path inside {site}; nothing was "
                "changed: remove that manifest, or the folder's export, by hand"
            )
    return frozenset(listed)


def is_inside(relative: str) -> bool:
    """Whether `relative` names a path below a folder: `a/b.json`, never absolute, `..`,
    `.`, an empty segment, a backslash or a NUL."""
    parts = relative.split("/")
    return all(part not in {"", ".", ".."} and not {"\\", "\0"} & set(part) for part in parts)


def _read_regular(path: Path) -> bytes | None:
    """The bytes of `path` when it is a regular file; None when it is missing or anything
    else (a symbolic link, a FIFO that would block the read, a folder)."""
    try:
        return read_regular_file(path, follow=False)
    except OSError:
        return None


def _require_no_foreign_files(site: Path, previous: Previous, into_nonempty: bool) -> None:
    """A folder that is neither empty nor an export holds someone's files: refused unless
    --into-nonempty says to write beside them."""
    if previous.exported or into_nonempty:
        return
    if any(entry not in previous.leftovers for entry in site.iterdir()):
        raise UsageError(
            f"{site} is neither empty nor a previous export (it has no {MANIFEST} written by "
            f"{GENERATOR}); choose another folder, or pass --into-nonempty to write beside "
            "its files"
        )


def _stage(
    staging: Path, found: Iterable[Document], site: Path, owned: frozenset[str]
) -> dict[str, dict[str, Any]]:
    """Write every document below `staging`; the manifest's entries. A document the
    previous export had with the same bytes keeps that file's modification time, so that
    sync tools (`aws s3 sync`, `gsutil rsync`) upload only what changed."""
    listed: dict[str, dict[str, Any]] = {}
    for document in found:
        path = _write(staging, document.path, document.body.data)
        owned_path = document.path in owned
        kept = _same_file(site / document.path, document.body.data) if owned_path else None
        if kept is not None:
            os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))
        listed[document.path] = {
            "url": document.url,
            "etag": document.body.etag,
            "size": len(document.body.data),
            "content_type": document.body.content_type,
        }
    return listed


def manifest(snapshot: Snapshot, page_size: int, listed: dict[str, dict[str, Any]]) -> bytes:
    """index.json: every document's path with the server URL it holds, our ETag (object
    stores and CDNs compute their own), size and content type; and until when the site is
    what the build serves (its next step, or null). Not the export's own time: exports at
    two moments between the same steps are the same bytes."""
    document = {
        "generator": GENERATOR,
        "format": FORMAT,
        "revision": snapshot.revision,
        "digest": snapshot.digest,
        "page_size": page_size,
        "valid_until": valid_until(snapshot),
        "documents": listed,
    }
    return canonical.serialize(document) + b"\n"


def _write(root: Path, relative: str, data: bytes) -> Path:
    """Write `data` at `root/relative`, readable by a web server; the file's path."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o644)
    return path


def _same_file(path: Path, data: bytes) -> os.stat_result | None:
    """The status of `path` when it is a regular file of exactly `data` (read only when
    the size matches; a link or special file never is), else None."""
    try:
        found = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size != len(data):
        return None
    return found if _read_regular(path) == data else None


def _plan(site: Path, owned: frozenset[str], listed: frozenset[str]) -> Plan:
    """What to rename into place and what to remove; UsageError, before anything changes,
    when a path the export writes holds what is not ours or the way to any path it touches
    goes through a symbolic link or a file."""
    problems: list[str] = []
    for relative in sorted(listed | {MANIFEST}):
        kind = _kind(site, relative)
        if kind not in {"missing", "file"}:
            problems.append(f"{site}/{relative} {kind}")
        elif kind == "file" and relative not in owned:
            problems.append(f"{site}/{relative} is not a file of the previous export")
    # A file of the previous export that the new one lacks is removed when it is still a
    # regular file reached through real folders; anything else there (gone, or a folder,
    # link or special file someone put in its place, or a link on the way) is kept.
    remove = [r for r in sorted(owned - listed - {MANIFEST}) if _kind(site, r) == "file"]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"cannot export: {problems[0]}{more}; nothing was changed")
    return Plan(sorted(listed), remove)


def _kind(site: Path, relative: str) -> str:
    """What is at `site/relative`, looked at without following links: "missing", "file"
    (regular), or why the export may not write or remove there."""
    path = site
    parts = relative.split("/")
    for index, part in enumerate(parts):
        path /= part
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return "missing"
        last = index == len(parts) - 1
        if stat.S_ISLNK(mode):
            return "is a symbolic link" if last else f"is on the way through the link {path}"
        if last:
            return _describe(mode)
        if not stat.S_ISDIR(mode):
            return "goes through a file"
    return "missing"  # unreachable: `relative` has at least one part


def _describe(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    return "is a folder" if stat.S_ISDIR(mode) else "is a special file"


def _apply(site: Path, staging: Path, plan: Plan) -> None:
    """Rename the new files into place, remove the previous export's others (and the
    folders that leaves empty), and put the manifest in place last."""
    for relative in plan.replace:
        target = site / relative
        _make_folders(site, target.parent)
        (staging / relative).replace(target)
    for relative in plan.remove:
        (site / relative).unlink(missing_ok=True)
        _prune(site, (site / relative).parent)
    (staging / MANIFEST).replace(site / MANIFEST)


def _make_folders(site: Path, folder: Path) -> None:
    """Create `folder` and the folders above it up to SITE, each readable by a web server
    (the folders that exist are left as they are)."""
    missing = []
    while folder != site and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir()
        created.chmod(0o755)


def _prune(site: Path, folder: Path) -> None:
    """Remove `folder` and those above it below SITE while they are empty (rmdir removes
    nothing else: a folder someone put a file in stays)."""
    while folder != site:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _former_leftovers(site: Path) -> list[Path]:
    """The folders earlier versions of this command left beside SITE when killed: the
    new site being written (`.SITE.xxxxxxxx.export`) or the old one moved aside (`.old`)."""
    shape = re.compile(re.escape(f".{site.resolve().name}.") + r"[a-z0-9_]{8}\.(export|old)")
    parent = site.resolve().parent
    return [
        entry
        for entry in parent.iterdir()
        if shape.fullmatch(entry.name) and stat.S_ISDIR(entry.lstat().st_mode)
    ]
