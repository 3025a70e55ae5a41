"""The locks (requirements/*.lock): every package pinned to one version with its hashes, no
index, path or URL of this machine in them, every dependency pyproject.toml declares (and
the build's setuptools) inside its range, the runtime lock the dev lock's subset, this
environment installed from them, and the Makefile installing them with --require-hashes.
And the npm lock of the browser tests (tests/js): the same, installed by `npm ci`."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.delivery.helpers import make_rule

ROOT = Path(__file__).resolve().parents[2]
DEV, RUNTIME = ROOT / "requirements" / "dev.lock", ROOT / "requirements" / "runtime.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PIN = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[A-Za-z0-9._,-]+)\])?"
    r"==(?P<version>[^\s;\\]+)(?: ; (?P<marker>.+))?"
)
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    version: str
    marker: str | None
    hashes: frozenset[str]
    extras: frozenset[str] = frozenset()


def entries(text: str) -> Iterator[str]:
    """The lock's requirement lines with their continuations joined, comments left out."""
    logical = ""
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip() if line.lstrip().startswith("#") else line
        logical += code.removesuffix("\\").strip() + " "
        if not code.endswith("\\"):
            if logical.strip():
                yield logical.strip()
            logical = ""


def parse(text: str) -> dict[str, Pin]:
    """{canonical name: pin}; a line that is not `name==version [; marker]` followed by at
    least one sha256 hash (an option, an index, a path, a URL) fails the test."""
    pins: dict[str, Pin] = {}
    for entry in entries(text):
        requirement, _, rest = entry.partition(" --hash=")
        match = PIN.fullmatch(requirement.strip())
        assert match is not None, f"not a pinned requirement: {entry!r}"
        hashes = frozenset(HASH.findall("--hash=" + rest))
        assert hashes and len(hashes) == rest.count("--hash=") + 1, f"hashes of {entry!r}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{name} pinned twice"
        extras = frozenset(match["extras"].split(",")) if match["extras"] else frozenset()
        pins[name] = Pin(match["version"], match["marker"], hashes, extras)
    return pins


def lock(path: Path) -> dict[str, Pin]:
    return parse(path.read_text(encoding="utf-8"))


def declared(*extras: str) -> list[Requirement]:
    """pyproject.toml's dependencies, those of `extras` and the build's requirements."""
    found = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for extra in extras:
        found += PYPROJECT["project"]["optional-dependencies"][extra]
    return [Requirement(text) for text in found]


@pytest.mark.parametrize(
    "text",
    [
        "--index-url https://example.org/simple\n",
        "--extra-index-url file:///opt/pypi/simple\n",
        "-e /work/main\n",
        "pkg @ file:///opt/wheels/pkg-1.0-py3-none-any.whl\n",
        "pkg==1.0\n",  # no hash
        "pkg>=1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n",  # not one version
    ],
)
def test_what_a_lock_may_not_hold_is_refused(text: str) -> None:
    with pytest.raises(AssertionError):
        parse(text)


@pytest.mark.parametrize(
    ("path", "extras"), [(DEV, ("dev",)), (RUNTIME, ())], ids=["dev", "runtime"]
)
def test_the_lock_pins_every_declared_dependency_in_its_range(
    path: Path, extras: tuple[str, ...]
) -> None:
    pins = lock(path)
    for requirement in declared(*extras):
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement} is not in {path.name}"
        assert requirement.specifier.contains(pin.version, prereleases=True), (requirement, pin)


def test_the_runtime_lock_is_the_dev_locks_subset() -> None:
    """`make run` serves with what `make test` tested: the same versions, the same files."""
    dev = lock(DEV)
    for name, pin in lock(RUNTIME).items():
        assert dev.get(name) == pin, name


def test_the_locks_name_nothing_of_this_machine() -> None:
    for path in (DEV, RUNTIME):
        text = path.read_text(encoding="utf-8")
        assert "file:" not in text
        assert "://" not in text
        assert not re.search(r"(^|\s)/(tmp|opt|work|home|root)/", text), path


def closure(name: str, extras: frozenset[str]) -> dict[str, str]:
    """{canonical name: installed version} of `name` and every distribution it needs here
    (its requirements whose markers hold for this interpreter, with the extras asked for)."""
    found: dict[str, str] = {}
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        distribution = importlib.metadata.distribution(current)
        found[canonicalize_name(current)] = distribution.version
        for text in distribution.requires or []:
            requirement = Requirement(text)
            needed = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra})  # over this interpreter
                for extra in wanted or {""}
            )
            if needed and canonicalize_name(requirement.name) not in found:
                pending.append((requirement.name, frozenset(requirement.extras)))
    return found


@pytest.mark.skipif(
    bool(os.environ.get("GITFLAGS_UNLOCKED")),
    reason="installed without the locks (.github/workflows/drift.yml)",
)
def test_this_environment_is_what_the_dev_lock_pins() -> None:
    """Every distribution gitflags[dev] needs, as installed here, is pinned in the lock at
    that version: the tests ran on what a fresh clone installs."""
    pins = lock(DEV)
    installed = closure("gitflags", frozenset({"dev"}))
    installed.pop("gitflags")
    different = {
        name: (version, pins[name].version if name in pins else None)
        for name, version in installed.items()
        if name not in pins or pins[name].version != version
    }
    assert different == {}, "installed (left) is not what the lock pins (right): make setup"


def extras_asked(name: str, extras: frozenset[str]) -> dict[str, set[str]]:
    """{canonical name: the extras some distribution here asks of it} over the closure."""
    asked: dict[str, set[str]] = {}
    for current in closure(name, extras):
        for text in importlib.metadata.distribution(current).requires or []:
            requirement = Requirement(text)
            if requirement.extras and (
                requirement.marker is None or requirement.marker.evaluate({"extra": ""})
            ):
                asked.setdefault(canonicalize_name(requirement.name), set()).update(
                    requirement.extras
                )
    return asked


@pytest.mark.skipif(
    bool(os.environ.get("GITFLAGS_UNLOCKED")),
    reason="installed without the locks (.github/workflows/drift.yml)",
)
def test_the_dev_lock_pins_the_extras_asked_for() -> None:
    """pip's hash-checking mode (23.2, Python 3.11's own) refuses `coverage[toml]>=7.10.6`
    (asked by pytest-cov) unless the lock pins `coverage[toml]==...`: a fresh clone's
    `make setup` failed so. `make lock` keeps extras (uv's --no-strip-extras)."""
    pins = lock(DEV)
    for name, extras in extras_asked("gitflags", frozenset({"dev"})).items():
        assert extras <= pins[name].extras, (name, extras, pins[name].extras)


def test_make_installs_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\)$", makefile, re.MULTILINE)
    assert re.search(r"^\$\(RUNTIME_STAMP\): pyproject\.toml \$\(RUNTIME_LOCK\)$", makefile, re.M)
    assert "install --quiet --require-hashes -r $(1)" in makefile
    assert "install --quiet --no-deps --no-build-isolation -e ." in makefile
    assert make_rule("run")[0] == ["setup-runtime"]
    assert make_rule("setup")[0] == ["$(STAMP)", "graphviz", "$(JS_STAMP)"]
    assert make_rule("setup-runtime")[0] == ["$(RUNTIME_STAMP)", "graphviz"]


JS = ROOT / "tests" / "js"


def test_the_npm_lock_pins_what_package_json_declares_with_integrity_and_no_url() -> None:
    """Each package one version with its sha512 integrity, the ones package.json names at
    exactly its version, and no address: `npm ci` fetches from whatever registry npm is
    configured with (tests/js/.npmrc keeps npm from writing one in)."""
    declared_js = json.loads((JS / "package.json").read_text(encoding="utf-8"))["dependencies"]
    text = (JS / "package-lock.json").read_text(encoding="utf-8")
    locked = json.loads(text)
    assert locked["lockfileVersion"] == 3
    packages = {
        path.removeprefix("node_modules/"): entry
        for path, entry in locked["packages"].items()
        if path  # "" is the project itself
    }
    assert packages, "an empty npm lock"
    for name, entry in packages.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"]), (name, entry)
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", entry["integrity"]), (name, entry)
        assert "resolved" not in entry, name
    for name, version in declared_js.items():
        assert packages[name]["version"] == version, name
    assert locked["packages"][""]["dependencies"] == declared_js
    assert "://" not in text and "file:" not in text
    assert (JS / ".npmrc").read_text(encoding="utf-8") == "omit-lockfile-registry-resolved=true\n"


def test_make_installs_the_npm_lock_with_npm_ci() -> None:
    prerequisites, recipe = make_rule("$(JS_STAMP)")
    assert prerequisites == ["$(JS)/package-lock.json"]
    assert "npm ci --no-audit --no-fund --ignore-scripts" in " ".join(recipe)
