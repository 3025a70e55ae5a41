"""Stage 3 of the compiler, resolve: every flag's value in every environment x application,
and why (in core: the server's verification resolves each flag of a build again).

Most specific first, for environment E and application A:
`environments.E.applications.A`, then `environments.E` (its value or its `enabled`), then
`applications.A`, then `enabled`. With no application: `environments.E`, then `enabled`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from core.model import EnvironmentOverride, Flag, Project, Rule
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
    def positions(self) -> dict[str, int]:
        """Each application's place in a row of cells (1 for the first)."""
        return {application: number for number, application in enumerate(self.applications, 1)}

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


# The bits of a row's cells whose value is not off, by the row and the value that means
# off: few distinct rows exist (their cells are shared), so most flags take theirs from
# here rather than cell by cell, which was half of resolving 10,000 flags.
_RowBits = dict[tuple[tuple[Cell, ...], CellValue | None], int]


def cell_values(grid: Grid, flag: Flag) -> tuple[CellValue, ...]:
    """Each cell's value, as `resolve` gives it (the same rules), without the bits of what
    it can serve: what a flag's history compares."""
    default, app_cells = _application_cells(grid, flag)
    found: list[CellValue] = []
    for environment in grid.environments:
        row = _environment_cells(grid, flag, environment, default, app_cells)
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
    width = grid.width
    row_mask = (1 << width) - 1
    on = always = 0
    for number, environment in enumerate(grid.environments):
        row = _environment_cells(grid, flag, environment, default, app_cells)
        cells.extend(row)
        key = (row, off)
        not_off = bits.get(key)
        if not_off is None:
            not_off = bits[key] = _bits([cell.value != off for cell in row])
        ruled = rules_in(flag, environment)
        # most rows have no rules: the walks of _serves were a fifth of resolving
        serves_on, serves_off = _serves(flag, ruled) if ruled else (False, False)
        # A cell can be on when its value is not off or a rule serves on; it is on for
        # every context when its value is not off and no rule serves off.
        on |= (row_mask if serves_on else not_off) << number * width
        always |= (0 if serves_off else not_off) << number * width
    return Resolution(tuple(cells), on, always)


def _serves(flag: Flag, rules: list[Rule]) -> tuple[bool, bool]:
    """Whether some of `rules` can serve a variant other than off, and off."""
    off = flag.off_variant
    serves_on = any(variant != off for rule in rules for variant in served(rule))
    serves_off = any(off in served(rule) for rule in rules)
    return serves_on, serves_off


def _bits(flags: list[bool]) -> int:
    found = 0
    for number, flag in enumerate(flags):
        if flag:
            found |= 1 << number
    return found


def _default(flag: Flag) -> bool | str:
    if flag.type == "boolean":
        assert flag.enabled is not None  # the model requires it
        return flag.enabled
    return flag.default_variant


def _off_value(flag: Flag) -> bool | str | None:
    """The cell value that means off: False, or the `off` variant (None: never off)."""
    return False if flag.type == "boolean" else flag.off


def _environment_cells(
    grid: Grid, flag: Flag, environment: str, default: Cell, app_cells: list[Cell]
) -> tuple[Cell, ...]:
    override = flag.environments.get(environment)
    if override is None:
        return (default, *app_cells)
    if not isinstance(override, EnvironmentOverride):
        env_cell = shared_cell(override, ENVIRONMENT)
        return (env_cell,) * grid.width
    return _override_cells(grid, override, default, app_cells)


def _override_cells(
    grid: Grid, override: EnvironmentOverride, default: Cell, app_cells: list[Cell]
) -> tuple[Cell, ...]:
    value = override.enabled if override.enabled is not None else override.default
    env_cell = default if value is None else shared_cell(value, ENVIRONMENT)
    cells = [env_cell, *(app_cells if value is None else [env_cell] * len(grid.applications))]
    positions = grid.positions
    for app, specific in override.applications.items():
        # few, so found by name rather than each application asked
        position = positions.get(app)
        if position is not None:
            cells[position] = shared_cell(specific, ENVIRONMENT_APPLICATION)
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
