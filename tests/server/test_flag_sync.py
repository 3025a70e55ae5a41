"""flagserve --sync-bind: flagd's sync protocol over gRPC, followed by the unmodified flagd
provider in its in-process mode and called with the stubs it ships, against a live server:
the flags it evaluates, a new build pushed to it with no polling, API keys and selectors."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import multiprocessing
import os
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

from server import flag_sync
from server.auth import KeyRing, load_keys
from server.flag_sync import FlagSync
from server.settings import Settings, SettingsError
from server.store import Store
from tests.server.conftest import FLAGS, Built, Live, free_port
from tests.server.helpers import (
    SECRET,
    STAGING_SECRET,
    finish,
    keys_file,
    running,
    wait_until,
    workers,
)

T = TypeVar("T")
BANNER_ON = FLAGS["growth/banner.yaml"].replace(
    "development: true", "development: true\n  production: true"
)


def synced(built: Built, log: Path, *extra: str) -> Iterator[tuple[Live, str]]:
    address = f"127.0.0.1:{free_port()}"
    with running([str(built.out), "--sync-bind", address, *extra], log) as live:
        yield live, address


@pytest.fixture
def sync_server(built: Built, tmp_path: Path) -> Iterator[tuple[Live, str]]:
    yield from synced(built, tmp_path / "flagserve.log")


@pytest.fixture
def keyed_server(built: Built, tmp_path: Path) -> Iterator[tuple[Live, str]]:
    keys = keys_file(tmp_path / "keys.yaml")
    yield from synced(built, tmp_path / "flagserve.log", "--api-keys", str(keys))


@contextmanager
def provider_client(address: str, environment: str) -> Iterator[OpenFeatureClient]:
    host, port = address.rsplit(":", 1)
    provider = FlagdProvider(
        resolver_type=ResolverType.IN_PROCESS, host=host, port=int(port), selector=environment
    )
    domain = f"gitflags-{uuid.uuid4().hex}"
    api.set_provider(provider, domain)
    try:
        yield api.get_client(domain)
    finally:
        provider.shutdown()


def banner(client: OpenFeatureClient) -> bool | None:
    """The banner as the provider evaluates it; None until it has the flags."""
    details = client.get_boolean_details("banner", False)
    return None if details.error_code is not None else details.value


def test_the_flagd_provider_in_process_follows_each_build(
    built: Built, sync_server: tuple[Live, str]
) -> None:
    _, address = sync_server
    with provider_client(address, "production") as client:
        synced_once = functools.partial(banner, client)
        wait_until(lambda: synced_once() is not None, what="the provider's first sync")
        assert banner(client) is False
        assert client.get_boolean_value("pricing-engine", False) is True
        built.commit("Show the banner in production", {"growth/banner.yaml": BANNER_ON})
        landed = time.monotonic()
        wait_until(lambda: synced_once() is True, what="the new build, pushed")
        assert time.monotonic() - landed < 1.0  # no poll: noticed and sent as it landed


def stub(address: str) -> Iterator[sync_pb2_grpc.FlagSyncServiceStub]:
    with grpc.insecure_channel(address) as channel:
        yield sync_pb2_grpc.FlagSyncServiceStub(channel)


def fetch(address: str, environment: str, key: str | None = None) -> str:
    metadata = [("flagd-selector", environment)]
    if key is not None:
        metadata.append(("authorization", f"Bearer {key}"))
    for service in stub(address):
        answer = service.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), metadata=metadata)
        return str(answer.flag_configuration)
    raise AssertionError("no channel")


def test_fetch_all_flags_answers_the_flagd_file(
    built: Built, sync_server: tuple[Live, str]
) -> None:
    _, address = sync_server
    for environment in ("development", "production"):
        expected = (built.out / "flagd" / f"{environment}.json").read_text(encoding="utf-8")
        assert fetch(address, environment) == expected


def test_the_request_selector_is_read_as_flagd_sent_it_before(
    built: Built, sync_server: tuple[Live, str]
) -> None:
    _, address = sync_server
    for service in stub(address):
        request = sync_pb2.SyncFlagsRequest(selector="staging")
        first = next(iter(service.SyncFlags(request, timeout=10)))
        document = json.loads(first.flag_configuration)
        assert document["metadata"]["environment"] == "staging"


@pytest.mark.parametrize(
    ("environment", "key", "status"),
    [
        ("production", None, grpc.StatusCode.UNAUTHENTICATED),
        ("production", "not-a-key", grpc.StatusCode.UNAUTHENTICATED),
        ("production", STAGING_SECRET, grpc.StatusCode.PERMISSION_DENIED),
        ("nowhere", SECRET, grpc.StatusCode.NOT_FOUND),
        ("", SECRET, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_calls_are_refused_with_the_status_that_says_why(
    built: Built, tmp_path: Path, environment: str, key: str | None, status: grpc.StatusCode
) -> None:
    keys = load_keys(keys_file(tmp_path / "keys.yaml"))
    metadata = [("flagd-selector", environment)]
    metadata += [("authorization", f"Bearer {key}")] if key is not None else []

    async def scenario(service: sync_pb2_grpc.FlagSyncServiceStub) -> list[grpc.StatusCode]:
        codes = []
        try:
            await service.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
        try:
            await service.SyncFlags(sync_pb2.SyncFlagsRequest(), metadata=metadata).read()
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
        return codes

    assert in_process(built, keys, None, scenario) == [status, status]


def test_a_key_reads_its_environments(built: Built, keyed_server: tuple[Live, str]) -> None:
    _, address = keyed_server
    expected = (built.out / "flagd" / "staging.json").read_text(encoding="utf-8")
    assert fetch(address, "staging", STAGING_SECRET) == expected
    assert fetch(address, "staging", SECRET) == expected


def test_an_address_in_use_stops_flagserve_with_a_message(built: Built, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    with running([str(built.out), "--sync-bind", address], tmp_path / "first.log"):
        done = finish([str(built.out), "--sync-bind", address])
    assert done.returncode == 2
    assert f"cannot serve flagd sync on {address}" in done.stderr


def test_sighup_rereads_the_keys_in_the_sync_process(built: Built, tmp_path: Path) -> None:
    keys = keys_file(tmp_path / "keys.yaml")
    log = tmp_path / "flagserve.log"
    for live, address in synced(built, log, "--api-keys", str(keys)):
        reads = functools.partial(_reads, address, "production", STAGING_SECRET)
        assert not reads()
        text = keys.read_text(encoding="utf-8").replace("[staging]", "['*']")
        keys.write_text(text, encoding="utf-8")
        os.kill(live.process.pid, signal.SIGHUP)
        wait_until(reads, what="the new keys")


def test_a_sync_process_that_dies_is_started_again(
    built: Built, sync_server: tuple[Live, str]
) -> None:
    live, address = sync_server
    first = listener_of(live.process.pid, address)
    os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer would
    wait_until(lambda: _fetches(address), timeout=20, what="flagd sync serving again")
    assert listener_of(live.process.pid, address) != first
    # The exit code, unless gunicorn's arbiter reaped the process first (it reaps every
    # child of the master): then the log says so.
    said = re.compile(
        r"the flagd sync process exited \((code -9|its exit code reaped by gunicorn)\); "
        r"starting it again in 0\.5 s"
    )
    wait_until(lambda: said.search(live.log.read_text()) is not None, what="the death logged")
    assert '"banner"' in fetch(address, "development")


def listener_of(master: int, address: str) -> int:
    """The child of `master` that listens on `address` (the sync process): the one holding
    the socket that /proc/net/tcp (or tcp6: gRPC listens on IPv6 sockets, IPv4 mapped)
    lists as listening on its port."""
    port = int(address.rpartition(":")[2])
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    for pid in workers(master):
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{pid}/fd")
            if any(str(fd.readlink()) in inodes for fd in fds.iterdir()):
                return pid
    raise AssertionError(f"no child of {master} listens on {address}")


def _fetches(address: str) -> bool:
    try:
        fetch(address, "development")
    except grpc.RpcError:
        return False
    return True


def _reads(address: str, environment: str, key: str) -> bool:
    try:
        fetch(address, environment, key)
    except grpc.RpcError:
        return False
    return True


def test_the_sync_address_must_be_its_own() -> None:
    with pytest.raises(SettingsError, match=r"FLAGSERVE_SYNC_BIND: 127\.0\.0\.1:9000 is already"):
        Settings.from_env(
            {"FLAGSERVE_BIND": "127.0.0.1:9000", "FLAGSERVE_SYNC_BIND": "127.0.0.1:9000"}
        )


def test_in_process_a_stream_gets_each_build_the_store_swaps_in(built: Built) -> None:
    """The service itself, beside a store this test reloads (the live tests above run it
    in flagserve's own process)."""
    store = loaded(built)

    async def scenario(
        service: sync_pb2_grpc.FlagSyncServiceStub,
    ) -> tuple[list[str], sync_pb2.GetMetadataResponse]:
        revisions: list[str] = []
        call = service.SyncFlags(sync_pb2.SyncFlagsRequest())  # the default environment
        async for message in call:
            document = json.loads(message.flag_configuration)
            assert document["metadata"]["environment"] == "production"
            revisions.append(document["metadata"]["revision"])
            if len(revisions) == 2:
                break
            banner: dict[str, str | None] = {"growth/banner.yaml": BANNER_ON}
            await asyncio.to_thread(built.commit, "Show the banner in production", banner)
            assert await asyncio.to_thread(store.reload)
        call.cancel()
        return revisions, await service.GetMetadata(sync_pb2.GetMetadataRequest())

    revisions, metadata = in_process(built, None, "production", scenario, store)
    assert len(set(revisions)) == 2  # the first build, then the one swapped in
    assert dict(metadata.metadata) == {}  # nothing added to the evaluation context


def test_the_sync_process_store_follows_builds_not_steps(
    built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flag_sync.serve` itself, in this process: its store watches for new builds but has no
    step thread (flagd's files carry the steps: a view made at each step would be waste)."""
    stores: list[Store] = []

    def recorded(*args: Any, **kwargs: Any) -> Store:
        stores.append(Store(*args, **kwargs))
        return stores[-1]

    monkeypatch.setattr(flag_sync, "Store", recorded)
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(directory=built.out, sync_bind=address, reload_interval=3600)
    receiving, sending = multiprocessing.Pipe(duplex=False)

    async def scenario() -> None:
        serving = asyncio.create_task(flag_sync.serve(settings, sending))
        try:
            assert await asyncio.to_thread(receiving.recv) is None
            (store,) = stores
            assert store._watcher is not None and store._watcher.is_alive()
            assert store._stepper is None and not store._stepping
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # serve's own way to stop
            await serving

    asyncio.run(scenario())


def in_process(
    built: Built,
    keys: KeyRing | None,
    default: str | None,
    scenario: Callable[[sync_pb2_grpc.FlagSyncServiceStub], Awaitable[T]],
    store: Store | None = None,
) -> T:
    """`scenario` run against the service in this process, on a free port."""

    async def served() -> T:
        server = grpc.aio.server()
        service = FlagSync(store or loaded(built), keys, default)
        sync_pb2_grpc.add_FlagSyncServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await scenario(sync_pb2_grpc.FlagSyncServiceStub(channel))
        finally:
            await server.stop(None)

    return asyncio.run(served())


def loaded(built: Built) -> Store:
    store = Store(built.out)
    store.start()
    return store
