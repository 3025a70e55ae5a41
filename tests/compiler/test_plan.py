"""The plan of a change, as a pure function of two compiled trees written to tmp_path."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.changes import FieldChange
from compiler.plan import FlagChange, Label, plan
from compiler.render.plan_text import render
from compiler.render.plan_words import rise_words
from compiler.step_changes import Rise, ScheduleAt, StepChange, flag_step_changes, scheduled_steps
from core.model import Flag, Ramp
from core.resolve import Grid
from core.schedule import moment, seconds, share_at, utc_text
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


# Schedules: the steps a change adds, removes or moves, in the reviewer's words.

LAUNCH = "description: Launch\nowner: team-a\nenabled: false\nenvironments:\n"
PRODUCTION = "  production:\n    enabled: false\n"
ON_AT = "      - at: {}\n        enabled: true\n"
RAMP = (
    "      - ramp:\n          from: {}\n          to: {}\n          variant: {}\n"
    "          start: {}\n          end: {}\n          every: {}\n"
)
STAGING_OFF = "  staging:\n    enabled: false\n    applications:\n      web: true\n"


def launch(*steps: str, extra: str = "", top: str = "") -> dict[str, str]:
    """A flag whose production starts off and takes `steps`."""
    text = LAUNCH + PRODUCTION + ("    schedule:\n" + "".join(steps) if steps else "")
    text += extra + top
    return {"_project.yaml": PROJECT, "launch.yaml": text}


def step_lines(tmp_path: Path, base: dict[str, str], head: dict[str, str]) -> list[str]:
    result = plan_of(tmp_path, base, head)
    lines = render(result).splitlines()
    return [line.strip() for line in lines if line.startswith(("    + ", "    - ", "    → "))]


ON = ON_AT.format("2027-01-11T09:00:00+01:00")
OFF = "      - at: 2027-01-12T08:00:00Z\n        enabled: false\n"
UP = RAMP.format("2027-01-13T09:00:00Z", "2027-01-17T13:00:00Z", "on", 0, 100, "1h")
RULES_AT = (
    "      - at: 2027-01-12T09:00:00Z\n        rules:\n          - rollout: {on: 50, off: 50}\n"
)
TOP_ON = "schedule:\n  - at: 2027-03-01T12:00:00Z\n    enabled: true\n"
TYPED_RAMP = """description: Colour
owner: team-a
type: string
variants: {blue: "#1", green: "#2"}
default: blue
off: blue
environments:
  production:
    schedule:
      - ramp: {from: 2027-01-13T09:00:00Z, to: 2027-01-14T09:00:00Z, variant: green, end: 48,
               by: account_id}
"""
STEP_CASES: dict[str, tuple[dict[str, str], dict[str, str], list[str]]] = {
    "a step added": (
        launch(ON),
        launch(ON, OFF),
        ["+ at 2027-01-12 08:00 UTC, production: on -> off"],
    ),
    "a step removed": (launch(ON), launch(), ["- at 2027-01-11 08:00 UTC, production: off -> on"]),
    "the same moment in another offset is no step change": (
        launch(ON),
        launch(ON_AT.format("2027-01-11T08:00:00Z")),
        [],
    ),
    "a step moved": (
        launch(ON),
        launch(ON_AT.format("2027-01-11T10:00:30+01:00")),
        ["→ at 2027-01-11 09:00:30 UTC (was 2027-01-11 08:00 UTC), production: off -> on"],
    ),
    "a ramp added: 100 hours, 1% each hour": (
        launch(ON),
        launch(ON, UP),
        [
            "+ from 2027-01-13 09:00 to 2027-01-17 13:00 UTC, production: on rises 0% -> 100%,"
            " 1% more each hour"
        ],
    ),
    "the issue's ramp: 7 days, 1% each 1 to 2 hours": (
        launch(ON),
        launch(ON, UP.replace("2027-01-17T13:00:00Z", "2027-01-20T09:00:00Z")),
        [
            "+ from 2027-01-13 09:00 to 2027-01-20 09:00 UTC, production: on rises 0% -> 100%,"
            " 1% more each 1 to 2 hours"
        ],
    ),
    "a ramp moved whole": (
        launch(ON, UP),
        launch(ON, UP.replace("-13T", "-14T").replace("-17T", "-18T")),
        [
            "→ from 2027-01-14 09:00 to 2027-01-18 13:00 UTC (was 2027-01-13 09:00 to"
            " 2027-01-17 13:00 UTC), production: on rises 0% -> 100%, 1% more each hour"
        ],
    ),
    "a ramp made longer is one removed and one added": (
        launch(ON, UP),
        launch(ON, UP.replace("2027-01-17T13:00:00Z", "2027-01-21T17:00:00Z")),
        [
            "- from 2027-01-13 09:00 to 2027-01-17 13:00 UTC, production: on rises 0% -> 100%,"
            " 1% more each hour",
            "+ from 2027-01-13 09:00 to 2027-01-21 17:00 UTC, production: on rises 0% -> 100%,"
            " 1% more each 2 hours",
        ],
    ),
    "a ramp down, each 30 minutes": (
        launch(ON),
        launch(
            ON, RAMP.format("2027-01-13T09:00:00Z", "2027-01-13T19:00:00Z", "on", 60, 40, "30m")
        ),
        [
            "+ from 2027-01-13 09:00 to 2027-01-13 19:00 UTC, production: on falls 60% -> 40%,"
            " 1% less each 30 minutes"
        ],
    ),
    "a ramp each day, 5% at a time": (
        launch(ON),
        launch(ON, RAMP.format("2027-01-01T00:00:00Z", "2027-01-21T00:00:00Z", "on", 0, 100, "1d")),
        [
            "+ from 2027-01-01 00:00 to 2027-01-21 00:00 UTC, production: on rises 0% -> 100%,"
            " 5% more each day"
        ],
    ),
    "a step's cells when not all of them change alike": (
        launch(),
        launch(extra=STAGING_OFF + "    schedule:\n" + ON_AT.format("2027-02-01T00:00:00Z")),
        [
            "+ at 2027-02-01 00:00 UTC, staging (no application), staging/ios, staging/android:"
            " off -> on"
        ],
    ),
    "a step that changes nothing says so": (
        launch(ON),
        launch(ON, ON_AT.format("2027-01-12T08:00:00Z")),
        ["+ at 2027-01-12 08:00 UTC, production: nothing changes"],
    ),
    # Steps are compared by what they do: production now turns on a day earlier, and the
    # step that turned it on is left doing nothing.
    "a step's effect changes with what comes before it": (
        launch(ON_AT.format("2027-01-12T08:00:00Z")),
        launch(ON, ON_AT.format("2027-01-12T08:00:00Z")),
        [
            "→ at 2027-01-11 08:00 UTC (was 2027-01-12 08:00 UTC), production: off -> on",
            "+ at 2027-01-12 08:00 UTC, production: nothing changes",
        ],
    ),
    # A step at a ramp's `to` is credited with what it does, not with the ramp's last share.
    "a step at the moment a ramp ends": (
        launch(RAMP.format("2027-01-13T00:00:00Z", "2027-01-13T02:30:00Z", "on", 0, 100, "1h")),
        launch(
            RAMP.format("2027-01-13T00:00:00Z", "2027-01-13T02:30:00Z", "on", 0, 100, "1h"),
            ON_AT.format("2027-01-13T02:30:00Z"),
        ),
        ["+ at 2027-01-13 02:30 UTC, production: off -> on"],
    ),
    "rules at a step, in the rules' words": (
        launch(ON),
        launch(ON, RULES_AT),
        ["+ at 2027-01-12 09:00 UTC, production: new rule 1 (everyone) rolls out on 50%, off 50%"],
    ),
    "a top-level schedule, in every environment it applies in": (
        launch(extra="  development: true\n  staging:\n    enabled: false\n"),
        launch(extra="  development: true\n  staging:\n    enabled: false\n", top=TOP_ON),
        [
            "+ at 2027-03-01 12:00 UTC, staging: off -> on",
            "+ at 2027-03-01 12:00 UTC, production: off -> on",
        ],
    ),
    "an environment the project adds takes the top-level schedule": (
        launch(top=TOP_ON),
        {**launch(top=TOP_ON), "_project.yaml": PROJECT.replace("staging,", "staging, qa,")},
        ["+ at 2027-03-01 12:00 UTC, qa: off -> on"],
    ),
    "a typed flag's ramp, by an attribute": (
        {"_project.yaml": PROJECT, "launch.yaml": TYPED_RAMP.replace("end: 48", "end: 24")},
        {"_project.yaml": PROJECT, "launch.yaml": TYPED_RAMP},
        [
            "- from 2027-01-13 09:00 to 2027-01-14 09:00 UTC, production: green rises 0% -> 24%"
            " by account_id, 1% more each hour",
            "+ from 2027-01-13 09:00 to 2027-01-14 09:00 UTC, production: green rises 0% -> 48%"
            " by account_id, 2% more each hour",
        ],
    ),
}


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_step_changes_in_words(case: str, tmp_path: Path) -> None:
    base, head, expected = STEP_CASES[case]
    assert step_lines(tmp_path, base, head) == expected


def test_a_change_to_the_schedule_alone_is_in_the_plan(tmp_path: Path) -> None:
    """The steps moved, nothing else: the flag is there, with its steps and their counts."""
    result = plan_of(tmp_path, launch(ON, UP), launch(ON_AT.format("2027-01-11T09:00:00Z"), UP))
    (change,) = result.flags
    assert (change.kind, change.values, change.rules) == ("changed", (), ())
    assert [(step.kind, step.environment) for step in change.steps] == [("moved", "production")]
    assert [row.steps for row in result.by_environment()] == [0, 0, 1]
    assert render(result).endswith(
        "0 added, 0 removed, 0 moved, 1 changed; no values change; 1 step change in production\n"
    )


def test_steps_of_added_and_removed_flags(tmp_path: Path) -> None:
    """A new flag's steps are all added, a removed flag's all removed."""
    nothing = {"_project.yaml": PROJECT}
    added = plan_of(tmp_path / "added", nothing, launch(ON, UP))
    removed = plan_of(tmp_path / "removed", launch(ON, UP), nothing)
    assert [step.kind for step in added.flags[0].steps] == ["added", "added"]
    assert [step.kind for step in removed.flags[0].steps] == ["removed", "removed"]
    assert [step.step for step in added.flags[0].steps] == [
        step.step for step in removed.flags[0].steps
    ]


# Properties of the comparison, over random schedules of models (no files).

GRID = Grid(("development", "staging", "production"), ("web", "ios", "android"))
HOUR = 3600
START = 1_800_000_000  # 2027-01-15T08:00:00Z


def _moment(offset: int) -> str:
    return utc_text(START + offset * HOUR)


@st.composite
def schedules(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1 to 4 steps at increasing hours: `enabled` or applications, or a ramp."""
    hours = sorted(draw(st.sets(st.integers(0, 500), min_size=1, max_size=4)))
    steps: list[dict[str, Any]] = []
    for index, hour in enumerate(hours):
        kind = draw(st.sampled_from(["enabled", "web", "ramp"]))
        if kind == "ramp" and index == len(hours) - 1:
            end = draw(st.integers(0, 100))
            length = draw(st.integers(1, 300))
            every = draw(st.sampled_from(["30m", "1h", "7h", "1d"]))
            ramp = {"from": _moment(hour), "to": _moment(hour + length), "variant": "on"}
            steps.append({"ramp": {**ramp, "end": end, "every": every}})
        elif kind == "web":
            steps.append({"at": _moment(hour), "applications": {"web": draw(st.booleans())}})
        else:
            steps.append({"at": _moment(hour), "enabled": draw(st.booleans())})
    return steps


def scheduled_flag(production: list[dict[str, Any]], staging: list[dict[str, Any]]) -> Flag:
    return Flag.model_validate(
        {
            "description": "Launch",
            "owner": "team-a",
            "enabled": False,
            "environments": {
                "production": {"enabled": False, "schedule": production},
                "staging": {"enabled": True, **({"schedule": staging} if staging else {})},
            },
        }
    )


RANKS = {name: rank for rank, name in enumerate(GRID.environments)}


def step_changes(before: Flag, after: Flag) -> tuple[StepChange, ...]:
    return flag_step_changes(
        RANKS, ScheduleAt("launch", before, GRID), ScheduleAt("launch", after, GRID)
    )


def _shifted(steps: list[dict[str, Any]], hours: int) -> list[dict[str, Any]]:
    def moved(text: str) -> str:
        return utc_text(moment(text) + hours * HOUR)

    return [
        {"ramp": {**s["ramp"], "from": moved(s["ramp"]["from"]), "to": moved(s["ramp"]["to"])}}
        if "ramp" in s
        else {**s, "at": moved(s["at"])}
        for s in steps
    ]


@given(schedules(), schedules(), schedules(), schedules())
def test_the_comparison_reversed_swaps_added_and_removed(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    c: list[dict[str, Any]],
    d: list[dict[str, Any]],
) -> None:
    before, after = scheduled_flag(a, b), scheduled_flag(c, d)
    forward, backward = step_changes(before, after), step_changes(after, before)
    swap = {"added": "removed", "removed": "added", "moved": "moved"}
    assert sorted(
        (swap[x.kind], x.environment, x.step.start) for x in forward if x.kind != "moved"
    ) == sorted((x.kind, x.environment, x.step.start) for x in backward if x.kind != "moved")
    assert sum(x.kind == "moved" for x in forward) == sum(x.kind == "moved" for x in backward)
    assert step_changes(before, before) == ()


@given(schedules(), schedules(), st.integers(1, 1000))
def test_a_schedule_moved_whole_is_every_step_moved(
    production: list[dict[str, Any]], staging: list[dict[str, Any]], hours: int
) -> None:
    """Every step later by the same time does what it did: each is moved, none else. Steps
    of equal effect are interchangeable (two that change nothing, an hour apart, moved an
    hour: one stands where the other stood), so the count and the shift hold when each
    step's effect is its own."""
    before = scheduled_flag(production, staging)
    after = scheduled_flag(_shifted(production, hours), _shifted(staging, hours))
    changes = step_changes(before, after)
    assert {change.kind for change in changes} <= {"moved"}
    effects = [step.effect for step in scheduled_steps(ScheduleAt("launch", before, GRID))]
    if len(set(effects)) < len(effects):
        return
    assert len(changes) == len(production) + len(staging)
    for change in changes:
        assert change.was is not None
        assert change.step.start - change.was.start == hours * HOUR


PACE = re.compile(
    r"(?P<low>\d+)% (?:to (?P<high>\d+)% )?(?:more|less) each "
    r"(?:(?P<short>\d+) (?:to (?P<long>\d+) )?)?(?P<unit>day|hour|minute|second)s?"
)
UNITS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}


@given(
    st.integers(0, 100),
    st.integers(0, 100),
    st.integers(1, 400),
    st.sampled_from(["1m", "30m", "1h", "5h", "1d"]),
    st.integers(0, 3599),
)
def test_a_ramps_pace_is_its_shares_walked_period_by_period(
    start: int, end: int, periods: int, every: str, extra: int
) -> None:
    """The pace's smallest and largest change, and shortest and longest time between two,
    are those of the shares core.schedule.share_at gives at every period and at `to`."""
    span = periods * seconds(every) + extra
    ramp = Ramp.model_validate(
        {"from": utc_text(START), "to": utc_text(START + span), "variant": "on"}
        | {"start": start, "end": end, "every": every}
    )
    walked = [(0, start)]
    instants = [*range(0, span, seconds(every)), span]
    for at in instants:
        share = share_at(ramp, START + at)
        if share != walked[-1][1]:
            walked.append((at, share))
    words = rise_words(Rise("on", start, end, seconds(every), tuple(walked)))
    ours = rise_words(_ramp_rise(ramp))
    assert ours == words
    if start == end:
        assert ours == f"on stays at {start}%"
        return
    found = PACE.search(ours)
    assert found is not None, ours
    sizes = [abs(b - a) for (_, a), (_, b) in itertools.pairwise(walked)]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(walked)]
    unit = UNITS[found["unit"]]
    assert (int(found["low"]), int(found["high"] or found["low"])) == (min(sizes), max(sizes))
    short = int(found["short"] or 1) * unit
    assert (short, int(found["long"] or found["short"] or 1) * unit) == (min(gaps), max(gaps))


def _ramp_rise(ramp: Ramp) -> Rise:
    declared = ramp.model_dump(by_alias=True, exclude_none=True)
    (step,) = scheduled_steps(ScheduleAt("launch", scheduled_flag([{"ramp": declared}], []), GRID))
    assert step.rise is not None
    return step.rise
