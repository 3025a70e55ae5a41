"""`flagserve [OUT] [options]`: serve a build of flagc (OUT/snapshot.json and OUT/audit.json)
with gunicorn. `flagserve hash-key`: read an API key on stdin, print its SHA-256 for the keys
file.

Every option has an environment variable, which plain gunicorn
(`gunicorn -c python:server.gunicorn_conf server.wsgi:app`) reads the same way; an option
wins over its variable. Exit status 2 for a bad option or variable, for a build that cannot
be served and for a bad API keys file, each with a message saying what is wrong.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import Application  # type: ignore[import-untyped]

from server.settings import (
    LOG_FORMATS,
    Settings,
    SettingsError,
    parse_bind,
    parse_count,
    parse_log_format,
    parse_name,
    parse_seconds,
    parse_url,
)

CONFIG = "server.gunicorn_conf"
APP = "server.wsgi:app"


class Gunicorn(Application):  # type: ignore[misc]
    """gunicorn set up as `gunicorn -c python:server.gunicorn_conf server.wsgi:app` is: the
    settings of `server.gunicorn_conf`, then those of GUNICORN_CMD_ARGS (which win, as they
    do over a config file), and `server.wsgi`'s application. `Application.run` keeps
    gunicorn's own --check-config, --print-config and --pythonpath."""

    def load_config(self) -> None:
        """Read at start and again on SIGHUP (the module is imported once: its settings,
        read from FLAGSERVE_* at import, stay those of the start)."""
        self.load_config_from_module_name_or_filename(f"python:{CONFIG}")
        from_env = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for name, value in vars(from_env).items():
            if value is not None and name not in ("args", "config"):
                self.cfg.set(name, value)
        self.cfg.set("default_proc_name", APP)  # the name gunicorn's own logs give it

    def load(self) -> Any:
        """The application, loaded in the master (`preload_app`): exits with status 2 and a
        message for a build or a keys file that cannot be served."""
        module, _, name = APP.partition(":")
        # Imported only now, after CONFIG: that sets up prometheus_client's multiprocess mode.
        return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Option:
    flag: str
    variable: str  # FLAGSERVE_<variable>
    metavar: str
    parse: Callable[[str], object]
    help: str


OPTIONS = (
    Option("--bind", "BIND", "HOST:PORT", parse_bind, "the API's address (127.0.0.1:8000)"),
    Option("--workers", "WORKERS", "N", parse_count, "worker processes (2)"),
    Option("--threads", "THREADS", "N", parse_count, "threads per worker (4)"),
    Option(
        "--log-format", "LOG_FORMAT", "|".join(LOG_FORMATS), parse_log_format, "log lines (text)"
    ),
    Option("--api-keys", "API_KEYS", "FILE", str, "require API keys listed in FILE (YAML)"),
    Option(
        "--default-environment",
        "DEFAULT_ENVIRONMENT",
        "ENV",
        parse_name,
        "OFREP's environment when the context names none",
    ),
    Option(
        "--metrics-bind",
        "METRICS_BIND",
        "HOST:PORT",
        parse_bind,
        "serve /metrics here, from the master, instead of on the API's port",
    ),
    Option(
        "--repository-url",
        "REPOSITORY_URL",
        "URL",
        parse_url,
        "the dashboard links flag files and commits to this repository (https://github.com/o/r)",
    ),
    Option("--flags-path", "FLAGS_PATH", "PATH", parse_name, "the flags folder in it (flags)"),
    Option(
        "--sync-bind",
        "SYNC_BIND",
        "HOST:PORT",
        parse_bind,
        "also serve flagd's sync protocol (gRPC) here, for flagd and in-process providers",
    ),
    Option(
        "--header-timeout",
        "HEADER_TIMEOUT",
        "SECONDS",
        parse_seconds,
        "close a connection that has not sent a whole request this long after its first byte (10)",
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["hash-key"]:
        return hash_key(arguments[1:])
    parser = _parser()
    args = parser.parse_args(arguments)
    overrides = {
        f"FLAGSERVE_{option.variable}": getattr(args, option.variable.lower())
        for option in OPTIONS
        if getattr(args, option.variable.lower()) is not None
    }
    if args.out is not None:
        overrides["FLAGSERVE_DIR"] = args.out
    try:
        Settings.from_env({**os.environ, **overrides})
    except SettingsError as exc:
        parser.exit(2, f"flagserve: error: {exc}\n")
    os.environ.update(overrides)  # read by server.gunicorn_conf and server.wsgi
    Gunicorn(prog="flagserve").run()  # gunicorn exits the process itself
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flagserve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Reload: as each build lands (inotify; FLAGSERVE_RELOAD_NOTIFY=off: not), "
        "at least every FLAGSERVE_RELOAD_INTERVAL seconds (2), and on SIGHUP.",
    )
    parser.add_argument("out", nargs="?", help="the build directory (FLAGSERVE_DIR, build)")
    for option in OPTIONS:
        parser.add_argument(
            option.flag,
            dest=option.variable.lower(),
            metavar=option.metavar,
            type=_parsed(option.parse),
            help=f"{option.help} (FLAGSERVE_{option.variable})",
        )
    return parser


def _parsed(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: the value as given, once `parse` accepts it (the variable it is
    passed on as is parsed again by `Settings`)."""

    def parsed(value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return parsed


def hash_key(arguments: Sequence[str]) -> int:
    """`flagserve hash-key`: the SHA-256 (hex) of the key on stdin, without surrounding
    whitespace (as the server reads it from the Authorization header)."""
    if arguments:
        print("usage: flagserve hash-key < KEYFILE", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        secret = getpass.getpass("API key: ").strip().encode("utf-8")
    else:
        secret = sys.stdin.buffer.read().strip()
    if not secret:
        print("flagserve hash-key: error: no key on stdin", file=sys.stderr)
        return 2
    print(hashlib.sha256(secret).hexdigest())  # server.auth.digest, without its imports
    return 0
