"""core.resolve: precedence, cell order, bitsets and where each value is declared."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.yamlsource import Parsed, parse
from core.model import Flag
from core.resolve import (
    APPLICATION,
    DEFAULT,
    ENVIRONMENT,
    ENVIRONMENT_APPLICATION,
    SOURCES,
    Cell,
    Grid,
    Resolution,
    cell_values,
    resolve,
    source_path,
)

GRID = Grid(("development", "staging", "production"), ("web", "ios", "android"))
EA, ENV, APP, DEF = ENVIRONMENT_APPLICATION, ENVIRONMENT, APPLICATION, DEFAULT


def flag(**fields: Any) -> Flag:
    return Flag.model_validate({"description": "d", "owner": "o", **fields})


def resolve_one(grid: Grid, declared: dict[str, Any]) -> Resolution:
    return resolve(grid, {"f": flag(**declared)})["f"]


APP_WIDE_ON = {"enabled": True, "applications": {"web": True}}
SPLIT = {"enabled": False, "applications": {"web": True}}
ENV_OBJECT_WITHOUT_ENABLED = {
    "enabled": False,
    "applications": {"web": True},
    "environments": {"production": {"applications": {"ios": True}}},
}
BACK_ON = {
    **APP_WIDE_ON,
    "environments": {"production": {"enabled": False, "applications": {"web": True}}},
}
UNKNOWN_NAMES = {
    "enabled": False,
    "environments": {"qa": True, "production": {"applications": {"watch": True}}},
    "applications": {"tv": True},
}

# (declared fields, environment, application, value, source)
CASES: list[tuple[dict[str, Any], str, str | None, bool, str]] = [
    ({"enabled": True}, "production", None, True, DEF),
    ({"enabled": False}, "production", "web", False, DEF),
    # applications.A: only its application, in every environment that does not decide
    (SPLIT, "production", "web", True, APP),
    (SPLIT, "development", "web", True, APP),
    (SPLIT, "production", None, False, DEF),
    (SPLIT, "production", "ios", False, DEF),
    ({"enabled": True, "applications": {"ios": False}}, "staging", "ios", False, APP),
    # environments.E as a boolean: the environment and all its applications
    ({"enabled": False, "environments": {"production": True}}, "production", None, True, ENV),
    ({"enabled": False, "environments": {"production": True}}, "production", "web", True, ENV),
    ({"enabled": False, "environments": {"production": True}}, "staging", None, False, DEF),
    ({"enabled": False, "environments": {"production": True}}, "staging", "ios", False, DEF),
    # environment-wide false beats application-wide true, as a boolean or as `enabled`
    ({**APP_WIDE_ON, "environments": {"production": False}}, "production", "web", False, ENV),
    (
        {**APP_WIDE_ON, "environments": {"production": {"enabled": False}}},
        "production",
        "web",
        False,
        ENV,
    ),
    ({**APP_WIDE_ON, "environments": {"production": False}}, "staging", "web", True, APP),
    # environments.E.applications.A turns it back on, for that application only
    (BACK_ON, "production", "web", True, EA),
    (BACK_ON, "production", "ios", False, ENV),
    (BACK_ON, "production", None, False, ENV),
    (
        {
            "enabled": True,
            "environments": {"production": {"enabled": True, "applications": {"android": False}}},
        },
        "production",
        "android",
        False,
        EA,
    ),
    # an override without `enabled` falls through to applications.A, then the default
    (ENV_OBJECT_WITHOUT_ENABLED, "production", "ios", True, EA),
    (ENV_OBJECT_WITHOUT_ENABLED, "production", "web", True, APP),
    (ENV_OBJECT_WITHOUT_ENABLED, "production", "android", False, DEF),
    (ENV_OBJECT_WITHOUT_ENABLED, "production", None, False, DEF),
    (ENV_OBJECT_WITHOUT_ENABLED, "staging", "ios", False, DEF),
    (
        {"enabled": True, "environments": {"staging": {"applications": {}}}},
        "staging",
        "web",
        True,
        DEF,
    ),
    # names the project does not declare change nothing
    (UNKNOWN_NAMES, "production", None, False, DEF),
    (UNKNOWN_NAMES, "production", "web", False, DEF),
    (UNKNOWN_NAMES, "development", "android", False, DEF),
]


@pytest.mark.parametrize(("declared", "environment", "application", "value", "source"), CASES)
def test_precedence(
    declared: dict[str, Any], environment: str, application: str | None, value: bool, source: str
) -> None:
    resolution = resolve_one(GRID, declared)
    assert resolution.cells[GRID.index(environment, application)] == Cell(value, source)


def test_grid_order() -> None:
    assert GRID.width == 4
    assert GRID.index("development") == 0
    assert GRID.index("development", "web") == 1
    assert GRID.index("development", "android") == 3
    assert GRID.index("staging") == 4
    assert GRID.index("production", "ios") == 10
    assert GRID.name(0) == "development"
    assert GRID.name(5) == "staging/web"
    assert GRID.cell(11) == ("production", "android")
    assert GRID.cell(8) == ("production", None)


@pytest.mark.parametrize(
    "grid",
    [GRID, Grid(("only",), ()), Grid(("a", "b"), ("x",)), Grid(("e",), ("p", "q", "r", "s"))],
)
def test_grid_round_trips(grid: Grid) -> None:
    size = len(grid.environments) * grid.width
    cells = [grid.cell(i) for i in range(size)]
    assert len(set(cells)) == size
    assert {env for env, _ in cells} == set(grid.environments)
    for i, (environment, application) in enumerate(cells):
        assert grid.index(environment, application) == i
        expected = environment if application is None else f"{environment}/{application}"
        assert grid.name(i) == expected
    for environment in grid.environments:
        assert grid.cell(grid.index(environment)) == (environment, None)
        for application in grid.applications:
            assert grid.cell(grid.index(environment, application)) == (environment, application)


def test_bits_follow_cells() -> None:
    resolution = resolve_one(GRID, ENV_OBJECT_WITHOUT_ENABLED)
    values = [cell.value for cell in resolution.cells]
    assert len(values) == 12
    assert values == [False, True, False, False] * 2 + [False, True, True, False]
    assert resolution.on == 0b0110_0010_0010


def test_every_flag_is_resolved_under_its_key() -> None:
    resolved = resolve(GRID, {"a": flag(enabled=True), "b": flag(enabled=False)})
    assert sorted(resolved) == ["a", "b"]
    assert resolved["a"].on == (1 << 12) - 1
    assert resolved["b"].on == 0
    assert resolve(GRID, {}) == {}


@pytest.mark.parametrize(
    ("source", "environment", "application", "path"),
    [
        (EA, "production", "web", ("environments", "production", "applications", "web")),
        (ENV, "production", "web", ("environments", "production", "enabled")),
        (ENV, "production", None, ("environments", "production", "enabled")),
        (APP, "staging", "ios", ("applications", "ios")),
        (DEF, "staging", "ios", ("enabled",)),
        (DEF, "staging", None, ("enabled",)),
    ],
)
def test_source_path(
    source: str, environment: str, application: str | None, path: tuple[str, ...]
) -> None:
    assert source_path(source, environment, application) == path


FLAG_FILE = textwrap.dedent(
    """\
    description: d
    owner: o
    enabled: false
    applications:
      web: true
    environments:
      staging: true
      production:
        enabled: false
        applications:
          ios: true
    """
)


def test_source_path_points_at_the_deciding_line() -> None:
    """For every cell, the path of its source locates the line that declares its value."""
    parsed = parse(FLAG_FILE, "f.yaml")
    assert isinstance(parsed, Parsed)
    resolution = resolve(GRID, {"f": Flag.model_validate(parsed.data)})["f"]
    lines = FLAG_FILE.splitlines()
    for i, cell in enumerate(resolution.cells):
        environment, application = GRID.cell(i)
        line, _ = parsed.source.locate(source_path(cell.source, environment, application))
        declared = lines[line - 1].split(":")[-1].strip()
        assert declared == str(cell.value).lower(), (GRID.name(i), cell, line)


ENVIRONMENTS = ["dev", "stg", "prod", "qa"]
APPLICATIONS = ["web", "ios", "tv"]


@st.composite
def grids(draw: st.DrawFn) -> Grid:
    environments = draw(st.lists(st.sampled_from(ENVIRONMENTS), min_size=1, unique=True))
    applications = draw(st.lists(st.sampled_from(APPLICATIONS), unique=True))
    return Grid(tuple(environments), tuple(applications))


# Names beyond the pools stand for names the project does not declare.
APP_VALUES = st.dictionaries(st.sampled_from([*APPLICATIONS, "watch"]), st.booleans(), max_size=4)
OVERRIDES = st.booleans() | st.fixed_dictionaries(
    {}, optional={"enabled": st.booleans(), "applications": APP_VALUES}
).filter(bool)
FLAGS = st.fixed_dictionaries(
    {"enabled": st.booleans()},
    optional={
        "applications": APP_VALUES,
        "environments": st.dictionaries(
            st.sampled_from([*ENVIRONMENTS, "edge"]), OVERRIDES, max_size=5
        ),
    },
)


def expected_cell(declared: dict[str, Any], environment: str, application: str | None) -> Cell:
    """The rule, written out plainly: the most specific declared level wins."""
    override = declared.get("environments", {}).get(environment)
    if isinstance(override, dict):
        specific = override.get("applications", {})
        if application is not None and application in specific:
            return Cell(specific[application], ENVIRONMENT_APPLICATION)
        if "enabled" in override:
            return Cell(override["enabled"], ENVIRONMENT)
    elif isinstance(override, bool):
        return Cell(override, ENVIRONMENT)
    applications = declared.get("applications", {})
    if application is not None and application in applications:
        return Cell(applications[application], APPLICATION)
    return Cell(declared["enabled"], DEFAULT)


@settings(max_examples=300, deadline=None)
@given(grids(), FLAGS)
def test_matches_a_plain_reimplementation(grid: Grid, declared: dict[str, Any]) -> None:
    resolution = resolve_one(grid, declared)
    size = len(grid.environments) * grid.width
    assert len(resolution.cells) == size
    for i, cell in enumerate(resolution.cells):
        environment, application = grid.cell(i)
        assert cell == expected_cell(declared, environment, application), grid.name(i)
        assert cell.source in SOURCES
        assert bool(resolution.on >> i & 1) == cell.value
    assert 0 <= resolution.on < 1 << size


@settings(max_examples=200, deadline=None)
@given(grids(), FLAGS)
def test_cell_values_are_the_resolved_cells_values(grid: Grid, declared: dict[str, Any]) -> None:
    """The values-only reading (the audit log's) follows the same rules as `resolve`."""
    resolution = resolve_one(grid, declared)
    assert cell_values(grid, flag(**declared)) == tuple(cell.value for cell in resolution.cells)


def test_cell_values_of_typed_flags() -> None:
    typed = flag(
        type="string",
        variants={"a": "x", "b": "y", "c": "z"},
        default="a",
        applications={"web": "b"},
        environments={"production": {"default": "c", "applications": {"ios": "b"}}},
    )
    resolution = resolve(GRID, {"f": typed})["f"]
    assert cell_values(GRID, typed) == tuple(cell.value for cell in resolution.cells)
