"""Stage 3 of the compiler, resolve: every flag's value in every environment x application,
and why (in core: the server's verification resolves each flag of a build again).

Most specific first, for environment E and application A:
`environments.E.applications.A`, then `environments.E` (its value or its `enabled`), then
`applications.A`, then `enabled`. With no application: `environments.E`, then `enabled`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from core.model import EnvironmentOverride, Flag, Project
from core.rules import rules_in, served

# Which level decided a value; the names are part of the snapshot format.
ENVIRONMENT_APPLICATION = "environment-application"
ENVIRONMENT = "environment"
APPLICATION = "application"
DEFAULT = "default"
SOURCES = (ENVIRONMENT_APPLICATION, ENVIRONMENT, APPLICATION, DEFAULT)


CellValue = bool | str  # boolean flags: true or false; typed flags: the variant's name


class Cell(NamedTuple):  # a tuple, so that rows of cells hash and compare at C speed
    value: CellValue
    source: str


# Few distinct cells exist; sharing them keeps a matrix of a million cells cheap.
_CELLS: dict[tuple[bool | str, str], Cell] = {}


def shared_cell(value: bool | str, source: str) -> Cell:
    found = _CELLS.get((value, source))
    if found is None:
        found = _CELLS[value, source] = Cell(value, source)
    return found


@dataclass(frozen=True)
class Grid:
    """The cells of a project, in a fixed order: per environment, first the environment
    without application, then each application."""

    environments: tuple[str, ...]
    applications: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.applications) + 1

    def index(self, environment: str, application: str | None = None) -> int:
        base = self.environments.index(environment) * self.width
        return base if application is None else base + 1 + self.applications.index(application)

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Every cell's name, `production` or `production/web`, in cell order."""
        return tuple(self.name(index) for index in range(len(self.environments) * self.width))

    def name(self, index: int) -> str:
        environment, application = self.cell(index)
        return environment if application is None else f"{environment}/{application}"

    def cell(self, index: int) -> tuple[str, str | None]:
        env, offset = divmod(index, self.width)
        return self.environments[env], None if offset == 0 else self.applications[offset - 1]


@dataclass(frozen=True, slots=True)
class Resolution:
    cells: tuple[Cell, ...]
    # Bit i is set when cells[i] can be on for some context (its value, or a rule): the
    # dependency checks become integer operations. `always`: on for every context.
    on: int
    always: int


def grid_of(project: Project) -> Grid:
    return Grid(tuple(project.environments), tuple(project.applications))


def resolve(grid: Grid, flags: Mapping[str, Flag]) -> dict[str, Resolution]:
    """Resolve every flag over the whole grid; names the project does not declare are ignored."""
    bits: _RowBits = {}
    return {key: _resolve_flag(grid, flag, bits) for key, flag in flags.items()}


# A row's (on, always) bits, by the row and what its flag's rules serve: few distinct rows
# exist (their cells are shared), so most flags take theirs from here rather than cell by
# cell, which was half of resolving 10,000 flags.
_RowBits = dict[tuple[tuple[Cell, ...], CellValue | None, bool, bool], tuple[int, int]]


def cell_values(grid: Grid, flag: Flag) -> tuple[CellValue, ...]:
    """Each cell's value, as `resolve` gives it (the same rules), without the bits of what
    it can serve: what a flag's history compares."""
    default, app_cells = _application_cells(grid, flag)
    found: list[CellValue] = []
    for environment in grid.environments:
        row = _environment_cells(grid.applications, flag, environment, default, app_cells)
        found.extend(map(_VALUE, row))
    return tuple(found)


_VALUE = operator.itemgetter(0)  # a Cell's value, at C speed


def _application_cells(grid: Grid, flag: Flag) -> tuple[Cell, list[Cell]]:
    """The flag's default cell, and each application's cell where no environment decides."""
    default = shared_cell(_default(flag), DEFAULT)
    app_cells = [
        shared_cell(flag.applications[app], APPLICATION) if app in flag.applications else default
        for app in grid.applications
    ]
    return default, app_cells


def _resolve_flag(grid: Grid, flag: Flag, bits: _RowBits) -> Resolution:
    default, app_cells = _application_cells(grid, flag)
    cells: list[Cell] = []
    off = _off_value(flag)
    on = always = 0
    for number, environment in enumerate(grid.environments):
        row = _environment_cells(grid.applications, flag, environment, default, app_cells)
        cells.extend(row)
        ruled = rules_in(flag, environment)
        serves_on = any(variant != flag.off_variant for rule in ruled for variant in served(rule))
        serves_off = any(flag.off_variant in served(rule) for rule in ruled)
        key = (row, off, serves_on, serves_off)
        found = bits.get(key)
        if found is None:
            found = bits[key] = (
                _bits([cell.value != off or serves_on for cell in row]),
                _bits([cell.value != off and not serves_off for cell in row]),
            )
        on |= found[0] << number * grid.width
        always |= found[1] << number * grid.width
    return Resolution(tuple(cells), on, always)


def _bits(flags: list[bool]) -> int:
    return int("".join("1" if flag else "0" for flag in reversed(flags)) or "0", 2)


def _default(flag: Flag) -> bool | str:
    if flag.type == "boolean":
        assert flag.enabled is not None  # the model requires it
        return flag.enabled
    return flag.default_variant


def _off_value(flag: Flag) -> bool | str | None:
    """The cell value that means off: False, or the `off` variant (None: never off)."""
    return False if flag.type == "boolean" else flag.off


def _environment_cells(
    applications: Sequence[str], flag: Flag, environment: str, default: Cell, app_cells: list[Cell]
) -> tuple[Cell, ...]:
    override = flag.environments.get(environment)
    if override is None:
        return (default, *app_cells)
    if not isinstance(override, EnvironmentOverride):
        env_cell = shared_cell(override, ENVIRONMENT)
        return (env_cell,) * (len(applications) + 1)
    return _override_cells(applications, override, default, app_cells)


def _override_cells(
    applications: Sequence[str], override: EnvironmentOverride, default: Cell, app_cells: list[Cell]
) -> tuple[Cell, ...]:
    value = override.enabled if override.enabled is not None else override.default
    env_cell = default if value is None else shared_cell(value, ENVIRONMENT)
    cells = [env_cell, *(app_cells if value is None else [env_cell] * len(applications))]
    for app, specific in override.applications.items():
        if app in applications:  # few, so found by name rather than each application asked
            cells[applications.index(app) + 1] = shared_cell(specific, ENVIRONMENT_APPLICATION)
    return tuple(cells)


def source_path(source: str, environment: str, application: str | None) -> tuple[str, ...]:
    """Where in the flag file the value of `source` is declared."""
    if source == ENVIRONMENT_APPLICATION and application is not None:
        return ("environments", environment, "applications", application)
    if source == ENVIRONMENT:
        return ("environments", environment, "enabled")  # or `default`, or the bare value
    if source == APPLICATION and application is not None:
        return ("applications", application)
    return ("enabled",)
