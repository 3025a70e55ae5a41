"""The flagd sync process (server.flag_sync) beside gunicorn's: started by gunicorn's
master before any worker (server.gunicorn_conf), in a process of its own because gRPC's
threads must not be forked into the workers, and grpc is imported only there. It dies with
the master; the master forwards SIGHUP to it (re-read the API keys), starts it again when it
dies (`Supervised`, as gunicorn does a worker), and stops it on exit."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from core.process import die_with
from server.settings import Settings

log = logging.getLogger("flagserve")
FIRST_DELAY = 0.5  # seconds before the first restart; doubled after each quick death
LAST_DELAY = 30.0  # at most
STEADY = 60.0  # a process that ran this long died of something new: the delay starts over


def start(settings: Settings) -> BaseProcess:
    """The sync process, started and serving (in gunicorn's master, before any worker);
    OSError when it cannot serve (its address taken, say)."""
    context = multiprocessing.get_context("fork")  # grpc is imported only in the child
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=_run, args=(settings, sending, os.getpid()), name="flagserve-sync"
    )
    child.start()
    sending.close()
    try:
        problem = receiving.recv() if receiving.poll(60) else "it did not start within 60 s"
    except EOFError:
        problem = f"it stopped as it started (exit code {child.exitcode})"
    if problem is not None:
        child.terminate()
        raise OSError(problem)
    return child


def _run(settings: Settings, ready: Connection, parent: int) -> None:
    """The sync process: serve until the master stops it (SIGTERM) or dies."""
    die_with(parent)
    from server import flag_sync  # noqa: PLC0415 (grpc, in this process only)

    asyncio.run(flag_sync.serve(settings, ready))


def _exit_of(child: BaseProcess) -> str:
    """How `child` ended, as the log says it: its exit code, unless gunicorn's arbiter took
    it first (its SIGCHLD handler reaps every child of the master, ours too)."""
    code = child.exitcode
    return f"code {code}" if code is not None else "its exit code reaped by gunicorn"


class Supervised:
    """The sync process, started again whenever it exits while the master runs (a crash,
    the kernel's OOM killer): after FIRST_DELAY seconds, doubled up to LAST_DELAY while it
    keeps dying within STEADY seconds, each death and restart logged. A thread of the
    master waits on it; `stop` ends both."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.child: BaseProcess | None = start(settings)
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="flagserve-sync", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        delay, started = FIRST_DELAY, time.monotonic()
        while True:
            child = self.child
            if child is not None:  # None: it could not start; try again after the delay
                wait([child.sentinel])
                if self._stopping.is_set():
                    return
                child.join(5)  # its pipes close a moment before it can be reaped
                if time.monotonic() - started >= STEADY:
                    delay = FIRST_DELAY
                log.error(
                    "the flagd sync process exited (%s); starting it again in %g s",
                    _exit_of(child),
                    delay,
                )
            if self._stopping.wait(delay):
                return
            delay, started = min(delay * 2, LAST_DELAY), time.monotonic()
            try:
                self.child = start(self._settings)
            except OSError as exc:
                log.error("the flagd sync process did not start again: %s", exc)
                self.child = None
            else:
                log.info("the flagd sync process serves again on %s", self._settings.sync_bind)

    def forward(self, number: int) -> None:
        """Pass signal `number` to the sync process, if it runs."""
        child = self.child
        if child is not None and child.is_alive() and child.pid is not None:
            os.kill(child.pid, number)

    def stop(self) -> None:
        """Stop the sync process for good (the master is exiting)."""
        self._stopping.set()
        child = self.child
        if child is not None and child.is_alive():
            child.terminate()
            child.join(5)
