"""The store: the snapshot being served, and hot reload.

The `Store` holds the current `core.snapshot.Snapshot` of a build directory and swaps in a
new build only when it loads and verifies completely (`core.snapshot.load`): a refused
build is logged and counted, and the old one keeps serving. It notices a new build as it
lands (`server.watch`: inotify), and polls as the fallback.

A build whose flags have schedules changes what it serves at each step, by the store's
clock, without a new build: a thread of its own makes the build's view at the next step
(`Snapshot.at`, with the answers a load makes: too slow to make at the moment for a large
build) shortly before that moment, and swaps it in at the moment. Its `step_listeners` are
told then, as `listeners` are of a new build: a step is not a reload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.layout import AUDIT, FLAGD, SNAPSHOT
from core.process import collector_paused, give_back_freed
from core.schedule import utc_text
from core.snapshot import Snapshot, SnapshotError, load
from server.watch import Watch

log = logging.getLogger("flagserve")
# A step's view is made this long before its moment at least, and twice as long as the
# last one took (or the build's load, before any): other work may slow the next.
STEP_LEAD_SECONDS = 1.0
# The step thread looks at the clock at least this often while a step is ahead: a wall
# clock set forward (or a machine resumed) is noticed within it.
STEP_LOOK_SECONDS = 30.0


@dataclass(frozen=True)
class _Prepared:
    """The view of a step made ahead of its moment, and the snapshot it was made from."""

    base: Snapshot
    view: Snapshot


@dataclass
class Store:
    """The current snapshot of a build directory, swapped atomically on a good reload and,
    for a build with steps, at each step."""

    directory: Path
    clock: Callable[[], float] = time.time
    listeners: list[Callable[[bool, str | None], None]] = field(default_factory=list)
    step_listeners: list[Callable[[], None]] = field(default_factory=list)  # told of a step
    reloads: int = 0
    steps_applied: int = 0  # views swapped in at a step's moment
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
    _prepared: _Prepared | None = None
    _step_seconds: float | None = None  # how long the last step's view took to make
    _stepper: threading.Thread | None = None
    _stepping: bool = False  # whether the step thread runs (not in gunicorn's master)
    _woken: threading.Event = field(default_factory=threading.Event)  # a new build came

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
            self._prepared = None  # a view of the build replaced
            self.last_load_seconds = time.perf_counter() - started
            self.reloads += 1
        give_back_freed()  # what the load freed, and the build replaced if unused
        self._woken.set()  # the step thread looks at this build's next step
        log.info("serving revision %s%s", snapshot.revision, _next_step_text(snapshot))
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

    @property
    def next_step(self) -> int | None:
        """When what is served changes next without a new build (Unix seconds), or None."""
        snapshot = self._current
        return None if snapshot is None else snapshot.next_step

    @property
    def prepared(self) -> Snapshot | None:
        """The view of the next step made ahead of its moment, if made (else None)."""
        prepared = self._prepared
        return None if prepared is None or prepared.base is not self._current else prepared.view

    def prepare_step(self) -> bool:
        """Make the current build's view at its next step now, ahead of that moment (or as
        of now, if that has passed); True when one was made, False when there is no step
        or its view is made already."""
        base = self._current
        step = None if base is None else base.next_step
        if base is None or step is None:
            return False
        prepared = self._prepared
        if prepared is not None and prepared.base is base:
            return False
        view = self._view(base, max(step, int(self.clock())))
        with self._lock:
            if self._current is base:  # else a new build came meanwhile: not kept
                self._prepared = _Prepared(base, view)
        return True

    def advance(self) -> bool:
        """Once the current build's next step has come by the clock, swap in the build as it
        stands now: the view made ahead (`prepare_step`) if it still is what now serves, else
        one made now. True when swapped; the step listeners are then told. A new build that
        lands meanwhile wins: it stands at its own moment."""
        base = self._current
        step = None if base is None else base.next_step
        now = self.clock()
        if base is None or step is None or now < step:
            return False
        prepared = self._prepared
        if prepared is not None and prepared.base is base and _serves(prepared.view, now):
            view = prepared.view
        else:
            view = self._view(base, int(now))
        with self._lock:
            if self._current is not base:
                return False
            self._current, self._prepared = view, None
            self.steps_applied += 1
        log.info("serving revision %s as of %s%s", view.revision, _at(view), _next_step_text(view))
        for listener in self.step_listeners:
            listener()
        return True

    def _view(self, base: Snapshot, moment: int) -> Snapshot:
        """`base` at `moment`, with the answers a load makes."""
        started = time.perf_counter()
        with collector_paused():
            view = base.at(moment).precompute(answers=self.answers)
        self._step_seconds = time.perf_counter() - started
        return view

    def _step_lead(self) -> float:
        """How long before a step's moment its view is made."""
        took = self.last_load_seconds if self._step_seconds is None else self._step_seconds
        return max(STEP_LEAD_SECONDS, 2 * took)

    def step_wait(self) -> float | None:
        """Do what is due about the next step (make its view, or swap it in); returns how
        long until the next thing is due (0: at once), None when there is no step ahead."""
        step = self.next_step
        if step is None:
            return None
        left = step - self.clock()
        if left <= 0:
            self.advance()
            return 0.0
        lead = self._step_lead()
        if left > lead:
            return min(left - lead, STEP_LOOK_SECONDS)
        if self.prepare_step():
            return 0.0  # making it took time: look at the clock again
        return min(left, STEP_LOOK_SECONDS)

    def follow_steps(self) -> threading.Thread:
        """Apply each step at its moment, in a daemon thread (one per process; a second call
        returns the running one). Without a step ahead, it waits for a new build alone."""
        self._stepping = True
        if self._stepper is not None and self._stepper.is_alive():
            return self._stepper

        def follow() -> None:
            while True:
                self._woken.clear()
                if not self._stepping:  # looked at after the clear: `poll_only` sets both
                    break
                try:
                    wait = self.step_wait()
                except Exception:  # must never die: log, and try again shortly
                    log.exception("applying a step failed")
                    wait = STEP_LEAD_SECONDS
                if wait != 0:
                    self._woken.wait(wait)
            self._prepared = None

        self._stepper = threading.Thread(target=follow, name="flagserve-steps", daemon=True)
        self._stepper.start()
        return self._stepper

    def watch(
        self, interval: float = 2.0, *, notify: bool = True, steps: bool = True
    ) -> threading.Thread:
        """Reload in a daemon thread at each change in the directory (`server.watch`, unless
        not `notify`) and at least every `interval` seconds, and, if `steps`, apply the steps
        of the build served (`follow_steps`): one per process, a second call returns the
        running one."""
        if steps:
            self.follow_steps()
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
        against 2.76 s with the master notified too). Nor does it make steps' views ahead:
        it takes the newest good build, as it stands then, before each fork
        (server.gunicorn_conf, `advance`)."""
        self._notify = False
        self._stepping = False
        self._woken.set()  # the step thread ends

    def after_fork(self) -> None:
        """In a child process right after fork(): only the forking thread survives, so the
        lock may be held by a thread that no longer exists, and there is no poller (and
        the parent's inotify instance is not this process's to read), nor a step thread."""
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self._watcher, self._stepper = None, None
        if self._watch is not None:
            self._watch.close()
            self._watch = None


def _serves(view: Snapshot, now: float) -> bool:
    """Whether `view` is what its build serves at `now` (no later step has come too)."""
    step = view.next_step
    return step is None or now < step


def _at(snapshot: Snapshot) -> str:
    return "now" if snapshot.moment is None else utc_text(snapshot.moment)


def _next_step_text(snapshot: Snapshot) -> str:
    step = snapshot.next_step
    return "" if step is None else f" (next step at {utc_text(step)})"
