"""A flag's resolved rows as the snapshot holds them: `compiler.emit` writes them and
`core.verify` checks a snapshot's rows against them, so both use this one definition.

Rules: a row is one environment's cell (`variant`, `value`, `source`), the rules in force
there (`core.rules`, normalized) and the cells of the applications whose cell is not the
environment's (snapshot format 3: every other application has the environment's cell, and
most have); a cell's value is its variant's value, as served (float flags serve floats: 2
is 2.0). `expanded` gives readers every application's cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model import Flag
from core.resolve import Cell, Grid, Resolution, resolve
from core.rules import normalized, rules_in
from core.schedule import phases, scheduled, utc_text

Row = tuple[Cell, ...]  # one environment: without application, then each application


def variants_of(flag: Flag) -> dict[str, Any]:
    """The variants and their values as served."""
    if flag.type == "float":
        return {name: float(value) for name, value in flag.variant_values.items()}
    return dict(flag.variant_values)


def declared_fields(flag: Flag) -> dict[str, Any]:
    """The snapshot's fields that say what the flag serves: type, variants, default, off and
    enabled (null for typed flags)."""
    return {
        "type": flag.type,
        "variants": variants_of(flag),
        "default": flag.default_variant,
        "off": flag.off_variant,
        "enabled": flag.enabled,
    }


def resolved_rows(
    key: str,
    flag: Flag,
    resolution: Resolution,
    grid: Grid,
    shared: dict[Row, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """`resolved`: each environment's row. The rows of boolean flags without rules depend on
    their cells alone; `shared` keeps those, so identical rows are built once."""
    width = grid.width
    variants = variants_of(flag)
    boolean = flag.type == "boolean"
    resolved = {}
    for index, environment in enumerate(grid.environments):
        cells = resolution.cells[index * width : (index + 1) * width]
        ruled = rules_in(flag, environment)
        rules = normalized(key, flag, ruled) if ruled else []
        if rules or not boolean or shared is None:
            resolved[environment] = row(cells, grid.applications, variants, rules)
            continue
        found = shared.get(cells)  # one look-up, as a row of 21 cells takes time to hash
        if found is None:
            found = shared[cells] = row(cells, grid.applications, variants, [])
        resolved[environment] = found
    return resolved


def steps(
    key: str, flag: Flag, grid: Grid, shared: dict[Row, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """`steps`: for each moment of the flag's schedule (`core.schedule.phases`) at which a
    row changes, `at` (UTC, `2027-01-11T08:00:00Z`) and the rows of the environments that
    change then, as `resolved` has them; empty without a schedule. The rows of `resolved`
    are those before the first step, so nothing here depends on when a build ran."""
    if not scheduled(flag):
        return []
    made = []
    before: dict[str, dict[str, Any]] | None = None
    for phase in phases(flag, grid.environments):
        resolution = resolve(grid, {key: phase.flag})[key]
        rows = resolved_rows(key, phase.flag, resolution, grid, shared)
        if before is not None and phase.start is not None:
            changed = {name: row for name, row in rows.items() if row != before[name]}
            if changed:
                made.append({"at": utc_text(phase.start), "resolved": changed})
        before = rows
    return made


def row(
    cells: Row, applications: tuple[str, ...], variants: Mapping[str, Any], rules: list[Any]
) -> dict[str, Any]:
    """One environment's row: the applications listed are those whose cell is not the
    environment's (the same variant from the same level)."""
    own = cells[0]
    return {
        **cell(own, variants),
        "rules": rules,
        "applications": {
            application: cell(found, variants)
            for application, found in zip(applications, cells[1:], strict=True)
            if found != own
        },
    }


def expanded(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` (a snapshot, format 3) with every application in every row: those a row
    does not list get the environment's cell, one copy shared by the row. Rows that list
    every application are kept as they are, so a document already expanded costs a pass.
    Equal rows of boolean flags without rules are one row, as `resolved_rows` builds them:
    such a row depends on its cells alone. Held once, the snapshot of 10,000 flags in five
    environments of 20 applications (bench/gen_tree.py) takes 63 MB of Python objects in a
    flagserve worker, not 110 MB."""
    applications = document["applications"]
    shared: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    flags = {}
    for key, entry in document["flags"].items():
        share = shared if entry["type"] == "boolean" else None
        flag = entry if "steps" not in entry else _with_steps_expanded(entry, applications, share)
        rows = flag["resolved"]
        if all(len(found["applications"]) == len(applications) for found in rows.values()):
            flags[key] = flag
            continue
        flags[key] = {**flag, "resolved": _expanded(rows, applications, share)}
    return {**document, "flags": flags}


_SharedRows = dict[tuple[Any, ...], Mapping[str, Any]] | None  # by `_boolean_row_key`


def _with_steps_expanded(
    flag: Mapping[str, Any], applications: list[str], shared: _SharedRows
) -> dict[str, Any]:
    """A flag with a schedule (few have one) with each step's rows expanded too."""
    later = [
        {**step, "resolved": _expanded(step["resolved"], applications, shared)}
        for step in flag["steps"]
    ]
    return {**flag, "steps": later}


def _expanded(
    rows: Mapping[str, Any], applications: list[str], shared: _SharedRows
) -> dict[str, Any]:
    """Each row expanded; one row for equal ones where `shared` (a boolean flag's)."""
    expanded = {}
    for name, found in rows.items():
        key = None if shared is None else _boolean_row_key(found)
        if shared is None or key is None:
            expanded[name] = _expanded_row(found, applications)
        else:
            known = shared.get(key)
            if known is None:
                known = shared[key] = _expanded_row(found, applications)
            expanded[name] = known
    return expanded


_CELL_KEYS = frozenset(("variant", "value", "source"))
_ROW_KEYS = _CELL_KEYS | {"rules", "applications"}


def _boolean_row_key(found: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What a boolean flag's row is made of, when it has no rules and holds only cells of
    boolean values (a verified snapshot's do), the applications in its order; else None."""
    if found.keys() != _ROW_KEYS or found["rules"]:
        return None
    key: list[Any] = [found["variant"], found["value"], found["source"]]
    for name, cell in found["applications"].items():
        if cell.keys() != _CELL_KEYS:
            return None
        key += (name, cell["variant"], cell["value"], cell["source"])
    if not all(type(value) is bool for value in key[1::4]):
        return None
    return tuple(key)


def _expanded_row(found: Mapping[str, Any], applications: list[str]) -> Mapping[str, Any]:
    listed = found["applications"]
    if len(listed) == len(applications):
        return found
    own = {"variant": found["variant"], "value": found["value"], "source": found["source"]}
    return {**found, "applications": {name: listed.get(name, own) for name in applications}}


def cell(found: Cell, variants: Mapping[str, Any]) -> dict[str, Any]:
    """One cell: its variant, the variant's value, and the level that decided it."""
    if isinstance(found.value, bool):
        variant = "on" if found.value else "off"
        return {"variant": variant, "value": found.value, "source": found.source}
    return {"variant": found.value, "value": variants[found.value], "source": found.source}
