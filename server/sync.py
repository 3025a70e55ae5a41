"""The flagd sync process (server.flag_sync) beside gunicorn's: started by gunicorn's
master before any worker (server.gunicorn_conf), in a process of its own because gRPC's
threads must not be forked into the workers, and grpc is imported only there. It dies with
the master; the master forwards SIGHUP to it (re-read the API keys) and stops it on exit."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from core.process import die_with
from server.settings import Settings


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


def forward(child: BaseProcess | None, number: int) -> None:
    """Pass signal `number` to the sync process, if it runs."""
    if child is not None and child.is_alive() and child.pid is not None:
        os.kill(child.pid, number)


def stop(child: BaseProcess | None) -> None:
    """Stop the sync process (the master is exiting)."""
    if child is not None and child.is_alive():
        child.terminate()
        child.join(5)
