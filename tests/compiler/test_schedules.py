"""compiler.schedules beyond the corpus: `schedule-past` against the real clock and against
`--today`, moments no message can write as a date, and nothing done for flags without a
schedule."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import pytest

import compiler.dependencies
from compiler.dependencies import check_dependencies
from compiler.pipeline import compile_tree
from compiler.schedules import check_schedules, when
from core.resolve import Grid, resolve
from core.schedule import utc_text
from tests.compiler.helpers import compiled, flag_files
from tests.conftest import PROJECT

GRID = Grid(("staging", "production"), ("web",))


def flag(**fields: Any) -> dict[str, Any]:
    return {"description": "d", "owner": "o", "enabled": False, **fields}


def at(moment: str, **fields: Any) -> dict[str, Any]:
    return {"at": moment, **(fields or {"enabled": True})}


def codes(tree: dict[str, dict[str, Any]], now: int) -> list[tuple[str, str]]:
    return [(d.code, d.message.split(":")[0]) for d in check_schedules(flag_files(tree), now)]


def test_without_today_steps_are_judged_against_the_current_time(tmp_path: Path) -> None:
    now = int(time.time())
    steps = [at(utc_text(now - 3600)), at(utc_text(now + 3600), enabled=False)]
    text = "description: d\nowner: o\nenabled: false\nschedule:\n" + "".join(
        f"  - at: {step['at']}\n    enabled: {str(step['enabled']).lower()}\n" for step in steps
    )
    found = compiled(tmp_path, {"_project.yaml": PROJECT, "f.yaml": text}).diagnostics
    assert [(d.code, d.line) for d in found] == [("schedule-past", 5)]


def test_with_today_steps_are_judged_against_its_midnight_utc(tmp_path: Path) -> None:
    text = (
        "description: d\nowner: o\nenabled: false\nschedule:\n"
        "  - at: 2026-06-01T00:00:00+01:00\n    enabled: true\n"  # 2026-05-31T23:00Z
        "  - at: 2026-06-01T00:00:00Z\n    enabled: false\n"
        "  - at: 2026-06-01T00:00:01Z\n    enabled: true\n"
    )
    root = tmp_path / "flags"
    root.mkdir()
    (root / "_project.yaml").write_text(PROJECT, encoding="utf-8")
    (root / "f.yaml").write_text(text, encoding="utf-8")
    found = compile_tree(root, today=datetime.date(2026, 6, 1)).diagnostics
    assert [(d.code, d.line) for d in found] == [("schedule-past", 5), ("schedule-past", 7)]


@pytest.mark.parametrize(
    ("ramp", "expected"),
    [
        ({"from": "2027-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"}, []),
        ({"from": "2026-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"}, []),  # under way
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
            [("schedule-past", "schedule[0].ramp.to")],
        ),
    ],
)
def test_a_ramp_is_past_once_it_has_ended(ramp: dict[str, str], expected: list[Any]) -> None:
    now = int(datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC).timestamp())
    tree = {"f": flag(schedule=[{"ramp": {**ramp, "variant": "on"}}])}
    assert codes(tree, now) == expected


def test_moments_beyond_the_calendar_are_named_in_unix_time_not_a_traceback() -> None:
    last = "9999-12-31T23:59:59-01:00"  # a valid text, after the year 9999 in UTC
    shown = "Unix time 253402304399"
    tree = {
        "base": flag(),
        "top": flag(
            depends_on=["base"], schedule=[at("2027-01-01T00:00:00Z"), at(last, enabled=False)]
        ),
        "odd": flag(schedule=[at(last), at(last, enabled=False)]),
    }
    files = flag_files(tree)
    [order] = check_schedules(files, 0)
    assert order.message == (
        f"schedule[1].at: this step at {shown} is not after the step at {shown} (line 7); "
        "list steps in time order, no two in the same second (a fraction of a second rounds up)"
    )
    resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
    [disabled] = check_dependencies(GRID, files, resolved)
    assert disabled.message.startswith(f"from 2027-01-01T00:00Z to {shown}, top is on")
    assert when(0) == "1970-01-01T00:00Z"


def test_a_tree_without_schedules_is_never_split_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The time split costs nothing without schedules: no phases are even made."""

    def refuse(*_: object) -> None:
        raise AssertionError("phases made for a tree without schedules")

    monkeypatch.setattr(compiler.dependencies, "phases", refuse)
    files = flag_files({"base": flag(), "top": flag(enabled=True, depends_on=["base"])})
    resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
    assert [d.code for d in check_dependencies(GRID, files, resolved)] == ["dependency-disabled"]
