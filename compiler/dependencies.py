"""Stage 4, dependencies: dependency cycles, and flags on where a dependency is off."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from compiler.dependency_proofs import InCell, Unproved, first_unproved
from compiler.diagnostics import Diagnostic, Severity
from compiler.validate import FlagFile
from core.graph import find_cycle, is_cyclic, strongly_connected
from core.resolve import Grid, Resolution, source_path
from core.rules import normalized, rules_in

MAX_NAMED = 10  # cells or flags named in one message before "and N more"


def check_dependencies(
    grid: Grid | None, flags: Mapping[str, FlagFile], resolved: Mapping[str, Resolution]
) -> list[Diagnostic]:
    """Cycles need only the flags; values (with no valid project, no `grid`) are checked
    when there is a grid to resolve them on."""
    edges = {key: flag_file.flag.depends_on for key, flag_file in flags.items()}
    return [
        *_cycles(flags, edges),
        *(_disabled(grid, flags, resolved, edges) if grid is not None else ()),
        *(_partial(grid, flags, resolved) if grid is not None else ()),
    ]


def _cycles(flags: Mapping[str, FlagFile], edges: Mapping[str, list[str]]) -> Iterator[Diagnostic]:
    for component in strongly_connected(sorted(edges), edges):
        if not is_cyclic(component, edges):
            continue
        cycle = find_cycle(component, edges)
        first, second = cycle[0], cycle[1]
        if len(component) > len(cycle) - 1:
            message = (
                f"dependency cycle: {' -> '.join(cycle)}, and more: {', '.join(component)} "
                "all depend on one another; remove dependencies until none of them needs itself"
            )
        else:
            message = (
                f"dependency cycle: {' -> '.join(cycle)}; a flag cannot need itself: "
                "remove one of these dependencies"
            )
        flag_file = flags[first]
        yield _at(
            flag_file, ("depends_on", edges[first].index(second)), "dependency-cycle", message
        )


def _disabled(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    edges: Mapping[str, list[str]],
) -> Iterator[Diagnostic]:
    dependents = _reverse(edges)
    for key, flag_file in flags.items():
        for position, dependency in enumerate(flag_file.flag.depends_on):
            if dependency not in resolved:
                continue
            broken = resolved[key].on & ~resolved[dependency].on
            if broken:
                cells = _bits(broken)
                message = _disabled_message(
                    grid,
                    key,
                    flags[dependency],
                    resolved[dependency],
                    cells,
                    _on_dependents(key, dependents, resolved, broken),
                )
                yield _at(flag_file, ("depends_on", position), "dependency-disabled", message)


def _partial(
    grid: Grid, flags: Mapping[str, FlagFile], resolved: Mapping[str, Resolution]
) -> Iterator[Diagnostic]:
    """`dependency-partial`: cells where the dependent can be on and the dependency can be
    off for some context (not for all: that is `dependency-disabled`), unless
    `compiler.dependency_proofs` proves the dependency on wherever the dependent is."""
    for key, flag_file in flags.items():
        for position, dependency in enumerate(flag_file.flag.depends_on):
            if dependency not in resolved or key not in resolved:
                continue
            mine, theirs = resolved[key], resolved[dependency]
            doubtful = mine.on & theirs.on & ~theirs.always
            if not doubtful:
                continue
            failures = _unproved_cells(
                grid, (flag_file, mine), (flags[dependency], theirs), doubtful
            )
            if failures:
                cells = [index for index, _ in failures]
                message = _partial_message(grid, key, dependency, cells, failures[0][1])
                yield _at(flag_file, ("depends_on", position), "dependency-partial", message)


def _unproved_cells(
    grid: Grid,
    dependent: tuple[FlagFile, Resolution],
    dependency: tuple[FlagFile, Resolution],
    doubtful: int,
) -> list[tuple[int, Unproved]]:
    found = []
    for index in _bits(doubtful):
        environment, _ = grid.cell(index)
        failure = first_unproved(
            _in_cell(*dependent, environment, index), _in_cell(*dependency, environment, index)
        )
        if failure is not None:
            found.append((index, failure))
    return found


def _in_cell(flag_file: FlagFile, resolution: Resolution, environment: str, index: int) -> InCell:
    """The flag in one cell, as the proofs see it."""
    flag = flag_file.flag
    rules = normalized(flag_file.key, flag, rules_in(flag, environment))
    off = flag.off_variant
    value = resolution.cells[index].value
    return InCell(rules, value != (False if flag.type == "boolean" else off), off)


def _partial_message(
    grid: Grid, key: str, dependency: str, cells: list[int], failure: Unproved
) -> str:
    mine = "its value" if failure.rule is None else f"its rule {failure.rule}"
    theirs = (
        "its value is off there"
        if failure.blocking is None
        else f"its rule {failure.blocking} may serve off"
    )
    return (
        f"{key} can be on in {_cells_named(grid, cells)} ({mine}) for contexts where its "
        f"dependency {dependency} may be off ({theirs}); make {dependency} on for every "
        f"context there, or give both rollouts the same seed and by with {key}'s on-share at "
        f"most {dependency}'s, or narrow {key}'s rule conditions to within {dependency}'s rule"
    )


def _disabled_message(
    grid: Grid,
    key: str,
    dependency: FlagFile,
    resolution: Resolution,
    cells: list[int],
    also: list[str],
) -> str:
    environment, application = grid.cell(cells[0])
    path = source_path(resolution.cells[cells[0]].source, environment, application)
    line, _ = dependency.document.source.locate(path)
    where = _cells_named(grid, cells)
    named = ", ".join(also[:MAX_NAMED]) + (" and others" if len(also) > MAX_NAMED else "")
    with_it = f" (and {named}, which need it)" if also else ""
    return (
        f"{key} is on in {where}, but its dependency {dependency.key} is off there "
        f"({dependency.document.file}:{line}); turn {key} off there too{with_it}, "
        f"or {dependency.key} on"
    )


def _on_dependents(
    key: str, dependents: Mapping[str, list[str]], resolved: Mapping[str, Resolution], cells: int
) -> list[str]:
    """Flags that need `key`, directly or not, and are on in some of `cells`: the first
    few, since a message names only MAX_NAMED and a broken tree may have many."""
    found: list[str] = []
    seen = {key}
    queue = deque([key])
    while queue and len(found) <= MAX_NAMED:
        for dependent in dependents.get(queue.popleft(), []):
            if dependent not in seen and dependent in resolved and resolved[dependent].on & cells:
                seen.add(dependent)
                found.append(dependent)
                queue.append(dependent)
    return found


def _reverse(edges: Mapping[str, list[str]]) -> dict[str, list[str]]:
    reverse: dict[str, list[str]] = {}
    for key in sorted(edges):
        for target in edges[key]:
            reverse.setdefault(target, []).append(key)
    return reverse


def _bits(mask: int) -> list[int]:
    return [index for index, bit in enumerate(reversed(bin(mask)[2:])) if bit == "1"]


def _cells_named(grid: Grid, cells: list[int]) -> str:
    """Cells, whole environments summarised: `all of production, staging/web`."""
    if len(cells) == len(grid.environments) * grid.width:
        return "every environment and application"
    names: list[str] = []
    for row, environment in enumerate(grid.environments):
        inside = [index for index in cells if index // grid.width == row]
        if len(inside) == grid.width and grid.applications:
            names.append(f"all of {environment}")
        else:
            names.extend(grid.name(index) for index in inside)
    if len(names) <= MAX_NAMED:
        return ", ".join(names)
    return f"{', '.join(names[:MAX_NAMED])} and {len(names) - MAX_NAMED} more"


def _at(flag_file: FlagFile, path: tuple[Any, ...], code: str, message: str) -> Diagnostic:
    line, column = flag_file.document.source.locate(path)
    return Diagnostic(flag_file.document.file, line, column, Severity.ERROR, code, message)
