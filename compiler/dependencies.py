"""Stage 4, dependencies: dependency cycles, and flags on where a dependency is off, at
every moment.

Dependencies hold at every moment: time is split at each moment a flag's value changes
(`core.schedule.phases`: each step, each share change of a ramp), and from each such moment
on, the edges with a scheduled flag at either end are checked again on the flags as they
then stand. A failure the flags already have before their first steps is reported as
always, without times; one that only a later interval has is reported once, naming the
intervals it holds in, in UTC (`from 2027-01-15T09:00Z to 2027-01-15T10:00Z`, and `from
2027-01-15T09:00Z on` for the last), consecutive ones merged. Without schedules nothing of
this runs.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from compiler.dependency_proofs import InCell, Unproved, first_unproved
from compiler.diagnostics import Diagnostic, Severity
from compiler.validate import FlagFile
from core.graph import find_cycle, is_cyclic, strongly_connected
from core.resolve import Grid, Resolution, resolve, source_path
from core.rules import normalized, rules_in
from core.schedule import Moment, Phase, phases, scheduled, short_text

MAX_NAMED = 10  # cells or flags named in one message before "and N more"


def check_dependencies(
    grid: Grid | None, flags: Mapping[str, FlagFile], resolved: Mapping[str, Resolution]
) -> list[Diagnostic]:
    """Cycles need only the flags; values (with no valid project, no `grid`) are checked
    when there is a grid to resolve them on."""
    edges = {key: flag_file.flag.depends_on for key, flag_file in flags.items()}
    return [
        *_cycles(flags, edges),
        *(_values(grid, flags, resolved, edges) if grid is not None else ()),
        *(_over_time(grid, flags, resolved, edges) if grid is not None else ()),
    ]


def _cycles(flags: Mapping[str, FlagFile], edges: Mapping[str, list[str]]) -> Iterator[Diagnostic]:
    if _acyclic(edges):  # most trees: 10,000 flags in 0.01 s, Tarjan's walk takes 0.04 s
        return
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


def _acyclic(edges: Mapping[str, list[str]]) -> bool:
    """Whether no flag needs itself, directly or not (edges to unknown flags left out):
    whether taking, again and again, the flags that no flag left needs takes them all."""
    needed_by = dict.fromkeys(edges, 0)
    for targets in edges.values():
        for target in targets:
            if target in needed_by:
                needed_by[target] += 1
    free = [node for node, count in needed_by.items() if count == 0]
    taken = 0
    while free:
        taken += 1
        for target in edges[free.pop()]:
            if target in needed_by:
                needed_by[target] -= 1
                if needed_by[target] == 0:
                    free.append(target)
    return taken == len(needed_by)


_Edge = tuple[FlagFile, int, str]  # the dependent, the position in its depends_on, the dependency


def _values(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    edges: Mapping[str, list[str]],
) -> list[Diagnostic]:
    """dependency-disabled at each edge that fails it, then dependency-partial at each. The
    edges are walked once for both, with the test of the cells' bits each starts with: few
    edges pass it, and two walks of 27,000 edges, with a call for each, took 0.032 s."""
    disabled: list[_Edge] = []
    partial: list[_Edge] = []
    for key, flag_file in flags.items():
        mine = resolved.get(key)
        for position, dependency in enumerate(flag_file.flag.depends_on):
            theirs = resolved.get(dependency)
            if mine is None or theirs is None:
                continue
            if mine.on & ~theirs.on:
                disabled.append((flag_file, position, dependency))
            if mine.on & theirs.on & ~theirs.always:
                partial.append((flag_file, position, dependency))
    return [
        *_disabled(grid, flags, resolved, edges, disabled),
        *_partial(grid, flags, resolved, partial),
    ]


def _disabled(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    edges: Mapping[str, list[str]],
    doubtful: list[_Edge],
) -> Iterator[Diagnostic]:
    """`dependency-disabled` at each of the `doubtful` edges where it holds."""
    dependents = _reverse(edges) if doubtful else {}
    for flag_file, position, dependency in doubtful:
        edge = (flag_file.key, dependency)
        found = _disabled_edge(grid, flags, resolved, dependents, edge)
        if found is not None:
            message = found[1]
            yield _at(flag_file, ("depends_on", position), "dependency-disabled", message)


def _disabled_edge(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    dependents: Mapping[str, list[str]],
    edge: tuple[str, str],
    known: int = 0,
) -> tuple[int, str] | None:
    """The cells where the dependent is on and its dependency off for every context
    (but those of `known`), and the message naming them; None when there are none."""
    key, dependency = edge
    broken = resolved[key].on & ~resolved[dependency].on & ~known
    if not broken:
        return None
    message = _disabled_message(
        grid,
        key,
        flags[dependency],
        resolved[dependency],
        _bits(broken),
        _on_dependents(key, dependents, resolved, broken),
    )
    return broken, message


def _partial(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    doubtful: list[_Edge],
) -> Iterator[Diagnostic]:
    """`dependency-partial`, at each of the `doubtful` edges: cells where the dependent can
    be on and the dependency can be off for some context (not for all: that is
    `dependency-disabled`), unless `compiler.dependency_proofs` proves the dependency on
    wherever the dependent is."""
    for flag_file, position, dependency in doubtful:
        key = flag_file.key
        failures = _partial_edge(grid, flags, resolved, (key, dependency))
        if failures:
            cells = [index for index, _ in failures]
            message = _partial_message(grid, key, dependency, cells, failures[0][1])
            yield _at(flag_file, ("depends_on", position), "dependency-partial", message)


def _partial_edge(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    edge: tuple[str, str],
) -> list[tuple[int, Unproved]]:
    """The cells where the dependent can be on for contexts where its dependency may be
    off, each with the first path the proofs failed for."""
    key, dependency = edge
    mine, theirs = resolved[key], resolved[dependency]
    doubtful = mine.on & theirs.on & ~theirs.always
    if not doubtful:
        return []
    return _unproved_cells(grid, (flags[key], mine), (flags[dependency], theirs), doubtful)


# -- at every moment ---------------------------------------------------------------------


_V = TypeVar("_V")


@dataclass(slots=True)
class _Timeline:
    """A scheduled flag's phases, each as a FlagFile and resolved when first asked for."""

    flag_file: FlagFile
    phases: list[Phase]
    starts: list[Moment] = field(init=False)  # each phase's but the base's
    made: dict[int, tuple[FlagFile, Resolution]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.starts = [phase.start for phase in self.phases[1:] if phase.start is not None]

    def at(self, grid: Grid, moment: Moment) -> tuple[FlagFile, Resolution] | None:
        """The flag as it stands at `moment`; None before its first step (the base)."""
        index = bisect.bisect_right(self.starts, moment)
        if index == 0:
            return None
        if index not in self.made:
            flag_file, flag = self.flag_file, self.phases[index].flag
            resolution = resolve(grid, {flag_file.key: flag})[flag_file.key]
            self.made[index] = FlagFile(flag_file.key, flag_file.document, flag), resolution
        return self.made[index]


class _At(Mapping[str, _V]):
    """`base`, with each scheduled flag's value as `changed` gives it (None: unchanged)."""

    def __init__(self, base: Mapping[str, _V], changed: Callable[[str], _V | None]) -> None:
        self._base, self._changed = base, changed

    def __getitem__(self, key: str) -> _V:
        found = self._changed(key)
        return self._base[key] if found is None else found

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def _over_time(
    grid: Grid,
    flags: Mapping[str, FlagFile],
    resolved: Mapping[str, Resolution],
    edges: Mapping[str, list[str]],
) -> Iterator[Diagnostic]:
    """dependency-disabled and dependency-partial from each moment a scheduled flag at
    either end of an edge changes on, for the cells its base did not already fail in."""
    changing = [(key, flag_file) for key, flag_file in flags.items() if scheduled(flag_file.flag)]
    if not changing:
        return
    dependents = _reverse(edges)
    # Only a flag at an edge's end needs its phases (a ramp's are many: 240 scheduled flags
    # of 10,000, most at no edge, took 0.05 s).
    timelines = {
        key: _Timeline(flag_file, phases(flag_file.flag, grid.environments))
        for key, flag_file in changing
        if flag_file.flag.depends_on or dependents.get(key)
    }
    for key, flag_file in flags.items():
        for position, dependency in enumerate(flag_file.flag.depends_on):
            if dependency not in resolved or not {key, dependency} & timelines.keys():
                continue
            edge = (key, dependency)
            found = _edge_over_time(grid, (flags, resolved), timelines, dependents, edge)
            for (code, message), intervals in found.items():
                text = f"{intervals}, {message}"
                yield _at(flag_file, ("depends_on", position), code, text)


def _edge_over_time(
    grid: Grid,
    base: tuple[Mapping[str, FlagFile], Mapping[str, Resolution]],
    timelines: Mapping[str, _Timeline],
    dependents: Mapping[str, list[str]],
    edge: tuple[str, str],
) -> dict[tuple[str, str], str]:
    """Each failure of `edge` after its base, (code, message), with the intervals it holds
    in, as a message names them."""
    flags, resolved = base
    starts = sorted({at for key in edge if key in timelines for at in timelines[key].starts})
    known = resolved[edge[0]].on & ~resolved[edge[1]].on
    known_partial = {cell for cell, _ in _partial_edge(grid, flags, resolved, edge)}
    found: dict[tuple[str, str], list[int]] = {}
    for number, start in enumerate(starts):
        now_flags, now_resolved = _then(grid, base, timelines, start)
        disabled = _disabled_edge(grid, now_flags, now_resolved, dependents, edge, known)
        if disabled is not None:
            found.setdefault(("dependency-disabled", disabled[1]), []).append(number)
        failures = [
            (cell, failure)
            for cell, failure in _partial_edge(grid, now_flags, now_resolved, edge)
            if cell not in known_partial
        ]
        if failures:
            cells = [cell for cell, _ in failures]
            message = _partial_message(grid, *edge, cells, failures[0][1])
            found.setdefault(("dependency-partial", message), []).append(number)
    return {failure: _intervals(starts, numbers) for failure, numbers in found.items()}


def _then(
    grid: Grid,
    base: tuple[Mapping[str, FlagFile], Mapping[str, Resolution]],
    timelines: Mapping[str, _Timeline],
    moment: Moment,
) -> tuple[Mapping[str, FlagFile], Mapping[str, Resolution]]:
    """The flags and their resolutions as they stand at `moment`."""

    def at(key: str) -> tuple[FlagFile, Resolution] | None:
        timeline = timelines.get(key)
        return None if timeline is None else timeline.at(grid, moment)

    def flag_file(key: str) -> FlagFile | None:
        found = at(key)
        return None if found is None else found[0]

    def resolution(key: str) -> Resolution | None:
        found = at(key)
        return None if found is None else found[1]

    return _At(base[0], flag_file), _At(base[1], resolution)


def _intervals(starts: list[Moment], numbers: list[int]) -> str:
    """The intervals from `starts[n]` to the next start for each n of `numbers`, those
    that follow one another merged: `from A to B and from C on`."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    named = [
        f"from {short_text(starts[run[0]])} to {short_text(starts[run[-1] + 1])}"
        if run[-1] + 1 < len(starts)
        else f"from {short_text(starts[run[0]])} on"
        for run in runs
    ]
    if len(named) > MAX_NAMED:
        named = [*named[: MAX_NAMED - 1], f"{len(named) - MAX_NAMED + 1} more intervals"]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


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
