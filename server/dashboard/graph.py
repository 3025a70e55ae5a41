"""Dependency pictures drawn by Graphviz's `dot` (the `graphviz` package builds the source
and runs the Debian `graphviz` package's binary): the whole graph, and one flag's
neighbourhood (what it needs, transitively, and what needs it).

Node IDs are generated (`n0`, `n1`, ...), never taken from flag data; labels, tooltips and
links are flag keys only (restricted to `[a-z0-9_-]` by the schema) and still go through the
package's quoting and Graphviz's XML escaping. Descriptions never enter a picture.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import graphviz  # type: ignore[import-untyped]
from markupsafe import Markup

Flags = Mapping[str, Mapping[str, Any]]

# Past this many flags a picture is neither readable nor quick (dot took 27 s for 2,000 flags
# with 6,000 edges): the whole graph is then not drawn, and a flag's neighbourhood is drawn
# one step deep (the page still lists every flag it reaches).
MOST_NODES = 300


def neighbourhood(flags: Flags, key: str) -> tuple[list[str], list[str]]:
    """What `key` needs, transitively, and what needs it, transitively (each sorted)."""
    return (
        sorted(_reach(flags, key, "depends_on")),
        sorted(_reach(flags, key, "dependents")),
    )


def _reach(flags: Flags, start: str, field: str) -> set[str]:
    # Iterative: chains may be thousands deep.
    seen: set[str] = set()
    queue = deque(flags[start][field])
    while queue:
        key = queue.popleft()
        if key not in seen and key in flags:
            seen.add(key)
            queue.extend(flags[key][field])
    return seen


def linked(flags: Flags) -> list[str]:
    """The flags that need or are needed by another (the others make no picture)."""
    return sorted(key for key, flag in flags.items() if flag["depends_on"] or flag["dependents"])


def whole(flags: Flags) -> Markup:
    """Every linked flag, layered left (dependents) to right (what they need); nothing when
    there are more than MOST_NODES."""
    keys = linked(flags)
    return _draw(flags, keys, highlight=None) if len(keys) <= MOST_NODES else Markup("")


def around(flags: Flags, key: str) -> tuple[Markup, bool]:
    """`key` with what it needs and what needs it, transitively, or (when that is more than
    MOST_NODES flags) one step deep; and whether the picture is the whole neighbourhood."""
    needs, needed_by = neighbourhood(flags, key)
    keys = {key, *needs, *needed_by}
    if len(keys) <= MOST_NODES:
        return _draw(flags, sorted(keys), highlight=key), True
    near = {key, *flags[key]["depends_on"], *flags[key]["dependents"]}
    return (
        _draw(flags, sorted(near), highlight=key) if len(near) <= MOST_NODES else Markup("")
    ), False


def _draw(flags: Flags, keys: Iterable[str], highlight: str | None) -> Markup:
    ids = {key: f"n{number}" for number, key in enumerate(keys)}
    if not ids:
        return Markup("")
    graph = graphviz.Digraph("dependencies")
    graph.attr(rankdir="LR", bgcolor="transparent", nodesep="0.15", ranksep="0.5")
    graph.attr("node", shape="box", style="rounded,filled", fillcolor="#f4f6f8", color="#8a94a0")
    graph.attr("node", fontname="sans-serif", fontsize="11", height="0.3")
    graph.attr("edge", color="#8a94a0", arrowsize="0.6")
    for key, node in ids.items():
        extra = {"fillcolor": "#ffe9a8", "penwidth": "2"} if key == highlight else {}
        graph.node(node, label=key, tooltip=key, href=f"/flags/{key}", **extra)
    for key, node in ids.items():
        for needed in flags[key]["depends_on"]:
            if needed in ids:
                graph.edge(node, ids[needed])
    return _inline(graph.pipe(format="svg", encoding="utf-8"))


def _inline(svg: str) -> Markup:
    """The `<svg>` element alone (no XML prolog, doctype or comments), to sit in a page.
    Markup: it is Graphviz's output over generated IDs and schema-checked keys."""
    return Markup(svg[svg.index("<svg") :].strip())
