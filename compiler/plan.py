"""The plan of a change to the flags, as `flagc diff` shows it for a pull request.

A pure function of two compiled trees, BASE and HEAD: the flags added, removed, moved and
changed (which declared fields, from what to what), every resolved value that changes,
including those that appear or disappear with an environment or application of the project,
and the steps of their schedules added, removed or moved (compiler.step_changes).
Either side may be missing (no flags folder at that revision) or have errors: the plan
compares what compiled and says what it could not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal, NamedTuple

from compiler.changes import (
    Cell,
    FieldChange,
    ValueChange,
    changed_fields,
    changed_values,
    off_value,
)
from compiler.diagnostics import Severity
from compiler.pipeline import Compiled
from compiler.rule_changes import FlagAt, RuleChange, flag_rule_changes
from compiler.step_changes import ScheduleAt, StepChange, flag_step_changes
from compiler.validate import FlagFile
from core.model import Flag
from core.resolve import CellValue, Grid, Resolution

Kind = Literal["added", "removed", "moved", "changed"]
KINDS: tuple[Kind, ...] = ("added", "removed", "moved", "changed")
SideName = Literal["base", "head"]


@dataclass(frozen=True, slots=True)
class FlagChange:
    key: str
    base_path: str | None  # the file inside the flags folder, None where the flag is absent
    head_path: str | None
    fields: tuple[FieldChange, ...] = ()
    values: tuple[ValueChange, ...] = ()
    rules: tuple[RuleChange, ...] = ()  # the rules in force, per environment
    steps: tuple[StepChange, ...] = ()  # the schedules' steps, in time order

    @property
    def kind(self) -> Kind:
        if self.base_path is None:
            return "added"
        if self.head_path is None:
            return "removed"
        return "moved" if self.base_path != self.head_path else "changed"

    @property
    def path(self) -> str:
        """Where the flag is now, or was last."""
        return self.head_path or self.base_path or ""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A flag present on one side whose file has errors on the other: not compared, since
    calling it added or removed would be wrong."""

    key: str
    side: SideName  # where the file has errors
    file: str  # as the diagnostics show it


@dataclass(frozen=True, slots=True)
class ProjectChange:
    environments_added: tuple[str, ...] = ()
    environments_removed: tuple[str, ...] = ()
    applications_added: tuple[str, ...] = ()
    applications_removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (
                self.environments_added,
                self.environments_removed,
                self.applications_added,
                self.applications_removed,
            )
        )


@dataclass(frozen=True, slots=True)
class Label:
    """How a side is named to people: the revision as given, and its commit if any."""

    name: str
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class Side:
    name: str
    commit: str | None
    exists: bool  # False: no flags folder at that revision
    flags: int
    errors: int
    project_valid: bool


@dataclass(frozen=True, slots=True)
class EnvironmentSummary:
    environment: str
    changes: int  # values that change
    on: int  # values that end on, having been off or absent (typed: not the `off` variant)
    off: int  # values that were on and end off or absent
    rules: int = 0  # changes to the rules in force there (compiler.rule_changes)
    steps: int = 0  # steps added, removed or moved there (compiler.step_changes)


@dataclass(frozen=True, slots=True)
class Plan:
    base: Side
    head: Side
    environments: tuple[str, ...]  # of either side, HEAD's order first
    applications: tuple[str, ...]
    project: ProjectChange
    values_compared: bool  # False when a side's project is invalid: no grid to resolve on
    flags: tuple[FlagChange, ...] = ()  # sorted by key
    unreadable: tuple[Unreadable, ...] = ()

    def count(self, kind: Kind) -> int:
        return sum(change.kind == kind for change in self.flags)

    def by_environment(self) -> tuple[EnvironmentSummary, ...]:
        """Every environment of either side, in order, with how many values change there."""
        counts = {environment: [0, 0, 0, 0, 0] for environment in self.environments}
        for change in self.flags:
            for value in change.values:
                row = counts[value.environment]
                row[0] += 1
                row[1] += value.turns_on
                row[2] += value.turns_off
            for rule in change.rules:
                counts[rule.environment][3] += 1
            for step in change.steps:
                counts[step.environment][4] += 1
        return tuple(EnvironmentSummary(env, *row) for env, row in counts.items())

    @property
    def empty(self) -> bool:
        return not (self.flags or self.unreadable or self.project)


class _Tree(NamedTuple):
    """One side, reduced to what the plan compares."""

    flags: Mapping[str, FlagFile]
    grid: Grid | None
    resolved: Mapping[str, Resolution]
    broken: Mapping[str, str]  # flag key -> a file of that name with errors


# A side without a flags folder: no flags, and a project without environments, so that
# everything on the other side is added (or removed) value by value.
_NOTHING = _Tree({}, Grid((), ()), {}, {})


@dataclass(slots=True)
class _Order:
    """Sort keys that follow the project's order (development before production) rather
    than the alphabet; names of either side."""

    environments: dict[str, int]
    applications: dict[str, int]
    parts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        # Field names first, in the schema's order, so that `enabled` comes before
        # `applications` inside an environment override, as people write them.
        self.parts = {}
        for name in (*Flag.model_fields, *self.environments, *self.applications):
            self.parts.setdefault(name, len(self.parts))

    def cell(self, cell: Cell) -> tuple[int, int]:
        environment, application = cell
        return self.environments[environment], (
            -1 if application is None else self.applications[application]
        )

    def path(self, path: str) -> tuple[tuple[int, str], ...]:
        return tuple((self.parts.get(part, len(self.parts)), part) for part in path.split("."))


def plan(
    base: Compiled | None,
    head: Compiled | None,
    *,
    base_label: Label = Label("BASE"),
    head_label: Label = Label("HEAD"),
) -> Plan:
    """What changes from `base` to `head`; None is a side without a flags folder."""
    old, new = _tree(base), _tree(head)
    compared = old.grid is not None and new.grid is not None
    environments = _union(_names(new.grid, "environments"), _names(old.grid, "environments"))
    applications = _union(_names(new.grid, "applications"), _names(old.grid, "applications"))
    order = _Order(_ranks(environments), _ranks(applications))
    changes: list[FlagChange] = []
    unreadable: list[Unreadable] = []
    for key in sorted({*old.flags, *new.flags}):
        broken = _unreadable(key, old, new)
        if broken is not None:
            unreadable.append(broken)
            continue
        change = _flag_change(key, old, new, order, compared=compared)
        if change is not None:
            changes.append(change)
    return Plan(
        base=_side(base, base_label),
        head=_side(head, head_label),
        environments=environments,
        applications=applications,
        project=_project_change(old.grid, new.grid) if compared else ProjectChange(),
        values_compared=compared,
        flags=tuple(changes),
        unreadable=tuple(unreadable),
    )


def _tree(compiled: Compiled | None) -> _Tree:
    if compiled is None:
        return _NOTHING
    return _Tree(compiled.flags, compiled.grid, compiled.resolved, _broken(compiled))


def _broken(compiled: Compiled) -> dict[str, str]:
    """Flag keys whose file has errors serious enough to leave the flag out (a flag with,
    say, a dependency error is still compiled, and is then simply compared)."""
    broken: dict[str, str] = {}
    for diagnostic in compiled.diagnostics:
        path = PurePosixPath(diagnostic.file)
        if diagnostic.severity is Severity.ERROR and path.suffix in (".yaml", ".yml"):
            broken.setdefault(path.stem, diagnostic.file)
    return broken


def _side(compiled: Compiled | None, label: Label) -> Side:
    if compiled is None:
        return Side(label.name, label.commit, False, 0, 0, False)
    errors = sum(d.severity is Severity.ERROR for d in compiled.diagnostics)
    return Side(
        label.name, label.commit, True, len(compiled.flags), errors, compiled.grid is not None
    )


def _names(grid: Grid | None, which: Literal["environments", "applications"]) -> tuple[str, ...]:
    if grid is None:
        return ()
    return grid.environments if which == "environments" else grid.applications


def _union(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group))


def _ranks(names: tuple[str, ...]) -> dict[str, int]:
    return {name: rank for rank, name in enumerate(names)}


def _project_change(old: Grid | None, new: Grid | None) -> ProjectChange:
    old, new = old or Grid((), ()), new or Grid((), ())
    return ProjectChange(
        environments_added=tuple(e for e in new.environments if e not in old.environments),
        environments_removed=tuple(e for e in old.environments if e not in new.environments),
        applications_added=tuple(a for a in new.applications if a not in old.applications),
        applications_removed=tuple(a for a in old.applications if a not in new.applications),
    )


def _unreadable(key: str, old: _Tree, new: _Tree) -> Unreadable | None:
    if key not in new.flags and key in new.broken:
        return Unreadable(key, "head", new.broken[key])
    if key not in old.flags and key in old.broken:
        return Unreadable(key, "base", old.broken[key])
    return None


def _flag_change(
    key: str, old: _Tree, new: _Tree, order: _Order, *, compared: bool
) -> FlagChange | None:
    before, after = old.flags.get(key), new.flags.get(key)
    change = FlagChange(
        key,
        None if before is None else before.document.path,
        None if after is None else after.document.path,
        _field_changes(before, after, order),
        _value_changes(key, old, new, order) if compared else (),
        _rule_changes(key, old, new, order) if compared else (),
        _step_changes(key, old, new, order) if compared else (),
    )
    # A schedule's change shows in its fields too; its steps say what it does and when.
    if change.kind == "changed" and not (
        change.fields or change.values or change.rules or change.steps
    ):
        return None
    return change


def _field_changes(
    before: FlagFile | None, after: FlagFile | None, order: _Order
) -> tuple[FieldChange, ...]:
    changes = changed_fields(
        before.document.data if before else {}, after.document.data if after else {}
    )
    return tuple(sorted(changes, key=lambda change: order.path(change.path)))


def _value_changes(key: str, old: _Tree, new: _Tree, order: _Order) -> tuple[ValueChange, ...]:
    before, after = old.resolved.get(key), new.resolved.get(key)
    if before is not None and after is not None and old.grid == new.grid and before == after:
        return ()  # the common case, decided without building a cell by cell view
    old_cells, new_cells = _cells(old.grid, before), _cells(new.grid, after)
    cells = sorted({*old_cells, *new_cells}, key=order.cell)
    off = (_off(old, key), _off(new, key))
    return changed_values(old_cells, new_cells, cells, off)


def _off(tree: _Tree, key: str) -> CellValue | None:
    found = tree.flags.get(key)
    return off_value(None if found is None else found.flag)


def _rule_changes(key: str, old: _Tree, new: _Tree, order: _Order) -> tuple[RuleChange, ...]:
    before, after = old.flags.get(key), new.flags.get(key)
    if before and after and before.document.data == after.document.data and old.grid == new.grid:
        return ()  # the common case: an unchanged file, on the same environments
    return flag_rule_changes(
        order.environments,  # either side's, in the plan's order
        FlagAt(key, before.flag if before else None, _names(old.grid, "environments")),
        FlagAt(key, after.flag if after else None, _names(new.grid, "environments")),
    )


def _step_changes(key: str, old: _Tree, new: _Tree, order: _Order) -> tuple[StepChange, ...]:
    before, after = old.flags.get(key), new.flags.get(key)
    if before and after and before.document.data == after.document.data and old.grid == new.grid:
        return ()  # the common case, as for rules
    return flag_step_changes(
        order.environments,
        ScheduleAt(key, before.flag if before else None, old.grid),
        ScheduleAt(key, after.flag if after else None, new.grid),
    )


def _cells(grid: Grid | None, resolution: Resolution | None) -> dict[Cell, CellValue]:
    if grid is None or resolution is None:
        return {}
    return {grid.cell(index): cell.value for index, cell in enumerate(resolution.cells)}
