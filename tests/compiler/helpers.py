"""Helpers shared by the compiler's tests: flagc run in process, plans of two trees, the
validators of the plan and flagd schemas, flag files parsed in memory, and the banner flag
file the incremental build's and `flagc watch`'s tests change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compiler import publish
from compiler.cli import main
from compiler.load import Loaded, SourceFile
from compiler.pipeline import Compiled, compile_tree
from compiler.plan import Label, Plan, plan
from compiler.validate import FlagFile, validate
from compiler.yamlsource import Parsed, parse
from tests.conftest import write_tree


def documented(out: Path) -> dict[str, bytes]:
    """Every file a reader of OUT sees through the documented paths, by its path below OUT."""
    paths = [out / publish.SNAPSHOT, out / publish.AUDIT, *sorted((out / publish.FLAGD).glob("*"))]
    return {str(path.relative_to(out)): path.read_bytes() for path in paths}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`flagc argv` in process: its exit code, stdout and stderr, never a traceback."""
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def compiled(root: Path, files: dict[str, str]) -> Compiled:
    """`files` written below `root` and compiled, shown as if the folder were `flags`."""
    return compile_tree(write_tree(root, files), display_root="flags")


def plan_of(
    tmp_path: Path,
    base: dict[str, str],
    head: dict[str, str],
    *,
    head_name: str = "HEAD",
) -> Plan:
    """The plan from the tree `base` to the tree `head` (named `head_name`), each compiled
    below tmp_path."""
    return plan(
        compiled(tmp_path / "base", base),
        compiled(tmp_path / "head", head),
        head_label=Label(head_name),
    )


PLAN_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json"
FLAGD_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "flagd.schema.json"
# A validator of schemas/flagd.schema.json, the subset of flagd's definitions flagc writes.
VALIDATOR = jsonschema.Draft202012Validator(json.loads(FLAGD_SCHEMA.read_text(encoding="utf-8")))


def plan_validator() -> jsonschema.Draft202012Validator:
    """A validator of schemas/plan.schema.json, the contract of `flagc diff --format json`."""
    schema = json.loads(PLAN_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def flag_files(tree: dict[str, dict[str, Any]]) -> dict[str, FlagFile]:
    """Valid flag documents by key, parsed and validated in memory as `flags/KEY.yaml` (as
    JSON, which is YAML, so that shared values make no aliases)."""
    documents = []
    for key, flag in tree.items():
        parsed = parse(json.dumps(flag, indent=1), f"{key}.yaml")
        assert isinstance(parsed, Parsed), parsed
        documents.append(SourceFile(f"flags/{key}.yaml", parsed.data, parsed.source, key))
    validated = validate(Loaded(flags=documents))
    assert validated.diagnostics == []
    return validated.flags


# A flag file the incremental build's and flagc watch's tests both change
BANNER = """\
description: Free shipping banner
owner: marketing
enabled: false
environments:
  development: true
  production:
    rules:
      - rollout: {on: 20, off: 80}
        seed: banner-2027
"""
BANNER_IOS = BANNER + "applications:\n  ios: true\n"
