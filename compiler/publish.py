"""The build directory OUT: each build one complete set of files, swapped in by one rename.

    OUT/.builds/<name>/snapshot.json, audit.json, flagd/<environment>.json   one whole build
    OUT/.current -> .builds/<name>           the build readers see: replaced by one rename
    OUT/snapshot.json -> .current/snapshot.json    the documented paths, for every reader
    OUT/audit.json -> .current/audit.json
    OUT/flagd -> .current/flagd

`publish` writes a build into a new directory under `.builds/`, flushes every file to disk,
and then replaces `.current` with one rename(2) of a new symbolic link: a reader, or a crash
at any instant, sees the previous complete build or the new one, never parts of both. The
links are relative, so OUT may be copied (`cp -R`), mounted or moved whole. The build it
replaced stays until the next run, since a server may still be reading it; anything else
under `.builds/` and every temporary file a killed run left (ours, and the
`.snapshot.json.*.tmp` of earlier versions) is removed by the next run, beside its
writing. An OUT written by an earlier version (plain files) is adopted first: its files
are hard-linked into a build directory, so that every documented path keeps showing that
build until the new one is swapped in. Runs into one OUT take turns (a lock that dies with
its process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core import layout
from core.regular import read_regular_file

# The documented paths (`core.layout`), named here too for the build that writes them;
# each is a link into .current.
SNAPSHOT = layout.SNAPSHOT
AUDIT = layout.AUDIT
FLAGD = layout.FLAGD
DOCUMENTED = layout.DOCUMENTED
BUILDS = ".builds"
CURRENT = ".current"
CACHE = ".incremental.json"  # compiler.incremental's, in a build directory
LOCK = ".lock"
_TEMPORARY = ".tmp"  # every temporary name in OUT ends so; a run removes those it finds


class OutputError(Exception):
    """OUT cannot take a build (the message says why); nothing was changed."""


def cache_path(out: Path) -> Path:
    """Where the cache of OUT's current build is (compiler.incremental's)."""
    return out / CURRENT / CACHE


def require_usable_out(out: Path) -> None:
    """OutputError when OUT could not take a build, before anything is compiled."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"the output {out} exists and is not a folder")
    for name in (SNAPSHOT, AUDIT):
        if (out / name).is_dir():
            raise OutputError(f"{out / name} is a folder; remove it or choose another -o")
    flagd = out / FLAGD
    if flagd.exists() and not flagd.is_dir():
        raise OutputError(f"{flagd} is not a folder; remove it or choose another -o")
    if flagd.is_dir() and not flagd.is_symlink():
        for path in flagd.glob("*.json"):
            if path.is_dir():
                raise OutputError(f"{path} is a folder; remove it or choose another -o")


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold OUT's lock: a second run waits for the first (the kernel drops the lock of a
    killed process, so a crash never leaves OUT locked). An OUT made here for a run that
    then published nothing is removed again."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
        if created and [path.name for path in out.iterdir()] == [LOCK]:
            (out / LOCK).unlink()
            out.rmdir()


def publish(
    out: Path,
    snapshot: bytes,
    audit: bytes | None,
    flagd: Mapping[str, bytes],
    cache: bytes | Callable[[], bytes | None] | None = None,
) -> Path:
    """Write one build into OUT and make it current in one rename; returns its directory.

    `audit` None keeps the current build's audit.json (hard-linked, not rewritten: it can be
    tens of megabytes). `cache`: what the next build may reuse (compiler.incremental), a
    hidden file of the build directory, so it is swapped in with what it describes; or a
    function that makes it, called while the outputs are being written. Call under
    `locked(out)`, after `require_usable_out`.

    Each file is written and flushed to disk in a thread of its own (at most 8 at once):
    the disk's flushes overlap, and so do making the cache and removing what earlier runs
    left (a 10,000-flag build's eight files, 34 MB: 95 ms one after the other on this
    machine's ext4, 65 ms at once)."""
    adopt_legacy(out)
    stale = _stale(out)  # removed beside the writing
    builds = out / BUILDS
    _folder(builds)
    directory = Path(tempfile.mkdtemp(prefix="build-", dir=builds))
    directory.chmod(0o755)
    (directory / FLAGD).mkdir()
    (directory / FLAGD).chmod(0o755)
    with ThreadPoolExecutor(max_workers=8) as pool:
        writes = [pool.submit(_write, directory / SNAPSHOT, snapshot)]
        writes += [pool.submit(_remove, path) for path in stale]
        if audit is None:
            _keep(out / AUDIT, directory / AUDIT)
        else:
            writes.append(pool.submit(_write, directory / AUDIT, audit))
        for environment, data in sorted(flagd.items()):
            writes.append(pool.submit(_write, directory / FLAGD / f"{environment}.json", data))
        _carry_over(out / FLAGD, directory / FLAGD)
        sealed = cache() if callable(cache) else cache
        if sealed is not None:
            writes.append(pool.submit(_write, directory / CACHE, sealed))
    for write in writes:
        write.result()  # the first error the writing met, raised here
    _sync(directory / FLAGD)
    _sync(directory)
    _sync(builds)
    _link_documented(out)  # before the swap: a new OUT's links dangle until .current exists
    _replace_link(out / CURRENT, f"{BUILDS}/{directory.name}")  # the one step that publishes
    _sync(out)
    return directory


def _carry_over(previous: Path, folder: Path) -> None:
    """Files someone put beside flagd's definitions (a README, say: anything but `*.json`
    and hidden names) go on into the new build; definitions of environments gone do not."""
    if not previous.is_dir():
        return
    for path in sorted(previous.iterdir()):
        if _foreign(path):
            _keep(path, folder / path.name)


def _foreign(path: Path) -> bool:
    """A plain file that is neither a definition nor a hidden (temporary) one."""
    own = path.suffix == ".json" or path.name.startswith(".")
    return not own and path.is_file() and not path.is_symlink()


def _stale(out: Path) -> list[Path]:
    """What killed runs left, for a run to remove: every build directory but the current
    one, and every temporary file or link in OUT."""
    current = _current_name(out)
    stale = sorted(out.glob(f".*{_TEMPORARY}"))
    builds = out / BUILDS
    if builds.is_dir() and not builds.is_symlink():
        stale += [path for path in sorted(builds.iterdir()) if path.name != current]
    return stale


def _current_name(out: Path) -> str | None:
    try:
        target = str((out / CURRENT).readlink())
    except OSError:
        return None
    parent, _, name = target.rpartition("/")
    return name if parent == BUILDS else None


def _remove(path: Path) -> None:
    """Remove a file, a link or a whole folder, never following a link out of OUT."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def adopt_legacy(out: Path) -> None:
    """Turn an OUT of plain files (an earlier flagc, or a build copied by hand) into the
    current build: its files are hard-linked (or copied) into a build directory, that is
    made current, and then each plain path is replaced by its link; each step leaves every
    documented path showing the same bytes as before."""
    plain = [name for name in DOCUMENTED if _is_plain(out / name)]
    if not plain:
        return
    builds = out / BUILDS
    _folder(builds)
    directory = Path(tempfile.mkdtemp(prefix="adopted-", dir=builds))
    directory.chmod(0o755)
    for name in (SNAPSHOT, AUDIT):
        if (out / name).is_file():
            _keep(out / name, directory / name)
    if (out / FLAGD).is_dir():
        _folder(directory / FLAGD)
        for path in sorted((out / FLAGD).glob("[!.]*.json")):
            if path.is_file():
                _keep(path, directory / FLAGD / path.name)
    _sync(directory)
    _replace_link(out / CURRENT, f"{BUILDS}/{directory.name}")
    _link_documented(out)
    _sync(out)


def _folder(path: Path) -> None:
    """A folder others can read (a server may run as another user), whatever the umask."""
    if not path.is_dir():
        path.mkdir()
        path.chmod(0o755)


def _is_plain(path: Path) -> bool:
    return path.exists() and not path.is_symlink()


def _link_documented(out: Path) -> None:
    """Each documented path a relative link into .current, each put in place by a rename
    (a plain flagd folder, which a link cannot replace in one step, is first moved into
    .builds/, where the next run removes it)."""
    for name in DOCUMENTED:
        path, target = out / name, f"{CURRENT}/{name}"
        if path.is_symlink() and str(path.readlink()) == target:
            continue
        if path.is_dir() and not path.is_symlink():
            _folder(out / BUILDS)
            path.rename(tempfile.mkdtemp(prefix=f"old-{name}-", dir=out / BUILDS))
        _replace_link(path, target)


def _replace_link(path: Path, target: str) -> None:
    """Point `path` at `target` with one rename of a new link over it."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}{_TEMPORARY}")
    temporary.symlink_to(target)
    try:
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _keep(source: Path, destination: Path) -> None:
    """`source` (links followed) at `destination`: hard-linked when possible, else copied."""
    real = source.resolve()
    try:
        os.link(real, destination)
    except FileNotFoundError:
        return  # nothing to keep: the build had no such file
    except OSError:
        _write(destination, read_regular_file(real))


def _write(path: Path, data: bytes) -> None:
    """A new file, flushed to disk (its directory is synced by the caller)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    os.fchmod(descriptor, 0o644)  # readable by a server running as another user, any umask
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _sync(directory: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
