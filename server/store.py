"""The store: the snapshot being served, and hot reload.

The `Store` holds the current `core.snapshot.Snapshot` of a build directory and swaps in a
new build only when it loads and verifies completely (`core.snapshot.load`): a refused
build is logged and counted, and the old one keeps serving. It notices a new build as it
lands (`server.watch`: inotify), and polls as the fallback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.layout import AUDIT, FLAGD, SNAPSHOT
from core.snapshot import Snapshot, SnapshotError, load
from server.watch import Watch

log = logging.getLogger("flagserve")


@dataclass
class Store:
    """The current snapshot of a build directory, swapped atomically on a good reload."""

    directory: Path
    clock: Callable[[], float] = time.time
    listeners: list[Callable[[bool, str | None], None]] = field(default_factory=list)
    reloads: int = 0
    failures: int = 0
    last_error: str | None = None
    last_load_seconds: float = 0.0  # how long the current snapshot took to load and check
    answers: bool = True  # make each build's answers as it loads (core.snapshot.load)
    _current: Snapshot | None = None
    _signature: tuple[int, ...] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watcher: threading.Thread | None = None
    _watch: Watch | None = None
    _notify: bool = False  # whether the watcher waits on `_watch` or only sleeps

    @property
    def current(self) -> Snapshot:
        snapshot = self._current
        if snapshot is None:
            raise SnapshotError("no snapshot has been loaded")
        return snapshot

    def start(self) -> Snapshot:
        """Load the build at start-up; SnapshotError if there is no good one."""
        self.reload(force=True)
        return self.current

    def reload(self, *, force: bool = False) -> bool:
        """Swap in the build on disk if it changed and is good; True when swapped."""
        with self._lock:
            signature = self._disk_signature()
            if not force and signature == self._signature:
                return False
            started = time.perf_counter()
            try:
                snapshot = load(self.directory, self.clock, answers=self.answers)
            except SnapshotError as exc:
                self._signature = signature  # do not retry the same broken files
                self._failed(str(exc))
                if self._current is None:
                    raise
                return False
            self._current, self._signature = snapshot, signature
            self.last_load_seconds = time.perf_counter() - started
            self.reloads += 1
        log.info("serving revision %s", snapshot.revision)
        for listener in self.listeners:
            listener(True, None)
        return True

    def _failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        log.error("refused the build in %s: %s", self.directory, error)
        for listener in self.listeners:
            listener(False, error)

    def _disk_signature(self) -> tuple[int, ...]:
        """What changes when a build is written: each file's (or folder's) identity, size
        and time, links followed (a swapped build has new files throughout)."""
        parts: list[int] = []
        for name in (SNAPSHOT, AUDIT, FLAGD):
            try:
                stat = (self.directory / name).stat()
                parts += [stat.st_ino, stat.st_size, stat.st_mtime_ns]
            except OSError:
                parts += [-1, -1, -1]
        return tuple(parts)

    def watch(self, interval: float = 2.0, *, notify: bool = True) -> threading.Thread:
        """Reload in a daemon thread at each change in the directory (`server.watch`, unless
        not `notify`) and at least every `interval` seconds: one per process, a second call
        returns the running one."""
        if self._watcher is not None and self._watcher.is_alive():
            return self._watcher
        watch = self._watch = Watch(self.directory, notify=notify)
        self._notify = notify

        def poll() -> None:
            # Notified, the first look is at once: for a build that landed before the watch
            # began. Polled, it is an interval on, as every other.
            if not notify:
                self._pause(watch, interval)
            while True:
                try:
                    self.reload()
                except Exception:  # a poller must never die: log, and try again later
                    log.exception("reload failed")
                self._pause(watch, interval)

        self._watcher = threading.Thread(target=poll, name="flagserve-reload", daemon=True)
        self._watcher.start()
        return self._watcher

    def _pause(self, watch: Watch, interval: float) -> None:
        """Until the next look: a change or the interval, or the interval alone once told
        to poll only (the watch then closed by the thread that waits on it)."""
        if self._notify:
            watch.wait(interval)
        else:
            watch.close()
            time.sleep(interval)

    @property
    def notifying(self) -> bool:
        """Whether this process notices a new build as it lands (else polls for it)."""
        return self._notify and self._watch is not None and self._watch.notifying

    def poll_only(self) -> None:
        """From the next look on, only poll: in gunicorn's master, which serves nothing,
        so that its load of each new build does not take a core from the workers' loads
        (2,000 flags on two cores: every worker served a build 2.62 s after it landed, p50,
        against 2.76 s with the master notified too). It still takes the newest good build
        before each fork (server.gunicorn_conf)."""
        self._notify = False

    def after_fork(self) -> None:
        """In a child process right after fork(): only the forking thread survives, so the
        lock may be held by a thread that no longer exists, and there is no poller (and
        the parent's inotify instance is not this process's to read)."""
        self._lock = threading.Lock()
        self._watcher = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
