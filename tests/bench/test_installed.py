"""bench/installed.py: the benches time processes whose modules are compiled to bytecode,
as an installed package's are, even where the environment says not to write it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "installed.py"


def _installed() -> ModuleType:
    spec = importlib.util.spec_from_file_location("installed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_is_compiled_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    package = tmp_path / "package"
    (package / "inner").mkdir(parents=True)
    modules = [package / "__init__.py", package / "inner" / "module.py"]
    for module in modules:
        module.write_text("VALUE = 1\n")
    _installed().compile_packages(tmp_path, ("package",))
    for module in modules:
        assert Path(importlib.util.cache_from_source(str(module))).is_file()


def test_a_module_that_does_not_compile_stops_the_bench(tmp_path: Path) -> None:
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "broken.py").write_text("def (\n")
    with pytest.raises(SystemExit, match="does not compile"):
        _installed().compile_packages(tmp_path, ("package",))
