"""compiler.schedules beyond the corpus: `schedule-past` against the real clock and against
`--today`, the first and last moments a file may write (and those beyond, refused), and
nothing done for flags without a schedule."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest

import compiler.dependencies
from compiler.dependencies import check_dependencies
from compiler.pipeline import compile_tree
from compiler.schedules import check_schedules
from core.resolve import Grid, resolve
from core.schedule import utc_text
from tests.compiler.helpers import compiled, flag_files, run
from tests.conftest import PROJECT, write_tree

GRID = Grid(("staging", "production"), ("web",))


FLAG = "description: d\nowner: o\nenabled: false\n"


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


# The first and last moments a file may write, each a day's offset beyond its year in UTC.
FIRST, LAST = "1970-01-01T00:00:00+23:59", "2999-12-31T23:59:59-23:59"


def test_moments_at_the_ends_of_the_years_are_checked_built_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1970 to 2999 in any zone: the checks name them as dates, the build writes them."""
    files = flag_files(
        {
            "base": flag(),
            "top": flag(depends_on=["base"], schedule=[at(FIRST), at(LAST, enabled=False)]),
            "odd": flag(schedule=[at(LAST), at(LAST, enabled=False)]),
        }
    )
    [order] = check_schedules(files, -86_400)  # a day before 1970: nothing is past
    assert order.message.startswith(
        "schedule[1].at: this step at 3000-01-01T23:58:59Z is not after the step at "
        "3000-01-01T23:58:59Z (line 7)"
    )
    resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
    [disabled] = check_dependencies(GRID, files, resolved)
    assert disabled.message.startswith("from 1969-12-31T00:01Z to 3000-01-01T23:58:59Z, top is on")
    steps = f"schedule:\n  - at: {FIRST}\n    enabled: true\n  - at: {LAST}\n    enabled: false\n"
    folder = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "f.yaml": FLAG + steps})
    code, _, _ = run(["build", str(folder), "-o", str(tmp_path / "out")], capsys)
    assert code == 0
    built = json.loads((tmp_path / "out" / "snapshot.json").read_bytes())
    assert [step["at"] for step in built["flags"]["f"]["steps"]] == [
        "1969-12-31T00:01:00Z",
        "3000-01-01T23:58:59Z",
    ]


@pytest.mark.parametrize(
    "written",
    [
        "9999-12-31T23:59:59-01:00",
        "3000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "0005-01-01T00:00:00Z",
    ],
)
def test_moments_outside_the_years_1970_to_2999_are_refused_at_validation(
    written: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a traceback in the build (year 9999 at -01:00 is in the year 10000 in UTC)."""
    steps = f"schedule:\n  - at: {written}\n    enabled: true\n"
    folder = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "f.yaml": FLAG + steps})
    code, out, _ = run(["build", str(folder), "-o", str(tmp_path / "out")], capsys)
    assert code == 1
    assert out.endswith(
        f'error[schema]: schedule[0].at: "{written}" is not a moment: write it as '
        "2027-01-11T09:00:00Z (RFC 3339, with its zone offset), between the years 1970 and "
        "2999\n"
    )


def test_a_tree_without_schedules_is_never_split_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The time split costs nothing without schedules: no phases are even made."""

    def refuse(*_: object) -> None:
        raise AssertionError("phases made for a tree without schedules")

    monkeypatch.setattr(compiler.dependencies, "phases", refuse)
    files = flag_files({"base": flag(), "top": flag(enabled=True, depends_on=["base"])})
    resolved = resolve(GRID, {key: f.flag for key, f in files.items()})
    assert [d.code for d in check_dependencies(GRID, files, resolved)] == ["dependency-disabled"]
