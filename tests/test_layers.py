"""The layers point one way (docs/architecture.md): `core` imports neither `compiler` nor
`server`; `compiler` and `server` import `core` and never each other; a flagserve worker
never imports the compiler (nor jsonschema); and nothing imports GitPython, which is no
dependency: flagc runs the git CLI itself (`compiler.git_repository`).

Two checks per side, since each misses what the other sees: every import statement of every
module, read from its source (imports inside functions and under TYPE_CHECKING included,
which importing the module would not run), and every module really imported in a fresh
interpreter, its `sys.modules` inspected afterwards (an import made by a third-party module
or through importlib included).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main as flagc
from tests.conftest import write_tree
from tests.server.conftest import FLAGS, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "compiler", "server")
FORBIDDEN = {  # package: the packages it must never import
    "core": ("compiler", "server"),
    "compiler": ("server",),
    "server": ("compiler",),
}
GITPYTHON = ("git", "gitdb")  # GitPython and the object database it loads


def modules_of(package: str) -> list[str]:
    """Every module of `package`, by dotted name, sorted (its `__main__` left out: running
    it is running the program)."""
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import statement in the file, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def top(name: str) -> str:
    return name.partition(".")[0]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_statement_crosses_the_layers(package: str) -> None:
    """Read from the source, so that an import inside a function counts too."""
    crossing = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in imported_names(path)
        if top(name) in FORBIDDEN[package]
    ]
    assert not crossing, "\n".join(crossing)


# Imports every module given on the command line, in order, and prints, as JSON, which
# module first brought each watched top-level package into sys.modules.
_IMPORT_ALL = """
import importlib, json, sys
watched = set(sys.argv[1].split(","))
first = {}
for name in sys.argv[2:]:
    importlib.import_module(name)
    for found in {m.partition(".")[0] for m in sys.modules} & watched:
        first.setdefault(found, name)
print(json.dumps(first))
"""


def first_importers(modules: list[str], watched: tuple[str, ...]) -> dict[str, str]:
    """{watched package: the module whose import brought it in}, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, ",".join(watched), *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, str] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_every_module_loads_no_other_side(package: str) -> None:
    modules = modules_of(package)
    assert len(modules) > 5  # the listing found the package
    found = first_importers(modules, FORBIDDEN[package])
    assert found == {}, f"{package} imports what it must not (package: by module): {found}"


def test_no_module_imports_gitpython() -> None:
    """`compiler.git_repository` runs the git CLI through subprocess: importing GitPython
    took ~40 ms of every flagc process that read the history. It is no dependency any more
    (an environment made before may still hold it, where an import would go unnoticed)."""
    importers = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if any(top(name) in GITPYTHON for _, name in imported_names(path))
    )
    assert importers == []


# Put on a flagserve's PYTHONPATH: every process of it (the gunicorn master and each worker,
# forked from it) writes the modules it holds when it exits, to <pid>.json.
_SITECUSTOMIZE = """
import atexit, json, os, sys

def _dump():
    where = os.path.join(os.environ["GITFLAGS_MODULES_DIR"], f"{os.getpid()}.json")
    with open(where, "w") as out:
        json.dump(sorted(sys.modules), out)

atexit.register(_dump)
"""
ROUTES = (
    "/readyz", "/api/v1/snapshot", "/api/v1/flags", "/api/v1/flags/banner",
    "/api/v1/flags/banner/audit", "/api/v1/audit", "/api/v1/environments/production/flags",
    "/api/v1/environments/production/flagd.json", "/openapi.json", "/", "/flags/banner",
)  # fmt: skip


def test_a_flagserve_worker_imports_neither_the_compiler_nor_jsonschema(tmp_path: Path) -> None:
    """A real flagserve (gunicorn, 2 workers) serving a real build, asked every kind of
    route on new connections (so that both workers answer some); then each worker's
    modules, as it had them when it exited."""
    flags = write_tree(tmp_path / "flags", FLAGS)
    assert flagc(["build", str(flags), "-o", str(tmp_path / "out")]) == 0
    hooks, dumps = tmp_path / "hooks", tmp_path / "modules"
    write_tree(hooks, {"sitecustomize.py": _SITECUSTOMIZE})
    dumps.mkdir()
    env = {"PYTHONPATH": str(hooks), "GITFLAGS_MODULES_DIR": str(dumps)}
    live = start_server(tmp_path / "out", tmp_path / "flagserve.log", env)
    try:
        for _ in range(4):
            for route in ROUTES:
                assert live.get(route).status_code == 200, route
            context = {"context": {"environment": "production"}}
            assert live.post("/ofrep/v1/evaluate/flags", json=context).status_code == 200
        master = live.process.pid
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    finally:
        stop_server(live)
    assert len(workers) == 2
    # jsonschema: the server checks a build with `core.verify`'s own rules, and loading the
    # full validator cost each worker ~50 modules and 3 MB for nothing.
    watched = {"compiler", "jsonschema"}
    for pid in [*workers, str(master)]:
        held = json.loads((dumps / f"{pid}.json").read_text())
        assert "server.wsgi" in held  # the dump is a flagserve's
        assert sorted({top(name) for name in held} & watched) == [], pid


# --- the tests' own layers -------------------------------------------------------------------

TESTS = ROOT / "tests"


def imported_test_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every test module (`test_*`) the source imports, in any spelling:
    `import tests.x.test_y`, `from tests.x.test_y import f`, `from tests.x import test_y`,
    `from .test_y import f`. What tests share lives in conftest.py or a helpers module: a
    test module imported elsewhere runs its tests twice and hides what depends on what."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = [module]
            if not _names_a_test_module(module):  # `from tests.x import test_y`
                names = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if _names_a_test_module(name)]
    return sorted(set(found))


def _names_a_test_module(name: str) -> bool:
    return any(part.startswith("test_") for part in name.split("."))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from tests.server.test_live import running\n", ["tests.server.test_live"]),
        ("import tests.delivery.test_workflows\n", ["tests.delivery.test_workflows"]),
        ("from tests.server import test_dashboard\n", ["tests.server.test_dashboard"]),
        ("from .test_export import tree\n", [".test_export"]),
        ("def f():\n    from tests.compiler.test_audit import X\n", ["tests.compiler.test_audit"]),
        ("from tests.server.helpers import running\n", []),
        ("from tests.server.conftest import Built\n", []),
        ("import pytest\nfrom tests.server import helpers\n", []),
    ],
)  # fmt: skip
def test_an_import_of_a_test_module_is_found(source: str, expected: list[str]) -> None:
    assert [name for _, name in imported_test_modules(source)] == expected


def test_no_test_module_imports_another() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted(TESTS.rglob("test_*.py"))
        for line, name in imported_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert not found, "move what they share into conftest.py or a helpers module:\n" + "\n".join(
        found
    )
