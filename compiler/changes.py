"""One model of a change to the flags, shared by the audit log (what one commit changed)
and the plan (what one pull request changes): declared fields that changed, and resolved
values that changed. Each output (audit.json, `flagc audit`, `flagc diff`) turns these into
its own words and JSON at its edge; the rules of what counts as a change live here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from compiler.yamlsource import Data
from core.model import Flag
from core.resolve import CellValue

Cell = tuple[str, str | None]  # (environment, application or None for the environment's own)


class FieldChange(NamedTuple):
    """A declared field, as a dotted path (`environments.production.applications.web`);
    None stands for "not declared" (the schemas never allow null). A tuple (path, before,
    after), as the audit log's writer takes it: a first build lists every field of every
    created flag (126,000 at 10,000 flags), and as a frozen dataclass they took 0.12 s to
    list and sort, not 0.095 s, and each was copied into a tuple to be written."""

    path: str
    before: Data
    after: Data


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One resolved value; None stands for "absent" (the flag, the environment or the
    application does not exist on that side). `off_before` and `off_after` are the values
    that mean off on each side: False for boolean flags, the `off` variant for typed flags,
    None for a typed flag without one (never off)."""

    environment: str
    application: str | None
    before: CellValue | None
    after: CellValue | None
    off_before: CellValue | None = False
    off_after: CellValue | None = False

    @property
    def was_on(self) -> bool:
        """On before: present, and not the value that means off."""
        return self.before is not None and self.before != self.off_before

    @property
    def is_on(self) -> bool:
        return self.after is not None and self.after != self.off_after

    @property
    def turns_on(self) -> bool:
        """Off or absent before, on after (a typed flag from `off` to another variant)."""
        return self.is_on and not self.was_on

    @property
    def turns_off(self) -> bool:
        return self.was_on and not self.is_on

    @property
    def cell(self) -> str:
        """The cell's name as people and the formats write it: `production`, `production/web`."""
        return (
            self.environment
            if self.application is None
            else f"{self.environment}/{self.application}"
        )


_new = tuple.__new__


def changed_fields(before: Data, after: Data) -> list[FieldChange]:
    """Declared values that differ, by dotted path (`environments.production.enabled`), in
    no particular order (each output sorts them its way); lists such as depends_on and tags
    are single values, as people read them; an empty mapping declares nothing, so adding or
    removing one (`environments: {}`) is no change."""
    found: list[FieldChange] = []
    if before is None and isinstance(after, dict):  # a created flag: every field it declares
        _declared(after, "", found, created=True)
    elif after is None and isinstance(before, dict):  # a deleted flag
        _declared(before, "", found, created=False)
    else:
        _differences(before, after, "", found)
    return found


def _declared(
    data: dict[str, Data], prefix: str, found: list[FieldChange], *, created: bool
) -> None:
    """What `_differences` finds between nothing and `data`, without comparing."""
    for key, value in data.items():
        if isinstance(value, dict):
            _declared(value, f"{prefix}{key}.", found, created=created)
        elif value is not None:
            # FieldChange(path, None, value) without the call to its __new__: a first build
            # makes 126,000 of them at 10,000 flags (0.068 -> 0.054 s).
            found.append(
                _new(
                    FieldChange,
                    (prefix + key, None, value) if created else (prefix + key, value, None),
                )
            )


def _differences(before: Data, after: Data, prefix: str, found: list[FieldChange]) -> None:
    # Descends only where the two differ: most changes touch one field of a small tree.
    if before == after:
        return
    if isinstance(before, dict) or isinstance(after, dict):
        old = before if isinstance(before, dict) else {}
        new = after if isinstance(after, dict) else {}
        for key in old.keys() | new.keys():
            value, other = old.get(key), new.get(key)
            if value == other:
                continue
            if isinstance(value, dict) or isinstance(other, dict):
                _differences(value, other, f"{prefix}{key}.", found)
            else:  # a leaf: what the call would find, without the call (most of them)
                found.append(FieldChange(f"{prefix}{key}", value, other))
        if prefix and not (isinstance(before, dict) and isinstance(after, dict)):
            # A mapping replaced a value or the reverse: that value changed as well.
            old_leaf = None if isinstance(before, dict) else before
            new_leaf = None if isinstance(after, dict) else after
            if old_leaf != new_leaf:
                found.append(FieldChange(prefix[:-1], old_leaf, new_leaf))
    elif prefix:
        found.append(FieldChange(prefix[:-1], before, after))


def changed_values(
    before: Mapping[Cell, CellValue],
    after: Mapping[Cell, CellValue],
    cells: Iterable[Cell],
    off: tuple[CellValue | None, CellValue | None] = (False, False),
) -> tuple[ValueChange, ...]:
    """The cells, in the order of `cells` (each output orders them its way), whose value
    differs between `before` and `after`; a cell missing from a side is absent (None).
    `off`: the value that means off before and after (`off_value`)."""
    return tuple(
        ValueChange(cell[0], cell[1], before.get(cell), after.get(cell), *off)
        for cell in cells
        if before.get(cell) != after.get(cell)
    )


def off_value(flag: Flag | None) -> CellValue | None:
    """The cell value that means off: False for boolean flags, a typed flag's `off` variant
    (None: a typed flag without `off` is never off, and so is an absent flag)."""
    if flag is None:
        return None
    return False if flag.type == "boolean" else flag.off
