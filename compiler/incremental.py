"""Incremental builds: what the previous build in OUT knows, reused, keyed by content.

Every build that publishes writes a cache beside its outputs, in its own build directory
(`publish.cache_path`), so that the cache and the outputs it describes are swapped in
together: the git blob id of `_project.yaml` and of every flag file, the diagnostics of each file
(but `expired`, which depends on the day) and where each `expires` stands, every flag's
`depends_on`, where each flag's entry stands in the snapshot and in flagd's files, the
audit log's head, and the SHA-256 of every output. The next build (`compiler.build`) finds
each file's blob id (git's index vouches for clean files; the others are read and hashed,
`read_tree`); when only flag files changed, it compiles the changed flags with their
neighbours (`Plan`, `compile_part`) and takes everything else from the previous outputs
(`Previous`, `snapshot_content`, `flagd_files`), parsing only what it needs.

Rule: an incremental build writes the bytes a full build would write, or does not build
(the caller then builds in full). It does not build when the cache is missing or not
trusted (damaged, another format, made by another flagc or for another folder, an output
changed behind it: the caller says so), when `_project.yaml` changed, when a file is
anything but a regular flag file (a link, a bad name, too large, unreadable: the full
loader's words), when the history cannot simply be continued, when a changed flag has a
schedule (a build with one leaves no cache: `compiler.build`), or when the flags have an
error (a build with errors writes nothing, and the full build reports every finding).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from compiler import emit, load, publish
from compiler.dependencies import check_dependencies
from compiler.diagnostics import Diagnostic, Severity, has_errors
from compiler.expiry import check_expiry, expired
from compiler.git_log import STATUS, lists_yaml, parse_status
from compiler.pipeline import Compiled
from compiler.references import check_references
from compiler.validate import FlagFile, Validated, validate
from compiler.variants import check_variants
from core import flagd, graph, layout
from core.canonical import serialize
from core.keys import KEY_PATTERN
from core.regular import read_regular_file
from core.resolve import Grid, grid_of, resolve
from core.schedule import scheduled

CACHE_FORMAT = 1
_SEVERITIES = {severity.value: severity for severity in Severity}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def flagc_id() -> str:
    """What identifies this flagc: a hash of the compiler's and core's sources and of the
    schemas, so that a cache made by another version (or a modified checkout) is not used."""
    from core.schemas import SCHEMA_DIR  # noqa: PLC0415 - only a cache needs it

    hashed = hashlib.sha256()
    here = Path(__file__).resolve().parent
    sources = [*sorted(here.rglob("*.py")), *sorted((here.parent / "core").glob("*.py"))]
    for path in [*sources, *sorted(SCHEMA_DIR.glob("*.json"))]:
        hashed.update(path.name.encode() + b"\0" + path.read_bytes())
    return hashed.hexdigest()


# -- the cache ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cache:
    """What a published build knew about its input and outputs (see the module's rule)."""

    folder: str
    display_root: str
    project: str  # blob id of _project.yaml
    files: dict[str, str]  # flag file (path inside the folder) -> blob id
    diagnostics: dict[str, list[list[Any]]]  # file -> [line, column, severity, code, message]
    expires: dict[str, list[Any]]  # flag key -> [line, column, date] of its `expires`
    audit: dict[str, Any]  # head, complete, entries
    outputs: dict[str, str]  # documented path inside the build -> SHA-256 of its bytes
    # the snapshot's `head` (format, environments, applications), `revision`, `edges` (each
    # flag's depends_on) and `spans` (where each flag's entry stands in snapshot.json)
    snapshot: dict[str, Any]
    flagd: dict[str, dict[str, Any]]  # environment -> flag -> core.flagd.Span

    def to_bytes(self) -> bytes:
        body = serialize(
            {
                "format": CACHE_FORMAT,
                "flagc": flagc_id(),
                "folder": self.folder,
                "display_root": self.display_root,
                "project": self.project,
                "files": self.files,
                "diagnostics": self.diagnostics,
                "expires": self.expires,
                "audit": self.audit,
                "outputs": self.outputs,
                "snapshot": self.snapshot,
                "flagd": self.flagd,
            }
        )
        return _sha256(body).encode() + b"\n" + body + b"\n"


class Untrusted(Exception):
    """The previous build's cache is there but cannot be used; the message says why."""


def read_cache(out: Path, display_root: str) -> Cache | None:
    """The cache of OUT's current build, or None when OUT has none (a first build, or one
    made before caches). Raises Untrusted when there is one but it is damaged, of another
    format, made by another flagc, or for another display root (`same_project` tells the
    folder, once it is read)."""
    try:
        cache = _sealed(out)
    except FileNotFoundError:
        return None
    if cache.display_root != display_root:
        raise Untrusted("the previous build in OUT was made from another flags folder")
    return cache


def same_project(cache: Cache, tree: Tree) -> bool:
    """Whether `tree` has the `_project.yaml` of `cache`'s build (if not, the build is
    full); raises Untrusted when `cache` was made from another folder than `tree` was
    read from (as `folder_identity` names it)."""
    if cache.folder != tree.folder:
        raise Untrusted("the previous build in OUT was made from another flags folder")
    return load.blob_id(tree.project) == cache.project


def folder_identity(root: Path, asked: bytes | None = None) -> str:
    """What names a flags folder across builds: in git, the repository (its common git
    directory, the same for each of its work trees) and the folder's path inside a work
    tree; outside git, the folder's real path. git-sync checks each new commit out into a
    work tree of its own and swaps a link to it, so the real path of its flags folder
    changes with every commit while the repository and the path inside it do not; each
    build checks what it reuses against the files and the history (`plan`,
    `audit.continued`), so another work tree of the same repository is safe to continue.
    `asked`: `git rev-parse` of `_REV_PARSE`'s output, when already asked."""
    if asked is None:
        [asked] = git_answers(root, ("rev-parse", *_REV_PARSE))
    if asked is None:
        return "path:" + os.path.realpath(root)
    common, _, inside = asked.partition(b"\n")
    return "git:" + os.path.realpath(os.fsdecode(common)) + ":" + os.fsdecode(inside.strip())


# `git rev-parse`: the common git directory (absolute) and the folder's prefix, a line each
_REV_PARSE = ("--path-format=absolute", "--git-common-dir", "--show-prefix")


def _sealed(out: Path) -> Cache:
    """OUT's cache, whole and made by this flagc (for whatever folder), or Untrusted;
    FileNotFoundError without one."""
    try:
        raw = read_regular_file(publish.cache_path(out))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise Untrusted(f"the previous build's cache cannot be read ({exc})") from None
    checksum, _, body = raw.partition(b"\n")
    if not body.endswith(b"\n") or _sha256(body[:-1]).encode() != checksum:
        raise Untrusted("the previous build's cache is damaged")
    try:
        document = orjson.loads(body)
        cache = _cache_of(document)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise Untrusted("the previous build's cache is not of this flagc's format") from None
    if document["flagc"] != flagc_id():
        raise Untrusted("the previous build's cache was made by another version of flagc")
    return cache


def vouched_audit(out: Path) -> tuple[bytes, dict[str, Any]] | None:
    """OUT's audit log's file and its document, when the cache of OUT's build (whatever
    folder it was built from) has its SHA-256; else None."""
    try:
        cache = _sealed(out)
        data = read_regular_file(out / publish.CURRENT / layout.AUDIT)
        found = orjson.loads(data) if cache.outputs.get(layout.AUDIT) == _sha256(data) else None
    except (OSError, Untrusted, orjson.JSONDecodeError):
        return None
    return (data, found) if isinstance(found, dict) else None


def _cache_of(document: Any) -> Cache:
    if not isinstance(document, dict) or document.get("format") != CACHE_FORMAT:
        raise ValueError("another format")
    cache = Cache(**{name: document[name] for name in Cache.__slots__})
    shapes: list[tuple[Any, type]] = [
        (cache.folder, str),
        (cache.display_root, str),
        (cache.project, str),
        (cache.files, dict),
        (cache.diagnostics, dict),
        (cache.expires, dict),
        (cache.audit, dict),
        (cache.outputs, dict),
        (cache.snapshot, dict),
        (cache.flagd, dict),
    ]
    if not all(isinstance(value, kind) for value, kind in shapes):
        raise ValueError("another shape")
    return cache


# -- the folder as read -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tree:
    """The flags folder as found: `_project.yaml`'s bytes and every flag file's blob id,
    with the bytes of those read to know it (`read` reads the others when asked)."""

    root: Path
    project: bytes
    blobs: dict[str, str]  # path inside the folder -> git's blob id of its content
    files: dict[str, bytes]  # path inside the folder -> bytes, of the files read so far
    folder: str  # folder_identity
    # whether a YAML file differs from HEAD, as GitRepository.dirty says; None: not known
    dirty: bool | None = None
    # the commit `git status` compared the folder with (None: outside git, before the first
    # commit): the build's revision (with `dirty`) and its history are this commit's
    head: str | None = None

    def read(self, relative: str) -> bytes:
        """The bytes of a flag file, which must still be those its blob id names; raises
        OSError (or ValueError: too large, changed since) when they cannot be had."""
        found = self.files.get(relative)
        if found is None:
            found = _read(self.root / relative)
            if load.blob_id(found) != self.blobs[relative]:
                raise ValueError(f"{relative} changed while it was read")
            self.files[relative] = found
        return found


def read_tree(root: Path) -> Tree | None:
    """Every file the full loader would read, or None when one of them (or the folder)
    needs the full loader's words: a link, a bad name, unreadable, too large, no project.
    A file git's index holds and the work tree has unchanged (`_clean_blobs`) is not read:
    its blob id is the index's; every other file is read and hashed. git is asked in a
    thread while the folder is listed here (20-30 ms of a 10,000-flag folder's each)."""
    asked: list[tuple[str, dict[str, str], bool | None, str | None]] = []
    asking = threading.Thread(target=lambda: asked.append(_clean_blobs(root)))
    asking.start()
    try:
        entries, linked_out, unreadable = load.flag_files(root)
    finally:
        asking.join()  # what forks after (compiler.beside) wants no other thread
    if linked_out or unreadable or any(link for _, link in entries):
        return None
    if (root / load.PROJECT_FILE).is_symlink():
        return None
    [(folder, clean, dirty, head)] = asked
    relatives = [relative for relative, _ in entries]
    if not all(map(_FLAG_FILE.fullmatch, relatives)):
        return None
    files: dict[str, bytes] = {}

    def unclean(relative: str) -> str:
        data = files[relative] = _read(root / relative)
        return load.blob_id(data)

    try:
        project = _read(root / load.PROJECT_FILE)
        # one pass, in the listing's order: 10 -> 3 ms of 10,000 files, nearly all clean
        blobs = {relative: clean.get(relative) or unclean(relative) for relative in relatives}
    except (OSError, ValueError):
        return None
    return Tree(root, project, blobs, files, folder, dirty, head)


# A path (inside the folder) whose file's name is a flag's key (KEY_PATTERN) and `.yaml`.
_FLAG_FILE = re.compile(rf"(?:.*/)?{KEY_PATTERN.pattern}\.yaml", re.DOTALL)


def _clean_blobs(root: Path) -> tuple[str, dict[str, str], bool | None, str | None]:
    """The folder's identity (`folder_identity`), and the blob ids of the regular files
    below `root` that git's index holds and the work tree has as the index does (what `git
    status` does not list: not modified, not untracked, not ignored), by path inside
    `root`; none outside git, or without git. `git status` compares the content of a file
    whose stat data changed, so a clean file's content is the index's blob; a file git is
    told to assume unchanged or to skip is read. With them, whether `git status` lists a
    YAML file (GitRepository.dirty's rule, so that the build need not ask git again; None
    outside git), and the commit it compared with: told by the same process, so that a
    commit landing meanwhile never labels these files with a commit they are not."""
    answers = git_answers(
        root,
        ("rev-parse", *_REV_PARSE),
        ("ls-files", "--stage", "-v", "-z", "--", "."),
        (*STATUS, "--", "."),
    )
    asked = answers[0]
    folder = folder_identity(root, asked)
    if asked is None or answers[1] is None or answers[2] is None:
        return folder, {}, None, None
    prefix = os.fsdecode(asked.partition(b"\n")[2].strip())
    head, listed = parse_status(answers[2])
    changed = {os.fsdecode(path).removeprefix(prefix) for path in listed}
    found = {
        relative: blob.decode()
        for blob, path in _CHECKED_REGULAR.findall(answers[1])
        if (relative := os.fsdecode(path)) not in changed
    }
    return folder, found, lists_yaml(listed), head


# An entry of `git ls-files --stage -v -z` that git checks (`H`: not assumed unchanged, `h`,
# nor skipped, `S`), of a regular file's mode, at stage 0 (no merge conflict): its blob id
# and path. One pass over the whole listing: 10 ms -> 3 ms at 10,000 files.
_CHECKED_REGULAR = re.compile(rb"(?:^|\0)H (?:100644|100755) ([0-9a-f]+) 0\t([^\0]*)")


def git_answers(root: Path, *commands: tuple[str, ...]) -> list[bytes | None]:
    """The output of each git command run in `root`, all run at once (git status, the
    slowest, walks the folder while the others answer); None for one that fails or cannot
    run (outside git, without git, `root` gone)."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            processes.append(
                subprocess.Popen(
                    ["git", *command],
                    cwd=root,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            )
        answers: list[bytes | None] = []
        for process in processes:  # each drained in turn: none can block the others
            output, _ = process.communicate(timeout=60)
            answers.append(output if process.returncode == 0 else None)
        return answers
    except (OSError, subprocess.SubprocessError):
        return [None] * len(commands)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _read(path: Path) -> bytes:
    data = read_regular_file(path, load.MAX_FILE_BYTES + 1)
    if len(data) > load.MAX_FILE_BYTES:
        raise ValueError("too large")
    return data


# -- what changed -------------------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What an incremental build recompiles: the flags whose file changed (`changed`, by
    key, with `removed` those gone), their dependents and dependencies (`compile`: the
    flags loaded again, so that every check that reads a changed flag runs), and the edges
    of the whole tree after the change."""

    files: dict[str, str]  # key -> path inside the folder, every flag of the new tree
    edges: dict[str, list[str]]  # key -> depends_on, every flag of the new tree
    changed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    compile: set[str] = field(default_factory=set)
    _dependents: dict[str, list[str]] | None = None

    def dependents(self) -> dict[str, list[str]]:
        """Each flag's dependents, sorted (as the snapshot lists them); worked out once,
        when `edges` are those after the change."""
        if self._dependents is None:
            self._dependents = graph.dependents(self.edges)
        return self._dependents

    def reused(self) -> set[str]:
        """The flags not compiled again."""
        return self.files.keys() - self.compile

    def inlining(self) -> set[str]:
        """The changed flags and every flag that depends on one, directly or not: the flags
        whose flagd definition may differ."""
        reverse = self.dependents()
        found = set(self.changed)
        pending = list(found)
        while pending:
            for dependent in reverse.get(pending.pop(), []):
                if dependent not in found:
                    found.add(dependent)
                    pending.append(dependent)
        return found


def plan(cache: Cache, blobs: Mapping[str, str]) -> Plan | None:
    """The plan for the tree whose flag files have `blobs`, against the cache's build;
    None when keys repeat (two files, one key)."""
    files = {_key(relative): relative for relative in blobs}
    if len(files) < len(blobs):
        return None
    previous: dict[str, list[str]] = cache.snapshot["edges"]
    found = Plan(files, dict(previous))  # each list replaced when its flag changes, never changed
    # A flag changed unless its file is where it was (a path names one key), with the same
    # blob id, and the last build had the flag.
    was = cache.files.get
    differing = [relative for relative, blob in blobs.items() if was(relative) != blob]
    found.changed = {_key(relative) for relative in differing} | (files.keys() - previous)
    found.removed = set(previous) - set(files)
    for key in found.removed:
        del found.edges[key]
    return found


def _key(relative: str) -> str:
    """The key of the flag file at `relative` (a valid name: `read_tree`)."""
    return relative.rsplit("/", 1)[-1].removesuffix(".yaml")


def neighbours(plan: Plan, old_edges: Mapping[str, list[str]]) -> set[str]:
    """The flags to compile again: the changed ones, those that depend on a changed or
    removed flag (before or after the change), and the dependencies of all of these."""
    touched = plan.changed | plan.removed
    # after the change, only a changed flag's edges differ from before
    dependents = {key for key, needs in old_edges.items() if not touched.isdisjoint(needs)}
    dependents.update(
        key for key in plan.changed if not touched.isdisjoint(plan.edges.get(key, ()))
    )
    around = (plan.changed | dependents) & plan.edges.keys()
    for key in list(around):
        around.update(plan.edges[key])
    return around


def cyclic_through(plan: Plan) -> bool:
    """Whether a changed flag now needs itself: the only cycles a change can make (the
    previous build had none)."""
    for start in plan.changed:
        seen: set[str] = set()
        pending = list(plan.edges.get(start, []))
        while pending:
            key = pending.pop()
            if key == start:
                return True
            if key not in seen and key in plan.edges:
                seen.add(key)
                pending.extend(plan.edges[key])
    return False


# -- compiling what changed ---------------------------------------------------------------


@dataclass(slots=True)
class Part:
    """The flags compiled again, the project's grid, and every diagnostic of the tree."""

    compiled: Compiled
    grid: Grid


def compile_part(
    tree: Tree,
    plan: Plan,
    cache: Cache,
    *,
    display_root: str,
    today: datetime.date,
    strict: bool,
) -> Part | None:
    """Load, validate, resolve and check the changed flags with their neighbours
    (`neighbours`, which this sets as `plan.compile`), against the whole tree's keys and
    dependents; every other file's diagnostics come from the cache, `expired` worked out
    again for `today`. None when any error is found (the full build reports it)."""
    changed = _validated(tree, plan, plan.changed, display_root)
    if changed is None or any(scheduled(found.flag) for found in changed.flags.values()):
        return None  # a schedule is checked against every step, and the clock: in full
    before = dict(plan.edges)
    for key in plan.changed:
        plan.edges[key] = list(changed.flags[key].flag.depends_on)
    if plan.removed and plan.removed.intersection(k for deps in plan.edges.values() for k in deps):
        return None  # a dependency on a flag now gone: unknown-dependency
    if cyclic_through(plan):
        return None
    plan.compile = neighbours(plan, before)
    validated = _validated(tree, plan, plan.compile, display_root)
    if validated is None or validated.project is None:
        return None
    flags = validated.flags
    grid = grid_of(validated.project)
    diagnostics = validated.diagnostics
    diagnostics += check_references(validated.project, flags, set(plan.files))
    resolved = resolve(grid, {key: flag_file.flag for key, flag_file in flags.items()})
    diagnostics += check_dependencies(grid, flags, resolved)
    diagnostics += check_expiry(flags, today, strict=strict)
    diagnostics += check_variants(flags, plan.dependents())
    # the project was validated again too: its diagnostics are among those found here
    compiled_files = {plan.files[key] for key in plan.compile} | {load.PROJECT_FILE}
    diagnostics += _kept_diagnostics(cache, compiled_files, display_root)
    diagnostics += _expiring(cache, plan, display_root, today, strict)
    if has_errors(diagnostics):
        return None
    diagnostics.sort()
    project = validated.project_file
    return Part(Compiled(diagnostics, validated.project, grid, flags, resolved, project), grid)


def _validated(tree: Tree, plan: Plan, keys: set[str], display_root: str) -> Validated | None:
    """The flags `keys` (and the project) loaded and validated; None with any error."""
    try:
        chosen = {plan.files[key]: tree.read(plan.files[key]) for key in keys}
    except (OSError, ValueError):
        return None
    validated = validate(load.loaded_from(tree.project, chosen, display_root))
    if has_errors(validated.diagnostics) or validated.flags.keys() != keys:
        return None
    return validated


def _kept_diagnostics(cache: Cache, compiled: set[str], display_root: str) -> list[Diagnostic]:
    """The cached diagnostics of the files not compiled again (`_project.yaml`'s too)."""
    return [
        Diagnostic(
            load.display_path(display_root, relative), line, column, _SEVERITIES[sev], code, text
        )
        for relative, found in cache.diagnostics.items()
        if relative not in compiled
        for line, column, sev, code, text in found
    ]


def _expiring(
    cache: Cache, plan: Plan, display_root: str, today: datetime.date, strict: bool
) -> list[Diagnostic]:
    """`expired` for `today` of the flags not compiled again, from the cache's record of
    where each `expires` stands and its date."""
    severity = Severity.ERROR if strict else Severity.WARNING
    found = []
    for key, (line, column, expires) in cache.expires.items():
        if key in plan.files and key not in plan.compile:
            where = (load.display_path(display_root, plan.files[key]), line, column)
            diagnostic = expired(key, expires, where, today, severity)
            if diagnostic is not None:
                found.append(diagnostic)
    return found


# -- the previous build ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Previous:
    """The previous build's outputs, each checked against the SHA-256 its cache recorded
    (or held since this process published them, `Kept`): the snapshot's bytes, flagd's
    files, and the audit log's bytes when asked for (only a build with new commits needs
    them). Nothing is parsed but what is asked for."""

    out: Path
    cache: Cache
    snapshot: bytes
    flagd: dict[str, flagd.File]
    held: Kept | None = None

    @classmethod
    def read(cls, out: Path, cache: Cache) -> Previous:
        """Raises Untrusted when an output cannot be read or is not what was built."""
        return cls._of(out, cache, lambda name: _output(out, cache, name))

    @classmethod
    def of_kept(cls, kept: Kept) -> Previous:
        """The build `kept` holds, its outputs not read again."""
        return cls(kept.out, kept.cache, kept.outputs[layout.SNAPSHOT], kept.flagd, kept)

    @classmethod
    def _of(cls, out: Path, cache: Cache, output: Callable[[str], bytes]) -> Previous:
        snapshot = output(layout.SNAPSHOT)
        flagd_files = {}
        for environment, spans in cache.flagd.items():
            data = output(f"{layout.FLAGD}/{environment}.json")
            found = {key: (a, b, c, d) for key, (a, b, c, d) in spans.items()}
            flagd_files[environment] = flagd.File(data, found)
        return cls(out, cache, snapshot, flagd_files)

    def dependents(self) -> dict[str, list[str]]:
        """Each flag's dependents in this build (as held, or worked out from its edges)."""
        if self.held is not None and self.held.dependents is not None:
            return self.held.dependents
        return graph.dependents(self.cache.snapshot["edges"])

    def audit(self) -> bytes:
        if self.held is not None:
            return self.held.outputs[layout.AUDIT]
        return _output(self.out, self.cache, layout.AUDIT)

    def entry(self, key: str) -> memoryview:
        """The bytes of flag `key`'s entry in the snapshot (a view of them: not copied), an
        object after the key's name, or Untrusted (the cache's spans are not those of its
        snapshot)."""
        start, end = self.cache.snapshot["spans"][key]
        data = self.snapshot
        if self.held is not None:  # spans this process worked out for these bytes
            return memoryview(data)[start:end]
        name = b'"%s":' % key.encode()  # a key (KEY_PATTERN) needs no escape in JSON
        framed = data[start - len(name) : start] == name and data[end : end + 1] in (b",", b"}")
        if not (framed and data[start : start + 1] == b"{" and data[end - 1 : end] == b"}"):
            raise Untrusted("the previous build's snapshot.json is not what its cache says")
        return memoryview(data)[start:end]

    def flag(self, key: str) -> dict[str, Any]:
        """Flag `key`'s entry in the snapshot, parsed; Untrusted if it is no object."""
        try:
            found = orjson.loads(self.entry(key))
        except orjson.JSONDecodeError:
            found = None
        if not isinstance(found, dict) or found.get("key") != key:
            raise Untrusted("the previous build's snapshot.json is not what its cache says")
        return found


# A file's (st_ino, st_size, st_mtime_ns, st_ctime_ns): any write, rename over it, utime or
# chmod changes one of them (the kernel sets ctime; no call sets it back).
Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> Stamp:
    found = os.lstat(path)
    return (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class Kept:
    """A build as the process that published it holds it (a resident builder, `flagc
    watch`): its cache, its outputs' bytes, and the stamp of each of its files as written.
    The next build of that process takes them instead of reading and hashing OUT's files
    again (`current`), while OUT's current build is that one and every file of it is as it
    was written."""

    out: Path
    directory: str  # where OUT's `.current` link points
    cache: Cache
    outputs: dict[str, bytes]  # path inside the build -> bytes
    flagd: dict[str, flagd.File]  # environment -> its flagd file, with where each flag stands
    stamps: dict[str, Stamp]  # path inside the build (the cache's too) -> its stamp
    dependents: dict[str, list[str]] | None  # each flag's, when the build worked them out

    @classmethod
    def published(cls, out: Path, directory: Path, cache: Cache, written: Written) -> Kept:
        """What `publish.publish` just wrote into `directory`, OUT's current build."""
        outputs = written.outputs()
        stamps = {name: _stamp(directory / name) for name in [*outputs, publish.CACHE]}
        target = str((out / publish.CURRENT).readlink())
        return cls(out, target, cache, outputs, dict(written.flagd), stamps, written.dependents)

    def current(self, out: Path, display_root: str) -> bool:
        """Whether this is OUT's current build, every file as written, for `display_root`."""
        if out != self.out or display_root != self.cache.display_root:
            return False
        try:
            if str((out / publish.CURRENT).readlink()) != self.directory:
                return False
            directory = out / self.directory
            return all(_stamp(directory / name) == at for name, at in self.stamps.items())
        except OSError:
            return False


def _output(out: Path, cache: Cache, name: str) -> bytes:
    try:
        data = read_regular_file(out / publish.CURRENT / name)
    except OSError as exc:
        raise Untrusted(f"the previous build's {name} cannot be read ({exc})") from None
    if cache.outputs.get(name) != _sha256(data):
        raise Untrusted(f"the previous build's {name} is not what it wrote")
    return data


def settled(plan: Plan, cache: Cache, metadata: Mapping[str, Any] | None) -> bool:
    """Whether the history's fields of every flag are known: those of a flag the previous
    build did not have (a new file) only come from the new commits."""
    earlier = cache.snapshot["edges"]
    return all(key in earlier or key in (metadata or {}) for key in plan.changed)


def earlier_metadata(previous: Previous, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The history's fields the previous snapshot gave the flags `keys` it had, for those
    whose history it knew (as `compiler.audit.flag_metadata` of the older log)."""
    found = {}
    for key in keys:
        if key in previous.cache.snapshot["edges"]:
            flag = previous.flag(key)
            if flag["updated_at"] is not None:
                found[key] = {name: flag[name] for name in emit.HISTORY_FIELDS}
    return found


class Entries(Mapping[str, Mapping[str, Any]]):
    """The new snapshot's flags: each either made again (a dict in `made`) or taken from
    the previous snapshot (None there), parsed only when asked for (flagd's files ask for
    few)."""

    def __init__(self, previous: Previous, keys: Iterable[str]) -> None:
        self.previous = previous
        # in key order, as every file lists them: sorting them again is then quick (flagd's
        # five sorts of 10,000 keys took 5 ms in the folder's order)
        self.made: dict[str, dict[str, Any] | None] = dict.fromkeys(sorted(keys))
        self._parsed: dict[str, dict[str, Any]] = {}

    def __getitem__(self, key: str) -> dict[str, Any]:
        made = self.made[key]
        if made is not None:
            return made
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = self.previous.flag(key)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.made)

    def __contains__(self, key: object) -> bool:
        return key in self.made  # without parsing the entry, as Mapping's would

    def __len__(self) -> int:
        return len(self.made)

    def remake(self, key: str) -> dict[str, Any]:
        """Flag `key`'s entry as a dict to change (the previous one, parsed)."""
        found = self[key]
        self.made[key] = found
        return found

    def joined(self) -> emit.Flags:
        """The canonical bytes of the flags object, as parts to join, and where each entry
        stands in them (as `emit.render` gives them). Entries taken that stood side by side
        in the previous snapshot are taken as one view of its bytes, names and commas
        included, and the others serialized: a one-flag edit leaves a few views, where
        joining each entry's was 10,000 parts. Each view's ends are checked against the
        cache's spans (`Previous.entry`: Untrusted if they are not framed so)."""
        joining = _Joining(self.previous)
        for key, made in sorted(self.made.items()):
            if made is None:
                joining.take(key)
            else:
                joining.add(key, serialize(made))
        return joining.close()


class _Joining:
    """`Entries.joined` under way: the parts so far, the spans, where the next member
    starts, and the run being taken from the previous snapshot (`source[first:last]`, its
    entries moved by `shift`, the last of them `ending`; "" when there is none)."""

    def __init__(self, previous: Previous) -> None:
        self.previous = previous
        self.source = memoryview(previous.snapshot)
        self.old: dict[str, list[int]] = previous.cache.snapshot["spans"]
        self.parts: list[bytes | memoryview] = [b"{"]
        self.spans: dict[str, tuple[int, int]] = {}
        self.at = 1  # after "{" or a comma
        self.first = self.last = self.shift = 0
        self.ending = ""

    def take(self, key: str) -> None:
        """The previous entry of `key`: the run goes on if it stood right after the run's
        last entry there (`,"key":` between them, a key needing no escape), else a new one
        starts, its start framed as the cache says."""
        start, end = self.old[key]
        if not (self.ending and start == self.last + len(key) + 4):
            self._end_run()
            self.previous.entry(key)
            self.first = start - len(key) - 3  # at the key's name
            self.shift = self.at - self.first
        self.last, self.ending = end, key
        self.spans[key] = (start + self.shift, end + self.shift)

    def add(self, key: str, data: bytes) -> None:
        """An entry made again, serialized as `data`."""
        self._end_run()
        name = orjson.dumps(key)
        self.spans[key] = (self.at + len(name) + 1, self.at + len(name) + 1 + len(data))
        self.parts += (name, b":", data, b",")
        self.at += len(name) + len(data) + 2

    def close(self) -> emit.Flags:
        self._end_run()
        self.parts[-1] = b"}" if len(self.parts) > 1 else b"{}"  # the last comma, or none
        return self.parts, self.spans

    def _end_run(self) -> None:
        """The run taken so far, if any, with a comma after it, its end framed as the cache
        says."""
        if not self.ending:
            return
        self.previous.entry(self.ending)
        self.parts += (self.source[self.first : self.last], b",")
        self.at += self.last - self.first + 1
        self.ending = ""


def snapshot_content(
    previous: Previous, part: Part, plan: Plan, metadata: Mapping[str, Mapping[str, Any]] | None
) -> tuple[dict[str, Any], Entries]:
    """The snapshot's content (as `emit.snapshot` makes it, its flags as `Entries`): the
    changed flags made again, the flags whose `dependents` changed or whose history moved
    on (`metadata`) changed, every other entry the previous one's bytes."""
    entries = Entries(previous, plan.files)
    dependents = plan.dependents()
    before = previous.dependents()
    compiled = part.compiled
    rows: dict[Any, dict[str, Any]] = {}
    for key in plan.changed:
        history = dict.fromkeys(emit.HISTORY_FIELDS)
        if key in before:  # the flag was there: its history as the snapshot had it
            history = {name: previous.flag(key)[name] for name in emit.HISTORY_FIELDS}
        flag_file, resolution = compiled.flags[key], compiled.resolved[key]
        made = emit.flag_entry(flag_file, resolution, dependents[key], part.grid, rows)
        entries.made[key] = {**made, **history}
    for key in plan.files.keys() - plan.changed:
        if dependents[key] != before.get(key):
            entries.remake(key)["dependents"] = dependents[key]
    for key, fields in (metadata or {}).items():
        if key in entries:
            entries.remake(key).update(fields)
    content = {**previous.cache.snapshot["head"], "flags": entries}
    return content, entries


def flagd_files(
    previous: Previous, content: Mapping[str, Any], entries: Entries, revision: str, plan: Plan
) -> dict[str, flagd.File]:
    """flagd's files for the snapshot of `content` at `revision` from the previous build's,
    only the flags whose definition may differ made again."""
    inlining = plan.inlining()
    document = {**content, "revision": revision}
    before = previous.cache.snapshot["revision"]
    return {
        environment: flagd.refreshed(
            previous.flagd[environment], before, document, environment, inlining
        )
        for environment in content["environments"]
    }


@dataclass(frozen=True, slots=True)
class Written:
    """What a build writes, as its cache records it: the snapshot (with where each flag's
    entry stands), its `head` (all but flags, digest and revision), each flag's
    `depends_on`, flagd's files and the audit log's bytes."""

    snapshot: emit.Rendered
    head: dict[str, Any]
    edges: dict[str, list[str]]
    flagd: dict[str, flagd.File]
    audit: bytes
    dependents: dict[str, list[str]] | None = None  # each flag's, when worked out already

    def outputs(self) -> dict[str, bytes]:
        """The outputs by their path inside a build."""
        return {
            layout.SNAPSHOT: self.snapshot.data,
            layout.AUDIT: self.audit,
            **{f"{layout.FLAGD}/{env}.json": file.data for env, file in self.flagd.items()},
        }


def cache_of(
    folder: str,
    display_root: str,
    project: str,
    blobs: Mapping[str, str],
    diagnostics: Iterable[Diagnostic],
    expires: Mapping[str, list[Any]],
    audit: Mapping[str, Any],
    written: Written,
) -> Cache | None:
    """The cache of a build about to be published (None if a diagnostic names no file of
    the tree, which the cache could not give back): `project` and `blobs` the blob ids of
    `_project.yaml` and of each flag file, `expires` where each flag's `expires` stands
    (`expires_of`), `audit` the log's head, completeness and number of entries; `folder`
    the flags folder's `folder_identity`."""
    by_file: dict[str, list[list[Any]]] = {}
    shown: dict[str, str] = {}
    for found in diagnostics:
        if found.code != "expired":
            if not shown:  # made for the first finding only: most builds have none
                shown = {load.display_path(display_root, relative): relative for relative in blobs}
                shown[load.display_path(display_root, load.PROJECT_FILE)] = load.PROJECT_FILE
            kept = [found.line, found.column, found.severity.value, found.code, found.message]
            # a finding about no file of the tree (none is known) would be lost: no cache
            by_file.setdefault(shown.get(found.file, ""), []).append(kept)
    if "" in by_file:
        return None
    snapshot = {
        "head": written.head,
        "revision": written.snapshot.revision,
        "edges": written.edges,
        "spans": written.snapshot.spans,
    }
    return Cache(
        folder,
        display_root,
        project,
        dict(blobs),
        by_file,
        dict(expires),
        dict(audit),
        _hashes(written.outputs()),
        snapshot,
        {env: dict(file.spans) for env, file in written.flagd.items()},
    )


def _hashes(outputs: Mapping[str, bytes]) -> dict[str, str]:
    """The SHA-256 of each output, two at once (hashlib lets go of the GIL): 20 -> 11 ms
    for a 10,000-flag build's 34 MB on two cores."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(outputs, pool.map(_sha256, outputs.values()), strict=True))


def expires_of(flags: Mapping[str, FlagFile]) -> dict[str, list[Any]]:
    """Where each flag's `expires` stands and its date: [line, column, date]."""
    found: dict[str, list[Any]] = {}
    for key, flag_file in flags.items():
        if flag_file.flag.expires is not None:
            line, column = flag_file.document.source.locate(("expires",))
            found[key] = [line, column, flag_file.flag.expires]
    return found
