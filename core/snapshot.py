"""Reading a build: one directory's snapshot, audit log and flagd files, verified together.

A `Snapshot` is one build (OUT/snapshot.json, OUT/audit.json and OUT/flagd/, read from one
directory), verified (`core.verify`) and turned into response bodies once. `load` refuses
(SnapshotError) a missing, partial, unparsable, invalid or inconsistent build, or one
holding a FIFO or a device where a file should be. The server's `Store` holds the current
one and swaps in a new one on a good reload; `flagc export` writes one's documents.
"""

from __future__ import annotations

import bisect
import collections
import datetime
import errno
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import orjson

from core import flagd, schedule, verify
from core.bodies import Body, body, json_body
from core.evaluate import Evaluator
from core.layout import AUDIT, FLAGD, SNAPSHOT
from core.process import collector_paused
from core.regular import NotRegularFile, read_regular_file
from core.rows import expanded


class SnapshotError(Exception):
    """A build that cannot be served: the message says why."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One checked build and what the server answers from it, as it stands at `moment`.

    A build whose flags have schedules (`core.schedule`) changes what it serves at each
    step without a new build: `document` is then the build's snapshot as of `moment`
    (`core.schedule.view`), `built` the build's own document with its steps, and `at`
    gives the same build at another moment. Everything that reads `resolved` (flat maps,
    evaluation, OFREP) serves the moment; flagd's files and the snapshot's bytes are the
    build's, which carry the steps themselves."""

    document: dict[str, Any]
    raw: bytes
    entries: list[dict[str, Any]]
    audit_complete: bool
    loaded_at: float  # time.time() when it was loaded
    built: dict[str, Any] | None = None  # the build's document, when `document` is a view
    moment: int | None = None  # the moment `document` stands at; None: the build has no steps

    @property
    def source(self) -> dict[str, Any]:
        """The build's document, steps and all (`document` itself without steps)."""
        return self.document if self.built is None else self.built

    @functools.cached_property
    def step_moments(self) -> tuple[int, ...]:
        """Every moment at which something this build serves changes, in order."""
        return tuple(schedule.step_moments(self.source))

    @property
    def next_step(self) -> int | None:
        """The first step after `moment` (Unix seconds), or None."""
        if self.moment is None:
            return None
        index = bisect.bisect_right(self.step_moments, self.moment)
        return self.step_moments[index] if index < len(self.step_moments) else None

    def at(self, moment: int) -> Snapshot:
        """This build as it stands at `moment` (Unix seconds); itself without steps. The
        view shares the build's flagd files and bodies that do not change with time."""
        if not self.step_moments:
            return self
        view = Snapshot(
            schedule.view(self.source, moment),
            self.raw,
            self.entries,
            self.audit_complete,
            self.loaded_at,
            self.source,
            moment,
        )
        for name in _TIMELESS:  # made once per build, not per step
            if name in self.__dict__:
                view.__dict__[name] = self.__dict__[name]
        return view

    def precompute(self, *, answers: bool = True) -> Snapshot:
        """Itself, with flagd's files made, and with `answers` the answers every request
        looks up (the evaluator, the flat maps, the definition tags): off the request path,
        when a build loads and before a step's moment (server.store)."""
        _ = self.flagd_definitions
        if answers:
            _ = self.evaluator, self.flat_maps, self.definition_tags
        return self

    @property
    def revision(self) -> str:
        return str(self.document["revision"])

    @property
    def digest(self) -> str:
        return str(self.document["digest"])

    @functools.cached_property
    def environments(self) -> tuple[str, ...]:
        """Made once (requests look names up in it), a tuple, so no caller can change it."""
        return tuple(self.document["environments"])

    @functools.cached_property
    def applications(self) -> tuple[str, ...]:
        return tuple(self.document["applications"])

    @property
    def flags(self) -> dict[str, dict[str, Any]]:
        flags: dict[str, dict[str, Any]] = self.document["flags"]
        return flags

    @functools.cached_property
    def keys(self) -> list[str]:
        """The flag keys, sorted."""
        return sorted(self.flags)

    @functools.cached_property
    def tags(self) -> list[str]:
        """Every tag some flag has, sorted (what list filters can name)."""
        return sorted({tag for flag in self.flags.values() for tag in flag["tags"]})

    @functools.cached_property
    def owners(self) -> list[str]:
        """Every owner, sorted."""
        return sorted({flag["owner"] for flag in self.flags.values()})

    @functools.cached_property
    def actors(self) -> list[str]:
        """Everyone the audit log names as an author, sorted."""
        return sorted({entry["author"]["name"] for entry in self.entries})

    @functools.cached_property
    def snapshot_body(self) -> Body:
        return body(self.raw)

    @functools.cached_property
    def flat_maps(self) -> dict[tuple[str, str | None], Body]:
        """The hot path, `{flag: bool}` per environment and application, all precomputed."""
        maps = {}
        for environment in self.environments:
            rows = [(key, flag["resolved"][environment]) for key, flag in self.flags.items()]
            for application in [None, *self.applications]:
                flat = self._flat(environment, application, rows)
                maps[environment, application] = json_body(flat)
        return maps

    @functools.cached_property
    def evaluator(self) -> Evaluator:
        """The flags compiled for evaluation in a context (`core.evaluate`)."""
        return Evaluator(self.document)

    def evaluated_flat(
        self,
        environment: str,
        application: str | None,
        context: Mapping[str, Any],
        *,
        compress: bool = True,
    ) -> Body:
        """The flat map with each flag evaluated for `context` (never kept: one per
        context)."""
        found = self.evaluator.evaluate_all(environment, application, context)
        values = {key: found[key].value for key in self.keys}
        document = self._flat_document(environment, application, values)
        return json_body(document, compress=compress)

    @functools.cached_property
    def flagd_definitions(self) -> dict[str, Body]:
        """flagd's flag definitions per environment, the bytes `flagc build` writes to
        OUT/flagd/ (`core.flagd`), for flagd's HTTP sync to poll."""
        definitions = flagd.definitions(self.source).items()
        return {environment: body(data) for environment, data in definitions}

    @functools.cached_property
    def definition_tags(self) -> dict[str, str]:
        """Per environment, a tag of what it serves: a hash of its flagd definitions (every
        flag's variants, rules, values per application and dependencies) with the build's
        revision left out, so two builds that serve an environment alike give it the same
        tag whatever else changed, on every replica. An OFREP event stream sends it as
        `etag` when it changes (server.streams)."""
        revision = orjson.dumps(self.revision)
        return {
            environment: hashlib.sha256(
                found.data.replace(revision, b'""') + self._step_in(environment)
            ).hexdigest()[:32]
            for environment, found in self.flagd_definitions.items()
        }

    def _step_in(self, environment: str) -> bytes:
        """The last step up to `moment` that changed a row in `environment` (b"" for none):
        flagd's file holds every step, so a step changes the tag only through this."""
        if self.moment is None:
            return b""
        moment = self.moment
        changes = (
            schedule.row_moments(flag, environment) for flag in self.source["flags"].values()
        )
        last = max((at for found in changes for at in found if at <= moment), default=None)
        return b"" if last is None else b"@%d" % last

    @functools.cached_property
    def last_modified(self) -> int | None:
        """When the newest change in the audit log was committed (Unix seconds), or None
        without an audit log."""
        moments = [
            datetime.datetime.fromisoformat(entry["committed_at"])
            for entry in self.entries
            if isinstance(entry.get("committed_at"), str)
        ]
        return int(max(moments).timestamp()) if moments else None

    def _flat(
        self, environment: str, application: str | None, rows: list[tuple[str, Any]]
    ) -> dict[str, Any]:
        """The flat map of a cell from the environment's `rows` (each flag's, in order):
        `cell` inlined, which took 0.15 s more for 105 maps of 2,000 flags."""
        if application is None:
            values = {key: row["value"] for key, row in rows}
        else:
            values = {key: row["applications"][application]["value"] for key, row in rows}
        return self._flat_document(environment, application, values)

    def _flat_document(
        self, environment: str, application: str | None, values: dict[str, Any]
    ) -> dict[str, Any]:
        """A flat map: the values, and `targeted`, the flags whose value in that cell
        depends on the context (without a context, each such flag shows its cell's value)."""
        return {
            "environment": environment,
            "application": application,
            "revision": self.revision,
            "flags": values,
            "targeted": sorted(self.evaluator.targeted(environment, application)),
        }

    def memo(self, key: tuple[Any, ...], make: Callable[[], Body]) -> Body:
        """A body computed on first use and kept with this snapshot (it never changes); the
        least recently used go first once MEMO_SIZE bodies or MEMO_BYTES bytes are kept, so
        odd queries cannot grow a worker's memory past that."""
        kept = self._kept
        with _MEMO_LOCK:
            found = kept.bodies.get(key)
            if found is not None:
                kept.bodies.move_to_end(key)
                return found
        found = make()
        with _MEMO_LOCK:
            kept.add(key, found)
        return found

    @functools.cached_property
    def _kept(self) -> _Kept:
        return _Kept()

    def per_cell(
        self, name: str, environment: str, application: str | None, make: Callable[[], T]
    ) -> T:
        """A value derived once per cell (a known environment, and application or None) and
        kept with this snapshot: at most one per `name` and cell, so bounded by the grid."""
        key = (name, environment, application)
        found = self._per_cell.get(key, _MISSING)
        if found is _MISSING:
            found = make()
            with _MEMO_LOCK:
                found = self._per_cell.setdefault(key, found)
        return cast(T, found)

    @functools.cached_property
    def _per_cell(self) -> dict[tuple[str, str, str | None], object]:
        return {}


T = TypeVar("T")
_MISSING: Final = object()
# What a build's views at other moments share with it: what does not read `resolved`.
_TIMELESS: Final = ("flagd_definitions", "step_moments", "snapshot_body", "last_modified", "actors")


_MEMO_LOCK = threading.Lock()
MEMO_SIZE = 4096  # bodies kept per snapshot, at most
MEMO_BYTES = 64 * 1024 * 1024  # and their bytes, plain and gzipped, at most


class _Kept:
    """The bodies a snapshot keeps, least recently used first, and their size in bytes."""

    def __init__(self) -> None:
        self.bodies: collections.OrderedDict[tuple[Any, ...], Body] = collections.OrderedDict()
        self.size = 0

    def add(self, key: tuple[Any, ...], found: Body) -> None:
        if key in self.bodies:  # another thread made it meanwhile
            self.size -= self.bodies.pop(key).size
        if found.size > MEMO_BYTES:  # answered, not kept
            return
        self.bodies[key] = found
        self.size += found.size
        while len(self.bodies) > MEMO_SIZE or self.size > MEMO_BYTES:
            _, dropped = self.bodies.popitem(last=False)
            self.size -= dropped.size


def cell(flag: Mapping[str, Any], environment: str, application: str | None) -> dict[str, Any]:
    """The resolved variant, value and source of one flag in one environment (and
    application)."""
    row: dict[str, Any] = flag["resolved"][environment]
    if application is None:
        return {"variant": row["variant"], "value": row["value"], "source": row["source"]}
    found: dict[str, Any] = row["applications"][application]
    return found


def load(
    directory: Path, clock: Callable[[], float] = time.time, *, answers: bool = True
) -> Snapshot:
    """Read and verify the build in `directory` (OUT); SnapshotError says what is wrong.

    Every file comes from one directory: the one OUT/snapshot.json resolves into (the
    current build of a `flagc build` OUT, or OUT itself for a folder of plain files). A
    file of it that vanishes while being read means a newer build replaced it meanwhile:
    the newer one is read instead. With `answers`, the answers every request looks up (the
    flat maps, the evaluator) are made now, off the request path; without, when first asked
    for (flagd's sync process asks for none of them)."""
    for _ in range(RETRIES):
        build = _build_directory(directory)
        try:
            with collector_paused():
                snapshot = _load_build(build, clock, whole=build != directory, answers=answers)
        except FileNotFoundError as exc:
            if _build_directory(directory) == build:
                raise SnapshotError(
                    f"{exc.filename} does not exist; build it with `flagc build`"
                ) from None
            continue
        if _build_directory(directory) == build:  # else a newer build came meanwhile
            return snapshot
    raise SnapshotError(f"{directory} changed {RETRIES} times while being read; try again")


RETRIES = 3


def _build_directory(directory: Path) -> Path:
    """Where the build's files are: OUT/snapshot.json's folder, links followed."""
    path = directory / SNAPSHOT
    if not path.is_symlink():
        return directory
    try:
        return path.resolve().parent
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise SnapshotError(f"{path} cannot be resolved: {exc}") from None


def _load_build(build: Path, clock: Callable[[], float], *, whole: bool, answers: bool) -> Snapshot:
    """One build's files, verified together (`core.verify`); FileNotFoundError for a
    missing one. A build `flagc build` swapped in (`whole`) has every part; a folder of
    plain files may lack audit.json and flagd/ (a build made by hand, or by an earlier
    flagc), and is served without them."""
    raw = _read(build / SNAPSHOT, required=True)
    assert raw is not None
    document = _parse(raw, SNAPSHOT)
    _verified(verify.snapshot_problems, document)
    document = expanded(document)  # every application in every row, for every reader
    audit_raw = _read(build / AUDIT, required=whole)
    if audit_raw is None:
        entries, complete = [], False
    else:
        log = _audit_log(_parse(audit_raw, AUDIT), document["revision"])
        entries, complete = log["entries"], log["complete"]  # checked: a list, a bool
    loaded_at = clock()
    snapshot = Snapshot(document, raw, entries, complete, loaded_at).at(int(loaded_at))
    found = _flagd_files(build / FLAGD)
    if found is None and whole:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(build / FLAGD))
    if found is not None:
        expected = {name: body.data for name, body in snapshot.flagd_definitions.items()}
        _verified(verify.flagd_problems, expected, found)
    return snapshot.precompute(answers=answers)  # off the request path


def _audit_log(document: Any, revision: str) -> dict[str, Any]:
    """The log audit.json holds (the file is compact: `core.audit_format`), verified."""
    found: list[dict[str, Any]] = []

    def audit_problems(document: Any, revision: str) -> list[str]:  # named in a refusal
        log, reasons = verify.checked_audit(document, revision)
        found.extend(() if log is None else (log,))
        return reasons

    _verified(audit_problems, document, revision)
    return found[0]


def _read(path: Path, *, required: bool) -> bytes | None:
    """A regular file's bytes (never waiting on a FIFO or a device); None for a missing
    optional one. FileNotFoundError for a missing required one."""
    try:
        return read_regular_file(path)
    except FileNotFoundError:
        if not required:
            return None
        raise
    except NotRegularFile as exc:
        raise SnapshotError(f"{path} is {exc}, not a regular file") from None
    except OSError as exc:
        raise SnapshotError(f"{path} cannot be read: {exc.strerror}") from None


def _parse(raw: bytes, name: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{name} is not valid JSON ({exc}); is it complete?") from None


def _flagd_files(folder: Path) -> dict[str, bytes] | None:
    """OUT/flagd/<environment>.json by environment; None for a build without the folder."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"{folder} cannot be read: {exc.strerror}") from None
    found = {}
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            data = _read(folder / name, required=True)
            assert data is not None
            found[name.removesuffix(".json")] = data
    return found


def _verified(problems_of: Callable[..., list[str]], *arguments: Any) -> None:
    """Run one of `core.verify`'s `*_problems` and refuse the build for what it finds; one
    that fails on input it did not foresee refuses the build too, never serves it."""
    try:
        reasons = problems_of(*arguments)
    except Exception as exc:  # a build it cannot judge is not served
        reasons = [f"{problems_of.__name__} failed on this build: {exc!r}"]
    _refuse(reasons)


def _refuse(reasons: list[str]) -> None:
    """SnapshotError naming the first reasons, if there are any."""
    if reasons:
        shown = "; ".join(reasons[:SHOWN])
        more = f" (and {len(reasons) - SHOWN} more)" if len(reasons) > SHOWN else ""
        raise SnapshotError(f"{shown}{more}")


SHOWN = 5  # reasons named in one refusal
