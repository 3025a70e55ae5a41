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
from core.resolve import Cell, Grid, Resolution
from core.rules import normalized, rules_in

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
    resolved = {}
    for index, environment in enumerate(grid.environments):
        cells = resolution.cells[index * width : (index + 1) * width]
        rules = normalized(key, flag, rules_in(flag, environment))
        if rules or flag.type != "boolean" or shared is None:
            resolved[environment] = row(cells, grid.applications, variants, rules)
        else:
            if cells not in shared:
                shared[cells] = row(cells, grid.applications, variants, [])
            resolved[environment] = shared[cells]
    return resolved


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
    every application are kept as they are, so a document already expanded costs a pass."""
    applications = document["applications"]
    flags = {}
    for key, flag in document["flags"].items():
        rows = flag["resolved"]
        if all(len(found["applications"]) == len(applications) for found in rows.values()):
            flags[key] = flag
            continue
        full = {
            environment: _expanded_row(found, applications) for environment, found in rows.items()
        }
        flags[key] = {**flag, "resolved": full}
    return {**document, "flags": flags}


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
