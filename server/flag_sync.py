"""flagd's sync protocol, served: `flagserve --sync-bind HOST:PORT` (started by
server.sync), for flagd and flagd's in-process providers, which hold a stream and are sent
each new build as it lands, with no polling.

`flagd.sync.v1.FlagSyncService` over gRPC (flagd-schemas' `protobuf/flagd/sync/v1/sync.proto`,
whose generated stubs the `openfeature-provider-flagd` package ships): `SyncFlags` streams
an environment's flag definitions, the bytes of `OUT/flagd/<environment>.json`, now and at
each new build that changes them; `FetchAllFlags` answers them once; `GetMetadata` (which
providers still ask) adds nothing to the evaluation context. The environment is the value
of the `Flagd-Selector` header, or of the request's `selector` (flagd's older way), or
FLAGSERVE_DEFAULT_ENVIRONMENT. With API keys, a call carries one as `authorization: Bearer
<key>` metadata and may read only its key's environments, as over HTTP.

It runs in a process of its own (server.sync), with a store of its own that notices each
build as it lands (server.store, server.watch). Streams wait on asyncio, not threads, so an
idle one costs a little memory. SIGHUP re-reads the API keys file.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import TypeVar

import grpc
from google.protobuf.struct_pb2 import Struct
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

from server.auth import KeyFileError, KeyRing, bearer, load_keys
from server.settings import Settings
from server.store import Store

log = logging.getLogger("flagserve")


class FlagSync(sync_pb2_grpc.FlagSyncServiceServicer):
    """The service: the store's current build, its flagd definitions per environment."""

    def __init__(self, store: Store, keys: KeyRing | None, default: str | None) -> None:
        self.store, self.keys, self.default = store, keys, default
        self._changed = asyncio.Event()  # set, and replaced, at each swap of the store
        self._loop = asyncio.get_running_loop()
        store.listeners.append(self._swapped)

    def _swapped(self, swapped: bool, error: str | None) -> None:
        """From the store's watcher thread: wake every stream to look again."""
        if swapped:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def SyncFlags(
        self, request: sync_pb2.SyncFlagsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sync_pb2.SyncFlagsResponse]:
        environment = await self._environment(request.selector, context)
        sent = None
        while True:
            changed = self._changed
            answer = await self._answer(environment, sync_pb2.SyncFlagsResponse, context)
            if answer.flag_configuration != sent:  # a build that changes this environment
                sent = answer.flag_configuration
                yield answer
            await changed.wait()

    async def FetchAllFlags(
        self, request: sync_pb2.FetchAllFlagsRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.FetchAllFlagsResponse:
        environment = await self._environment(request.selector, context)
        return await self._answer(environment, sync_pb2.FetchAllFlagsResponse, context)

    async def GetMetadata(
        self, request: sync_pb2.GetMetadataRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.GetMetadataResponse:
        return sync_pb2.GetMetadataResponse(metadata=Struct())

    async def _environment(self, selector: str, context: grpc.aio.ServicerContext) -> str:
        """The environment asked for, once the call's key may read it; else the call ends
        with the status that says why."""
        metadata = {key.lower(): value for key, value in context.invocation_metadata() or ()}
        environment = metadata.get("flagd-selector") or selector or self.default
        if self.keys is not None:
            secret = bearer(str(metadata.get("authorization", "")))
            key = self.keys.find(secret) if secret else None
            if key is None:
                why = "an API key is needed: send `authorization: Bearer <key>` metadata"
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)
            elif (
                environment
                and key.environments is not None
                and (environment not in key.environments)
            ):
                why = f"this API key may not read the environment {environment!r}"
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
        if not environment:
            why = "name an environment in the Flagd-Selector header (or the request's selector)"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, why)
        return str(environment)

    async def _answer(
        self, environment: str, kind: type[_Answer], context: grpc.aio.ServicerContext
    ) -> _Answer:
        """The current build's `kind` of answer for `environment`, made once per build and
        environment (`Snapshot.per_cell`), not once per stream; NOT_FOUND when the build has
        no such environment."""
        snapshot = self.store.current
        found = snapshot.flagd_definitions.get(environment)
        if found is None:
            known = ", ".join(snapshot.environments)
            why = f"no environment {environment!r} in the build (it has {known})"
            await context.abort(grpc.StatusCode.NOT_FOUND, why)
            raise AssertionError("abort returns only by raising")
        data = found.data

        def make() -> _Answer:
            return kind(flag_configuration=data.decode())

        return snapshot.per_cell(f"flagd-sync {kind.__name__}", environment, None, make)


_Answer = TypeVar("_Answer", sync_pb2.SyncFlagsResponse, sync_pb2.FetchAllFlagsResponse)


async def serve(settings: Settings, ready: Connection) -> None:
    """Serve until SIGTERM; `ready` is sent None once serving, or why it cannot."""
    assert settings.sync_bind is not None  # server.sync starts this only when it is set
    store = Store(settings.directory, answers=False)  # only flagd's files are sent here
    store.start()
    keys = load_keys(settings.api_keys) if settings.api_keys is not None else None
    service = FlagSync(store, keys, settings.default_environment)
    # Without SO_REUSEPORT (gRPC's default), so that a port another program holds is
    # refused rather than shared.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    sync_pb2_grpc.add_FlagSyncServiceServicer_to_server(service, server)
    try:
        bound = server.add_insecure_port(settings.sync_bind)
    except RuntimeError as exc:  # grpc's way of saying the address is taken
        bound, why = 0, str(exc)
    else:
        why = "the address is taken or not this machine's"
    if not bound:
        ready.send(f"cannot serve flagd sync on {settings.sync_bind}: {why}")
        return
    await server.start()
    # No step thread: flagd's files are the build's own at every step (they carry the steps,
    # as `$flagd.timestamp`), so a view made at each step would serve nothing here.
    store.watch(settings.reload_interval, notify=settings.reload_notify, steps=False)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, _reread_keys, settings, service)
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    ready.send(None)
    ready.close()
    log.info("flagd sync on %s (serving revision %s)", settings.sync_bind, store.current.revision)
    await stopping.wait()
    await server.stop(grace=1)


def _reread_keys(settings: Settings, service: FlagSync) -> None:
    if settings.api_keys is None:
        return
    try:
        service.keys = load_keys(settings.api_keys)
    except KeyFileError as exc:
        log.error("flagd sync kept the API keys in use: %s", exc)
