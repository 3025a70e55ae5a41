"""The plan of a change, as a pure function of two compiled trees written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.changes import FieldChange
from compiler.plan import FlagChange, Label, plan
from compiler.render.plan_text import render
from tests.compiler.helpers import compiled, plan_of
from tests.conftest import PROJECT

A = "description: A\nowner: team-a\nenabled: false\n"
B = "description: B\nowner: team-b\nenabled: true\n"
BASE = {"_project.yaml": PROJECT, "team/a.yaml": A, "team/b.yaml": B}
CELLS = [
    f"{environment}{suffix}"
    for environment in ("development", "staging", "production")
    for suffix in ("", "/web", "/ios", "/android")
]


def values(change: FlagChange) -> list[str]:
    return [f"{v.cell}: {_state(v.before)} -> {_state(v.after)}" for v in change.values]


def _state(value: bool | None) -> str:
    return "absent" if value is None else "on" if value else "off"


def without(files: dict[str, str], *paths: str) -> dict[str, str]:
    return {path: text for path, text in files.items() if path not in paths}


FIELDS = ["description", "owner", "enabled"]  # all of A and B, each added or removed whole

# Each case: HEAD's files, then per changed flag (kind, base path, head path, changed field
# paths, value changes).
Expected = dict[str, tuple[str, str | None, str | None, list[str], list[str]]]
CASES: dict[str, tuple[dict[str, str], Expected]] = {
    "add": (
        {**BASE, "new/c.yaml": "description: C\nowner: me\nenabled: true\n"},
        {
            "c": (
                "added",
                None,
                "new/c.yaml",
                FIELDS,
                [f"{cell}: absent -> on" for cell in CELLS],
            )
        },
    ),
    "remove": (
        without(BASE, "team/b.yaml"),
        {
            "b": (
                "removed",
                "team/b.yaml",
                None,
                FIELDS,
                [f"{cell}: on -> absent" for cell in CELLS],
            )
        },
    ),
    "move between folders": (
        {**without(BASE, "team/a.yaml"), "other/deep/a.yaml": A},
        {"a": ("moved", "team/a.yaml", "other/deep/a.yaml", [], [])},
    ),
    "field change": (
        {**BASE, "team/a.yaml": A.replace("description: A", "description: A, better")},
        {"a": ("changed", "team/a.yaml", "team/a.yaml", ["description"], [])},
    ),
    "environment override turns production/web on": (
        {
            **BASE,
            "team/a.yaml": A + "environments:\n  production:\n    applications:\n      web: true\n",
        },
        {
            "a": (
                "changed",
                "team/a.yaml",
                "team/a.yaml",
                ["environments.production.applications.web"],
                ["production/web: off -> on"],
            )
        },
    ),
    "project adds an environment": (
        {**BASE, "_project.yaml": PROJECT.replace("staging,", "staging, qa,")},
        {
            "a": (
                "changed",
                "team/a.yaml",
                "team/a.yaml",
                [],
                [f"qa{suffix}: absent -> off" for suffix in ("", "/web", "/ios", "/android")],
            ),
            "b": (
                "changed",
                "team/b.yaml",
                "team/b.yaml",
                [],
                [f"qa{suffix}: absent -> on" for suffix in ("", "/web", "/ios", "/android")],
            ),
        },
    ),
    "renamed key is removed and added": (
        {**without(BASE, "team/a.yaml"), "team/a2.yaml": A},
        {
            "a": (
                "removed",
                "team/a.yaml",
                None,
                FIELDS,
                [f"{cell}: off -> absent" for cell in CELLS],
            ),
            "a2": (
                "added",
                None,
                "team/a2.yaml",
                FIELDS,
                [f"{cell}: absent -> off" for cell in CELLS],
            ),
        },
    ),
    "nothing": (dict(BASE), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_change_kinds(case: str, tmp_path: Path) -> None:
    head, expected = CASES[case]
    result = plan_of(tmp_path, BASE, head)
    got = {
        change.key: (
            change.kind,
            change.base_path,
            change.head_path,
            [field.path for field in change.fields],
            values(change),
        )
        for change in result.flags
    }
    assert got == expected
    assert (result.base.errors, result.head.errors) == (0, 0)
    assert result.values_compared
    assert result.empty == (not expected)


def test_field_changes_say_from_and_to(tmp_path: Path) -> None:
    base = {**BASE, "team/a.yaml": A + "environments:\n  production: true\ntags: [x]\n"}
    head = {
        **BASE,
        "team/a.yaml": A.replace("team-a", "team-z")
        + "environments:\n  production:\n    enabled: false\n    applications:\n      web: true\n"
        "expires: 2030-01-01\n",
    }
    (change,) = plan_of(tmp_path, base, head).flags
    assert change.fields == (
        FieldChange("owner", "team-a", "team-z"),
        FieldChange("environments.production", True, None),
        FieldChange("environments.production.enabled", None, False),
        FieldChange("environments.production.applications.web", None, True),
        FieldChange("tags", ["x"], None),
        FieldChange("expires", None, "2030-01-01"),
    )
    assert values(change) == [
        "production: on -> off",
        "production/ios: on -> off",
        "production/android: on -> off",
    ]


def test_moved_and_changed_is_moved_with_its_fields(tmp_path: Path) -> None:
    head = {**without(BASE, "team/b.yaml"), "elsewhere/b.yaml": B.replace("true", "false")}
    (change,) = plan_of(tmp_path, BASE, head).flags
    assert (change.kind, change.base_path, change.head_path) == (
        "moved",
        "team/b.yaml",
        "elsewhere/b.yaml",
    )
    assert change.fields == (FieldChange("enabled", True, False),)
    assert len(change.values) == 12


def test_project_change_and_order(tmp_path: Path) -> None:
    """Environments follow HEAD's order, then those only BASE had; cells inside an
    environment come without application first."""
    head_project = "environments: [production, qa]\napplications: [android, web, tv]\n"
    result = plan_of(tmp_path, BASE, {**BASE, "_project.yaml": head_project})
    assert result.environments == ("production", "qa", "development", "staging")
    assert result.applications == ("android", "web", "tv", "ios")
    assert result.project.environments_added == ("qa",)
    assert result.project.environments_removed == ("development", "staging")
    assert result.project.applications_added == ("tv",)
    assert result.project.applications_removed == ("ios",)
    b = next(change for change in result.flags if change.key == "b")
    assert values(b)[:3] == [
        "production/tv: absent -> on",
        "production/ios: on -> absent",
        "qa: absent -> on",
    ]
    assert values(b)[-1] == "staging/ios: on -> absent"
    summary = {row.environment: row for row in result.by_environment()}
    assert (summary["qa"].changes, summary["qa"].on, summary["qa"].off) == (8, 4, 0)
    assert (summary["staging"].on, summary["staging"].off) == (0, 4)


def test_summary_counts(tmp_path: Path) -> None:
    head = {
        "_project.yaml": PROJECT,
        "moved/a.yaml": A,
        "team/c.yaml": A.replace("A", "C") + "environments:\n  production: true\n",
    }
    result = plan_of(tmp_path, {**BASE, "team/d.yaml": A}, head)
    assert [(c.key, c.kind) for c in result.flags] == [
        ("a", "moved"),
        ("b", "removed"),
        ("c", "added"),
        ("d", "removed"),
    ]
    assert [result.count(kind) for kind in ("added", "removed", "moved", "changed")] == [1, 2, 1, 0]
    production = result.by_environment()[2]
    assert production.environment == "production"
    # b was on (4 cells), d off (4 cells), c appears on (4 cells).
    assert (production.changes, production.on, production.off) == (12, 4, 4)


def test_missing_base_adds_everything(tmp_path: Path) -> None:
    result = plan(None, compiled(tmp_path / "head", BASE), base_label=Label("main", "f" * 40))
    assert (result.base.exists, result.base.name, result.base.commit) == (False, "main", "f" * 40)
    assert [(c.key, c.kind) for c in result.flags] == [("a", "added"), ("b", "added")]
    assert result.project.environments_added == ("development", "staging", "production")
    assert sum(row.changes for row in result.by_environment()) == 24


def test_missing_head_removes_everything(tmp_path: Path) -> None:
    result = plan(compiled(tmp_path / "base", BASE), None)
    assert [(c.key, c.kind) for c in result.flags] == [("a", "removed"), ("b", "removed")]
    assert not result.head.exists


def test_a_broken_file_is_not_called_removed(tmp_path: Path) -> None:
    head = {**BASE, "team/a.yaml": "description: A\nowner: team-a\nenabeld: false\n"}
    result = plan_of(tmp_path, BASE, head)
    assert result.flags == ()
    (item,) = result.unreadable
    assert (item.key, item.side, item.file) == ("a", "head", "flags/team/a.yaml")
    assert result.head.errors == 2  # the misspelt field, and `enabled` missing
    assert result.base.errors == 0
    assert not result.empty
    # And the other way round: fixed at HEAD, broken at BASE.
    reverse = plan(compiled(tmp_path / "head", head), compiled(tmp_path / "base", BASE))
    assert [(item.key, item.side) for item in reverse.unreadable] == [("a", "base")]


def test_a_flag_with_a_dependency_error_is_still_compared(tmp_path: Path) -> None:
    head = {
        **BASE,
        "team/a.yaml": "description: A\nowner: team-a\nenabled: true\ndepends_on: [c]\n",
        "team/c.yaml": "description: C\nowner: me\nenabled: false\n",
    }
    result = plan_of(tmp_path, BASE, head)
    assert result.head.errors > 0
    assert [(c.key, c.kind) for c in result.flags] == [("a", "changed"), ("c", "added")]
    assert result.unreadable == ()


def test_invalid_project_compares_fields_but_not_values(tmp_path: Path) -> None:
    head = {**BASE, "_project.yaml": "environments: []\n", "team/a.yaml": A.replace("A", "A2")}
    result = plan_of(tmp_path, BASE, head)
    assert not result.values_compared
    assert not result.head.project_valid
    assert not result.project
    (change,) = result.flags
    assert change.fields == (FieldChange("description", "A", "A2"),)
    assert change.values == ()


def test_same_values_from_another_source_are_no_change(tmp_path: Path) -> None:
    head = {**BASE, "team/b.yaml": B + "environments:\n  production: true\n"}
    (change,) = plan_of(tmp_path, BASE, head).flags
    assert [field.path for field in change.fields] == ["environments.production"]
    assert change.values == ()


def test_plan_is_deterministic(tmp_path: Path) -> None:
    """Flags come sorted by key whatever their folders, and the same trees give the same plan."""
    base = {f"g{i % 3}/f{i}.yaml": A for i in range(20)} | {"_project.yaml": PROJECT}
    head = {path: B for path in base} | {"_project.yaml": PROJECT}
    first = plan_of(tmp_path / "first", base, head)
    assert first == plan_of(tmp_path / "second", base, head)
    assert [change.key for change in first.flags] == sorted(f"f{i}" for i in range(20))


TYPED = """description: Colour
owner: team-a
type: string
variants: {blue: "#1", green: "#2", red: "#3"}
default: blue
off: blue
environments:
  development: green
  staging: green
"""
NO_OFF = TYPED.replace("off: blue\n", "")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(
            TYPED.replace("development: green", "development: red"),
            {"development": (4, 0, 0)},
            id="another-variant-is-a-change",
        ),
        pytest.param(
            TYPED.replace("staging: green", "staging: blue"), {"staging": (4, 0, 4)}, id="to-off"
        ),
        pytest.param(TYPED + "  production: green\n", {"production": (4, 4, 0)}, id="from-off"),
        pytest.param(
            NO_OFF + "  production: green\n",
            {"production": (4, 0, 0)},
            id="never-off-without-an-off-variant",
        ),
    ],
)
def test_typed_values_turn_on_and_off_against_the_off_variant(
    tmp_path: Path, head: str, expected: dict[str, tuple[int, int, int]]
) -> None:
    base = NO_OFF if "off:" not in head else TYPED
    result = plan_of(
        tmp_path,
        {"_project.yaml": PROJECT, "c.yaml": base},
        {"_project.yaml": PROJECT, "c.yaml": head},
    )
    counts = {
        row.environment: (row.changes, row.on, row.off)
        for row in result.by_environment()
        if row.changes
    }
    assert counts == expected


def test_typed_values_read_as_variant_names(tmp_path: Path) -> None:
    result = plan_of(
        tmp_path,
        {"_project.yaml": PROJECT, "c.yaml": TYPED},
        {
            "_project.yaml": PROJECT,
            "c.yaml": TYPED + "  production:\n    applications:\n      web: green\n",
        },
    )
    (change,) = result.flags
    assert [f"{v.cell}: {v.before} -> {v.after}" for v in change.values] == [
        "production/web: blue -> green"
    ]
    assert render(result).count("    production/web: blue -> green\n") == 1


def test_rule_changes_are_part_of_the_plan(tmp_path: Path) -> None:
    rules = "rules:\n  - rollout: {green: 10, blue: 90}\n"
    result = plan_of(
        tmp_path,
        {"_project.yaml": PROJECT, "c.yaml": TYPED + rules},
        {"_project.yaml": PROJECT, "c.yaml": TYPED + rules.replace("10, blue: 90", "30, blue: 70")},
    )
    (change,) = result.flags
    assert [(r.environment, r.kind, r.moved_share) for r in change.rules] == [
        ("production", "rollout", 20)
    ]
    assert [row.rules for row in result.by_environment()] == [0, 0, 1]
