"""Dependency graph algorithms, iterative so that chains thousands deep cannot overflow."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence


def strongly_connected(nodes: Iterable[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion; edges to unknown nodes
    are ignored. Each component is sorted; components come in reverse topological order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = [t for t in edges.get(node, ()) if t in edges]
            for offset, target in enumerate(targets[position:], start=position):
                if target not in index:
                    work.append((node, offset + 1))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                _finish(node, work, low, index, stack, on_stack, components)
    return components


def _finish(
    node: str,
    work: list[tuple[str, int]],
    low: dict[str, int],
    index: dict[str, int],
    stack: list[str],
    on_stack: set[str],
    components: list[list[str]],
) -> None:
    if work:
        parent = work[-1][0]
        low[parent] = min(low[parent], low[node])
    if low[node] == index[node]:
        component = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            component.append(member)
            if member == node:
                break
        components.append(sorted(component))


def is_cyclic(component: Sequence[str], edges: Mapping[str, Sequence[str]]) -> bool:
    """A component is a cycle if it has several members or its one member needs itself."""
    return len(component) > 1 or component[0] in edges.get(component[0], ())


def find_cycle(component: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """One shortest cycle through the component's first member, as [a, b, ..., a]."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in edges.get(node, ()):
            if target not in members:
                continue
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise ValueError(f"no cycle through {start}")


def dependents(edges: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each node's dependents (the nodes whose edges name it), in sorted order, as the
    snapshot lists them; edges to nodes not in `edges` are left out."""
    found: dict[str, list[str]] = {node: [] for node in edges}
    for node in sorted(edges):
        for target in edges[node]:
            if target in found:
                found[target].append(node)
    return found
