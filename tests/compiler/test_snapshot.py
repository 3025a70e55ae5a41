"""The snapshot `flagc build` writes: its schema and what its content means.

`check_snapshot` (tests/compiler/snapshot_checks.py) is the one place that judges a
snapshot; every test that builds one calls it, so each build is checked the same way.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from compiler.cli import main
from tests.compiler.snapshot_checks import (
    FULL_TREE,
    SCHEMA_PATH,
    cell_of,
    check_snapshot,
    load_schema_validator,
)
from tests.conftest import PROJECT, write_tree

EMPTY_APPLICATIONS_TREE: dict[str, str] = {
    "_project.yaml": "environments: [production]\napplications: []\n",
    "solo.yaml": "description: Alone\nowner: me\nenabled: true\n",
}

NO_FLAGS_TREE: dict[str, str] = {"_project.yaml": PROJECT}

TREES: dict[str, dict[str, str]] = {
    "full": FULL_TREE,
    "no-applications": EMPTY_APPLICATIONS_TREE,
    "no-flags": NO_FLAGS_TREE,
}


def build(tree: Path, out: Path) -> bytes:
    """`flagc build tree -o out`, in process; the snapshot's bytes."""
    assert main(["build", str(tree), "-o", str(out)]) == 0
    return (out / "snapshot.json").read_bytes()


@pytest.mark.parametrize("name", sorted(TREES))
def test_snapshot_follows_its_schema(name: str, tmp_path: Path) -> None:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"{SCHEMA_PATH.name} does not exist yet: nothing to validate against")
    validator = load_schema_validator()
    assert validator is not None
    tree = write_tree(tmp_path / "flags", TREES[name])
    document = json.loads(build(tree, tmp_path / "out"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors


def test_schema_is_not_vacuous(tmp_path: Path) -> None:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"{SCHEMA_PATH.name} does not exist yet: nothing to validate against")
    validator = load_schema_validator()
    assert validator is not None
    tree = write_tree(tmp_path / "flags", FULL_TREE)
    document = json.loads(build(tree, tmp_path / "out"))
    assert validator.is_valid(document)
    assert not validator.is_valid({})
    broken = json.loads(json.dumps(document))
    broken["flags"]["banner"]["resolved"]["production"]["source"] = "somewhere"
    assert not validator.is_valid(broken)
    broken = json.loads(json.dumps(document))
    del broken["flags"]["banner"]["resolved"]
    assert not validator.is_valid(broken)


@pytest.mark.parametrize("name", sorted(TREES))
def test_snapshot_content(name: str, tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "flags", TREES[name])
    document = check_snapshot(build(tree, tmp_path / "out"), tree)
    assert sorted(document["flags"]) == sorted(
        PurePosixPath(path).stem for path in TREES[name] if path != "_project.yaml"
    )


def test_resolved_values_by_hand(tmp_path: Path) -> None:
    """A few cells worked out by reading the files, one per source."""
    tree = write_tree(tmp_path / "flags", FULL_TREE)
    flags = check_snapshot(build(tree, tmp_path / "out"))["flags"]

    def cell(key: str, environment: str, application: str | None = None) -> tuple[bool, str]:
        found = cell_of(flags[key]["resolved"][environment], application)
        return found["value"], found["source"]

    assert cell("new-checkout", "development") == (True, "environment")
    assert cell("new-checkout", "development", "ios") == (True, "environment")
    assert cell("new-checkout", "staging", "android") == (False, "environment-application")
    assert cell("new-checkout", "staging", "web") == (True, "environment")
    assert cell("new-checkout", "production") == (False, "default")
    assert cell("new-checkout", "production", "web") == (True, "environment-application")
    assert cell("new-checkout", "production", "ios") == (False, "default")
    assert cell("apple-pay", "development", "web") == (True, "environment-application")
    assert cell("apple-pay", "development", "ios") == (True, "application")
    assert cell("apple-pay", "development") == (False, "default")
    # Format 3 lists only the applications whose cell is not the environment's.
    listed = {
        environment: sorted(row["applications"])
        for environment, row in flags["new-checkout"]["resolved"].items()
    }
    assert listed["development"] == []
    assert "android" in listed["staging"] and "web" not in listed["staging"]
    assert listed["production"] == ["web"]
    assert cell("apple-pay", "staging", "ios") == (False, "environment")
    assert cell("banner", "staging", "android") == (False, "application")
    assert cell("banner", "production", "web") == (False, "environment")


def test_dependents_and_files(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "flags", FULL_TREE)
    flags = check_snapshot(build(tree, tmp_path / "out"))["flags"]
    assert flags["event-bus"]["dependents"] == ["new-checkout"]
    assert flags["logging"]["dependents"] == ["new-checkout"]
    assert flags["new-checkout"]["dependents"] == ["apple-pay"]
    assert flags["apple-pay"]["dependents"] == []
    assert flags["apple-pay"]["file"] == "checkout/payments/apple-pay.yaml"
    assert flags["banner"]["file"] == "growth/banner.yaml"
    assert flags["event-bus"]["expires"] is None
    assert flags["new-checkout"]["expires"] == "2099-12-31"
    assert flags["logging"]["description"] == "Structured logging — überall"
