"""core.graph against brute-force oracles, on random and on very large graphs."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from core.graph import find_cycle, is_cyclic, strongly_connected

POOL = [f"n{i}" for i in range(9)]
UNKNOWN = ["x0", "x1"]  # targets that are not nodes: every algorithm must ignore them

Edges = dict[str, list[str]]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[str], Edges]:
    """Nodes in a random order, and edges keyed by exactly those nodes; targets may repeat,
    point back at their source, or name nodes that do not exist."""
    nodes = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=len(POOL)))
    targets = st.sampled_from(nodes + UNKNOWN) if nodes else st.sampled_from(UNKNOWN)
    edges = {node: draw(st.lists(targets, max_size=4)) for node in nodes}
    return nodes, edges


def reachable(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    """Nodes reachable from `start` by one or more known edges."""
    seen: set[str] = set()
    queue = deque(t for t in edges[start] if t in edges)
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(t for t in edges[node] if t in edges)
    return seen


def shortest_cycle_length(start: str, members: set[str], edges: Edges) -> int:
    """Edges in the shortest closed walk from `start` back to it, inside `members`."""
    distance = {start: 0}
    queue = deque([start])
    best = None
    while queue:
        node = queue.popleft()
        for target in edges.get(node, []):
            if target not in members:
                continue
            if target == start:
                best = distance[node] + 1 if best is None else min(best, distance[node] + 1)
            elif target not in distance:
                distance[target] = distance[node] + 1
                queue.append(target)
    assert best is not None
    return best


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_components_are_the_mutual_reachability_classes(graph: tuple[list[str], Edges]) -> None:
    nodes, edges = graph
    components = strongly_connected(nodes, edges)
    where = {member: i for i, component in enumerate(components) for member in component}
    assert sorted(m for c in components for m in c) == sorted(nodes)  # each node exactly once
    assert all(component == sorted(component) and component for component in components)
    reach = {node: reachable(node, edges) for node in nodes}
    for u in nodes:
        for v in nodes:
            mutual = u == v or (v in reach[u] and u in reach[v])
            assert (where[u] == where[v]) == mutual, (u, v)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_components_come_in_reverse_topological_order(graph: tuple[list[str], Edges]) -> None:
    nodes, edges = graph
    components = strongly_connected(nodes, edges)
    where = {member: i for i, component in enumerate(components) for member in component}
    for source, targets in edges.items():
        for target in targets:
            if target in where:
                assert where[target] <= where[source], (source, target)


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_is_cyclic_and_find_cycle(graph: tuple[list[str], Edges]) -> None:
    nodes, edges = graph
    for component in strongly_connected(nodes, edges):
        start = component[0]
        cyclic = start in reachable(start, edges)  # reaches itself by at least one edge
        assert is_cyclic(component, edges) == cyclic
        if not cyclic:
            continue
        members = set(component)
        cycle = find_cycle(component, edges)
        assert cycle[0] == cycle[-1] == start
        assert len(cycle) >= 2
        assert set(cycle) <= members
        assert all(b in edges[a] for a, b in itertools.pairwise(cycle))
        assert len(cycle) - 1 == shortest_cycle_length(start, members, edges)


LONG = 20_000


def test_long_chain_does_not_recurse() -> None:
    names = [f"f{i:05d}" for i in range(LONG)]
    edges = {name: [after] for name, after in itertools.pairwise(names)}
    edges[names[-1]] = []
    components = strongly_connected(names, edges)
    assert components == [[name] for name in reversed(names)]
    assert not any(is_cyclic(component, edges) for component in components)


def test_long_ring_is_one_component() -> None:
    names = [f"f{i:05d}" for i in range(LONG)]
    edges = {name: [names[(i + 1) % LONG]] for i, name in enumerate(names)}
    components = strongly_connected(reversed(names), edges)
    assert components == [names]
    assert is_cyclic(components[0], edges)
    assert find_cycle(components[0], edges) == [*names, names[0]]


def test_shortest_of_two_cycles_is_reported() -> None:
    edges = {"a": ["b", "d"], "b": ["c"], "c": ["a"], "d": ["a"]}
    [component] = strongly_connected(sorted(edges), edges)
    assert component == ["a", "b", "c", "d"]
    assert find_cycle(component, edges) == ["a", "d", "a"]


def test_self_loop_and_unknown_targets() -> None:
    edges = {"a": ["a", "ghost"], "b": ["ghost"]}
    components = strongly_connected(["a", "b"], edges)
    assert sorted(components) == [["a"], ["b"]]
    assert is_cyclic(["a"], edges)
    assert not is_cyclic(["b"], edges)
    assert find_cycle(["a"], edges) == ["a", "a"]
