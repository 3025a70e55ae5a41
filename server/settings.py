"""Settings from the environment (FLAGSERVE_*), read once; `flagserve` options set them.

Every value is checked here, so that a typo stops the server at start-up with a message
naming the variable (or, through `flagserve`, the option) instead of surfacing later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

LOG_FORMATS = ("text", "json")
_BIND = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting with a value the server cannot use: the message names it and says why."""


def parse_bind(value: str) -> str:
    """HOST:PORT (an IPv6 host in brackets), as gunicorn binds it."""
    found = _BIND.match(value.strip())
    if found is None or not 0 < int(found["port"]) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (such as 127.0.0.1:8000)")
    return value.strip()


def parse_count(value: str) -> int:
    """A whole number, at least 1 (workers, threads)."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise ValueError(f"{value!r} must be at least 1")
    return number


def parse_log_format(value: str) -> str:
    if value not in LOG_FORMATS:
        raise ValueError(f"{value!r} is not one of {', '.join(LOG_FORMATS)}")
    return value


def parse_seconds(value: str) -> float:
    """A number of seconds (the reload interval, the header timeout): more than 0, at most
    an hour."""
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"{value!r} must be more than 0 and at most 3600 seconds")
    return seconds


def parse_switch(value: str) -> bool:
    """on or off (also true/false, yes/no, 1/0)."""
    switch = {"on": True, "true": True, "yes": True, "1": True}
    switch |= {"off": False, "false": False, "no": False, "0": False}
    try:
        return switch[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is neither on nor off") from None


def parse_url(value: str) -> str:
    """An http(s) URL of a repository, without a trailing slash."""
    url = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ValueError(f"{value!r} is not an http(s) URL such as https://github.com/org/repo")
    return url


def parse_name(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty name")
    return value.strip()


@dataclass(frozen=True)
class Settings:
    directory: Path = Path("build")
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    # Requests are CPU work under one GIL: more threads than this only queue on it (with
    # 8, the same work took 10-20% more CPU per request); keep-alive connections wait in
    # the worker's poller, not in a thread.
    threads: int = 4
    log_format: str = "text"
    api_keys: Path | None = None
    default_environment: str | None = None
    reload_interval: float = 2.0
    # Notice a new build as it lands (inotify, server.watch); off: only the interval's poll.
    reload_notify: bool = True
    metrics_bind: str | None = None  # /metrics on its own port, served by the master
    sync_bind: str | None = None  # flagd's sync protocol over gRPC (server.flag_sync)
    repository_url: str | None = None  # the dashboard links flag files and commits there
    flags_path: str = "flags"  # the flags folder inside that repository
    # A connection that has not sent a whole request this long after its first byte (after
    # it was accepted, for a new one) is answered 408 and closed (server.worker).
    header_timeout: float = 10.0
    # A client that takes no byte of its answer for this long is disconnected (server.worker).
    write_timeout: float = 30.0
    # An OFREP event stream sends a comment at least this often, so proxies keep it open.
    stream_keepalive: float = 15.0
    # The secret that signs stream URLs' tokens, shared by replicas behind one load
    # balancer (server.streams); without it, each flagserve makes its own.
    stream_secret: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """The settings in `env`; SettingsError names the first variable that is wrong."""

        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            value = env.get(f"FLAGSERVE_{name}", "").strip()
            if not value:
                return default
            try:
                return parse(value)
            except ValueError as exc:
                raise SettingsError(f"FLAGSERVE_{name}: {exc}") from None

        keys = get("API_KEYS", str, "")
        settings = cls(
            directory=Path(get("DIR", str, "build")),
            bind=get("BIND", parse_bind, DEFAULTS.bind),
            workers=get("WORKERS", parse_count, DEFAULTS.workers),
            threads=get("THREADS", parse_count, DEFAULTS.threads),
            log_format=get("LOG_FORMAT", parse_log_format, DEFAULTS.log_format),
            api_keys=Path(keys) if keys else None,
            default_environment=get("DEFAULT_ENVIRONMENT", parse_name, None),
            reload_interval=get("RELOAD_INTERVAL", parse_seconds, DEFAULTS.reload_interval),
            reload_notify=get("RELOAD_NOTIFY", parse_switch, DEFAULTS.reload_notify),
            header_timeout=get("HEADER_TIMEOUT", parse_seconds, DEFAULTS.header_timeout),
            write_timeout=get("WRITE_TIMEOUT", parse_seconds, DEFAULTS.write_timeout),
            stream_keepalive=get("STREAM_KEEPALIVE", parse_seconds, DEFAULTS.stream_keepalive),
            stream_secret=get("STREAM_SECRET_FILE", Path, None),
            metrics_bind=get("METRICS_BIND", parse_bind, None),
            sync_bind=get("SYNC_BIND", parse_bind, None),
            repository_url=get("REPOSITORY_URL", parse_url, None),
            flags_path=get("FLAGS_PATH", parse_name, DEFAULTS.flags_path),
        )
        if settings.metrics_bind is not None and settings.metrics_bind == settings.bind:
            raise SettingsError(
                f"FLAGSERVE_METRICS_BIND: {settings.bind} is already the API's address; "
                "give /metrics another port, or leave it unset to serve /metrics with the API"
            )
        if settings.sync_bind is not None and settings.sync_bind in (
            settings.bind,
            settings.metrics_bind,
        ):
            raise SettingsError(
                f"FLAGSERVE_SYNC_BIND: {settings.sync_bind} is already taken by the API or "
                "/metrics; give flagd sync a port of its own (flagd's is 8015)"
            )
        return settings


DEFAULTS = Settings()
