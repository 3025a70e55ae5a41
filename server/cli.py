"""`flagserve [OUT]`: serve a build of flagc with gunicorn. Exit 2 when there is no good
build to serve."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gunicorn.app.wsgiapp import run  # type: ignore[import-untyped]

from server.store import SnapshotError, load


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flagserve", description=__doc__)
    parser.add_argument("out", nargs="?", default=os.environ.get("FLAGSERVE_DIR", "build"))
    parser.add_argument("--bind", help="HOST:PORT (FLAGSERVE_BIND, default 127.0.0.1:8000)")
    parser.add_argument("--workers", type=int, help="FLAGSERVE_WORKERS (default 2)")
    parser.add_argument("--threads", type=int, help="FLAGSERVE_THREADS (default 8)")
    args = parser.parse_args(argv)
    try:
        load(Path(args.out))
    except SnapshotError as exc:
        print(f"flagserve: error: {exc}", file=sys.stderr)
        return 2
    os.environ["FLAGSERVE_DIR"] = args.out
    for option in ("bind", "workers", "threads"):
        if getattr(args, option) is not None:
            os.environ[f"FLAGSERVE_{option.upper()}"] = str(getattr(args, option))
    sys.argv = ["flagserve", "-c", "python:server.gunicorn_conf", "server.wsgi:app"]
    run()
    return 0
