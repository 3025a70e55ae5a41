"""Stage 3 of the compiler, resolve: every flag's value in every environment x application,
and why (in core: the server's verification resolves each flag of a build again).

Most specific first, for environment E and application A:
`environments.E.applications.A`, then `environments.E` (its value or its `enabled`), then
`applications.A`, then `enabled`. With no application: `environments.E`, then `enabled`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from core.model import EnvironmentOverride, Flag, Project

# Which level decided a value; the names are part of the snapshot format.
ENVIRONMENT_APPLICATION = "environment-application"
ENVIRONMENT = "environment"
APPLICATION = "application"
DEFAULT = "default"
SOURCES = (ENVIRONMENT_APPLICATION, ENVIRONMENT, APPLICATION, DEFAULT)


class Cell(NamedTuple):  # a tuple, so that rows of cells hash and compare at C speed
    value: bool
    source: str


# Only eight cells exist; sharing them keeps a matrix of a million cells cheap.
_CELLS = {(value, source): Cell(value, source) for value in (True, False) for source in SOURCES}
ALL_CELLS = tuple(_CELLS.values())


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
    on: int  # bit i is set when cells[i] is on: dependency checks become integer operations


def grid_of(project: Project) -> Grid:
    return Grid(tuple(project.environments), tuple(project.applications))


def resolve(grid: Grid, flags: Mapping[str, Flag]) -> dict[str, Resolution]:
    """Resolve every flag over the whole grid; names the project does not declare are ignored."""
    return {key: _resolve_flag(grid, flag) for key, flag in flags.items()}


def _resolve_flag(grid: Grid, flag: Flag) -> Resolution:
    default = _CELLS[flag.enabled, DEFAULT]
    app_cells = [
        _CELLS[flag.applications[app], APPLICATION] if app in flag.applications else default
        for app in grid.applications
    ]
    cells: list[Cell] = []
    for environment in grid.environments:
        cells.extend(_environment_cells(grid.applications, flag, environment, default, app_cells))
    bits = "".join("1" if cell.value else "0" for cell in reversed(cells))
    return Resolution(tuple(cells), int(bits, 2))


def _environment_cells(
    applications: Sequence[str], flag: Flag, environment: str, default: Cell, app_cells: list[Cell]
) -> list[Cell]:
    override = flag.environments.get(environment)
    if override is None:
        return [default, *app_cells]
    if isinstance(override, bool):
        env_cell = _CELLS[override, ENVIRONMENT]
        return [env_cell] * (len(applications) + 1)
    return _override_cells(applications, override, default, app_cells)


def _override_cells(
    applications: Sequence[str], override: EnvironmentOverride, default: Cell, app_cells: list[Cell]
) -> list[Cell]:
    enabled = override.enabled
    env_cell = default if enabled is None else _CELLS[enabled, ENVIRONMENT]
    below = app_cells if enabled is None else [env_cell] * len(applications)
    specific = override.applications
    return [
        env_cell,
        *(
            _CELLS[specific[app], ENVIRONMENT_APPLICATION] if app in specific else fallback
            for app, fallback in zip(applications, below, strict=True)
        ),
    ]


def source_path(source: str, environment: str, application: str | None) -> tuple[str, ...]:
    """Where in the flag file the value of `source` is declared."""
    if source == ENVIRONMENT_APPLICATION and application is not None:
        return ("environments", environment, "applications", application)
    if source == ENVIRONMENT:
        return ("environments", environment, "enabled")  # or the bare boolean there
    if source == APPLICATION and application is not None:
        return ("applications", application)
    return ("enabled",)
