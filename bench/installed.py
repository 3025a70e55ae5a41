"""Our modules as an installed gitflags has them: compiled to bytecode.

pip compiles each module it installs, and Python writes an editable install's bytecode on
the first import; with PYTHONDONTWRITEBYTECODE set (as on this machine) nothing is ever
written, and every `flagc` process a bench times would first compile our modules from
source: 0.08 s of each process at 10,000 flags' scale, a quarter of its imports. The
benches that time processes compile them once before they measure (stale bytecode is never
used: Python checks each file's against its source)."""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "compiler", "server")


def compile_packages(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> None:
    """Write the bytecode of every module of `packages` below `root`, as pip would."""
    for package in packages:
        if not compileall.compile_dir(root / package, quiet=1):
            raise SystemExit(f"{root / package} does not compile")
