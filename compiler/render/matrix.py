"""The table `flagc build` ends with: what is on where, one row a flag, one column an
environment."""

from __future__ import annotations

from collections.abc import Mapping

from compiler.printable import printable
from core.resolve import Grid, Resolution


def matrix(grid: Grid, resolved: Mapping[str, Resolution], owners: Mapping[str, str]) -> str:
    """What is on where, one row a flag: each environment's value, then the applications
    that differ from it, e.g. `off (on: web)`."""
    header = ["flag", "owner", *grid.environments]
    rows = [header]
    for key in sorted(resolved):
        cells = resolved[key].cells
        row = [key, printable(owners[key])]
        for env in range(len(grid.environments)):
            base = cells[env * grid.width].value
            differ = [
                app
                for offset, app in enumerate(grid.applications, start=1)
                if cells[env * grid.width + offset].value != base
            ]
            state = "on" if base else "off"
            row.append(
                f"{state} ({'off' if base else 'on'}: {', '.join(differ)})" if differ else state
            )
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )
