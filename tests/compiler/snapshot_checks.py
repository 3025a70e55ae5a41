"""The one judge of a snapshot's bytes (`check_snapshot`: canonical JSON, the schema, and
what each flag's content means, compared with its source file when given), and FULL_TREE,
every way a flag can be declared. Used by every test that builds a snapshot."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import yaml

from tests.conftest import PROJECT

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "snapshot.schema.json"
SOURCES = {"environment-application", "environment", "application", "default"}
SHA = re.compile(r"^[0-9a-f]{40}(-dirty)?$")
CONTENT = re.compile(r"^content-[0-9a-f]{12}$")

# Every way a flag can be declared, in sub-folders, with dependencies that hold.
FULL_TREE: dict[str, str] = {
    "_project.yaml": PROJECT,
    "platform/event-bus.yaml": (
        "description: The new event bus\nowner: platform\nenabled: true\ntags: [infra, core]\n"
    ),
    "platform/logging.yaml": (
        "description: Structured logging — überall\n"
        "owner: platform@example.com\n"
        "enabled: true\n"
        "environments:\n"
        "  production: true\n"
    ),
    "checkout/new-checkout.yaml": (
        "description: The redesigned checkout\n"
        "owner: checkout\n"
        "enabled: false\n"
        "depends_on:\n"
        "  - event-bus\n"
        "  - logging\n"
        "environments:\n"
        "  development: true\n"
        "  staging:\n"
        "    enabled: true\n"
        "    applications:\n"
        "      android: false\n"
        "  production:\n"
        "    applications:\n"
        "      web: true\n"
        "expires: 2099-12-31\n"
    ),
    "checkout/payments/apple-pay.yaml": (
        "description: Apple Pay at checkout\n"
        "owner: payments\n"
        "enabled: false\n"
        "depends_on: [new-checkout]\n"
        "applications:\n"
        "  ios: true\n"
        "environments:\n"
        "  development:\n"
        "    applications:\n"
        "      web: true\n"
        "  staging:\n"
        "    enabled: false\n"
        "  production: false\n"
        "tags: [payments]\n"
    ),
    "growth/banner.yaml": (
        "description: Free shipping banner\n"
        "owner: growth\n"
        "enabled: true\n"
        "applications:\n"
        "  android: false\n"
        "environments:\n"
        "  production: false\n"
    ),
}


def canonical(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no white space, UTF-8, a final newline: what the snapshot must be."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def expected_cell(flag: Mapping[str, Any], environment: str, application: str | None) -> Any:
    """The value and source the format promises, worked out here independently of resolve."""
    override = flag["environments"].get(environment)
    if isinstance(override, dict) and application in override.get("applications", {}):
        return override["applications"][application], "environment-application"
    if isinstance(override, bool):
        return override, "environment"
    if isinstance(override, dict) and "enabled" in override:
        return override["enabled"], "environment"
    if application is not None and application in flag["applications"]:
        return flag["applications"][application], "application"
    return flag["enabled"], "default"


def load_schema_validator() -> jsonschema.Draft202012Validator | None:
    if not SCHEMA_PATH.is_file():
        return None
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def check_snapshot(data: bytes, tree: Path | None = None) -> dict[str, Any]:
    """Judge the bytes of a snapshot (against the schema too, once it exists); returns it.

    With `tree` (the flags folder it was built from), each flag is also compared with its
    source file.
    """
    assert data.endswith(b"\n")
    document: dict[str, Any] = json.loads(data.decode("utf-8"))
    assert data == canonical(document), "not canonical JSON (sorted keys, no white space)"
    validator = load_schema_validator()
    if validator is not None:
        errors = [error.message for error in validator.iter_errors(document)]
        assert not errors, errors
    assert document["format"] == 3
    environments, applications = document["environments"], document["applications"]
    flags: dict[str, Any] = document["flags"]
    for key, flag in flags.items():
        _check_flag(key, flag, environments, applications, flags)
        if tree is not None:
            _compare_with_source(flag, tree)
    _check_dependents(flags)
    # The digest covers the canonical bytes of all but digest and revision (whether with the
    # file's final newline or not is the emitter's choice), so it is a function of content.
    without = canonical({k: v for k, v in document.items() if k not in ("digest", "revision")})
    digests = {hashlib.sha256(body).hexdigest() for body in (without, without[:-1])}
    assert document["digest"].removeprefix("sha256:") in digests
    digest = document["digest"].removeprefix("sha256:")
    revision = document["revision"]
    assert SHA.match(revision) or revision == f"content-{digest[:12]}", revision
    return document


def _check_flag(
    key: str,
    flag: Mapping[str, Any],
    environments: list[str],
    applications: list[str],
    flags: Mapping[str, Any],
) -> None:
    assert flag["key"] == key
    file = PurePosixPath(flag["file"])
    assert not file.is_absolute()
    assert ".." not in file.parts
    assert file.suffix == ".yaml"
    assert file.stem == key
    resolved = flag["resolved"]
    assert list(resolved) == sorted(environments)
    boolean = flag["type"] == "boolean"
    for environment in environments:
        row = resolved[environment]
        assert set(row) == {"variant", "value", "source", "rules", "applications"}
        assert set(row["applications"]) <= set(applications)
        for listed in row["applications"].values():  # only the cells that differ are listed
            assert (listed["variant"], listed["source"]) != (row["variant"], row["source"])
        for application in [None, *applications]:
            cell = cell_of(row, application)
            assert cell["source"] in SOURCES
            assert cell["value"] == flag["variants"][cell["variant"]]
            if boolean and not row["rules"]:
                assert set(cell) >= {"variant", "value", "source"}
                found = (cell["value"], cell["source"])
                assert found == expected_cell(flag, environment, application)
    for dependency in flag["depends_on"]:  # a built snapshot has no dependency-disabled cell
        other = flags[dependency]
        if other["rules"] or flag["rules"] or not boolean or other["type"] != "boolean":
            continue  # rules: checked by tests/compiler/test_dependencies
        for environment, row in resolved.items():
            assert other["resolved"][environment]["value"] or not row["value"], (key, dependency)
            for application in applications:
                on = cell_of(other["resolved"][environment], application)["value"]
                cell = cell_of(row, application)
                assert on or not cell["value"], (key, dependency, environment, application)


def cell_of(row: Mapping[str, Any], application: str | None) -> Mapping[str, Any]:
    """A row's cell for `application` (None: the environment's), as format 3 says: an
    application the row does not list has the environment's cell."""
    found: Mapping[str, Any] = row
    if application is not None:
        found = row["applications"].get(application, row)
    return {name: found[name] for name in ("variant", "value", "source")}


def _check_dependents(flags: Mapping[str, Any]) -> None:
    reverse: dict[str, list[str]] = {key: [] for key in flags}
    for key in sorted(flags):
        for dependency in flags[key]["depends_on"]:
            reverse[dependency].append(key)
    for key, flag in flags.items():
        assert flag["dependents"] == reverse[key], key


def _compare_with_source(flag: Mapping[str, Any], tree: Path) -> None:
    source = tree / flag["file"]
    assert source.is_file(), source
    declared = yaml.safe_load(source.read_text(encoding="utf-8"))
    assert flag["description"] == declared["description"]
    assert flag["owner"] == declared["owner"]
    assert flag["enabled"] is declared.get("enabled")
    assert flag["environments"] == declared.get("environments", {})
    assert flag["applications"] == declared.get("applications", {})
    assert flag["depends_on"] == declared.get("depends_on", [])
    assert flag["tags"] == declared.get("tags", [])
    expires = declared.get("expires")
    assert flag["expires"] == (None if expires is None else str(expires))
