"""A layered drawing of a DAG, left to right: where each task's box goes and how each edge runs.

A small Sugiyama-style layout: each task sits in the layer of its longest path
from a root; an edge that spans several layers gets a point in each layer it
crosses (so the ordering sees it and it bends around boxes); the order within
each layer is improved by barycenter sweeps, keeping the order with the fewest
crossings; layers are centred vertically. Pure Python, no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NODE_W = 176
NODE_H = 44
GAP_X = 64
NODE_PITCH = NODE_H + 18  # vertical room of one box in its layer
BEND_PITCH = 14  # vertical room of one edge passing through a layer
MARGIN = 16
SWEEPS = 8

Point = tuple[float, float]


@dataclass(frozen=True)
class NodeBox:
    """Where one task's box goes (top-left corner)."""

    name: str
    x: float
    y: float
    layer: int


@dataclass(frozen=True)
class EdgePath:
    """One dependency edge, ``source`` (the dependency) to ``target``, as an SVG path."""

    source: str
    target: str
    d: str


@dataclass(frozen=True)
class Layout:
    """A whole drawing: its size, the boxes and the edges."""

    width: float
    height: float
    node_w: int
    node_h: int
    nodes: list[NodeBox]
    edges: list[EdgePath]


def layers_of(deps: Mapping[str, Sequence[str]], order: Sequence[str]) -> dict[str, int]:
    """Each task's layer: 0 for a root, else one more than its deepest dependency.

    ``order`` is a topological order of the names in ``deps``.
    """
    layer: dict[str, int] = {}
    for name in order:
        layer[name] = 1 + max((layer[d] for d in deps[name]), default=-1)
    return layer


class _Graph:
    """The layered graph: real tasks and the bend points of long edges, in rows by layer."""

    def __init__(self, deps: Mapping[str, Sequence[str]], order: Sequence[str]) -> None:
        self.layer = layers_of(deps, order)
        depth = max(self.layer.values(), default=-1) + 1
        self.rows: list[list[str]] = [[] for _ in range(depth)]
        self.up: dict[str, list[str]] = {}  # node -> nodes in the layer before, linked to it
        self.down: dict[str, list[str]] = {}
        self.chains: list[tuple[str, str, list[str]]] = []  # source, target, bend points between
        for name in order:
            self._place(name)
        for name in order:
            for dep in deps[name]:
                self._link(dep, name)

    def _place(self, node: str) -> None:
        self.rows[self.layer[node]].append(node)
        self.up.setdefault(node, [])
        self.down.setdefault(node, [])

    def _link(self, source: str, target: str) -> None:
        bends = []
        previous = source
        for layer in range(self.layer[source] + 1, self.layer[target]):
            bend = f"\x00{source}\x00{target}\x00{layer}"
            self.layer[bend] = layer
            self._place(bend)
            self.down[previous].append(bend)
            self.up[bend].append(previous)
            bends.append(bend)
            previous = bend
        self.down[previous].append(target)
        self.up[target].append(previous)
        self.chains.append((source, target, bends))


def _crossings(rows: list[list[str]], down: Mapping[str, list[str]]) -> int:
    """Edge crossings between every pair of adjacent layers (inversions, counted in a Fenwick tree)."""
    total = 0
    for upper, lower in itertools.pairwise(rows):
        position = {n: i for i, n in enumerate(lower)}
        ends = sorted((i, position[t]) for i, s in enumerate(upper) for t in down[s])
        tree = [0] * (len(lower) + 1)
        for seen, (_, end) in enumerate(ends):
            i, not_after = end + 1, 0
            while i > 0:
                not_after += tree[i]
                i -= i & -i
            total += seen - not_after
            i = end + 1
            while i <= len(lower):
                tree[i] += 1
                i += i & -i
    return total


def _sweep(row: list[str], neighbours: Mapping[str, list[str]], reference: list[str]) -> list[str]:
    """One layer reordered by the mean position of each node's neighbours in ``reference``."""
    position = {n: i for i, n in enumerate(reference)}
    keyed = []
    for i, node in enumerate(row):
        linked = [position[n] for n in neighbours[node] if n in position]
        keyed.append((sum(linked) / len(linked) if linked else float(i), i, node))
    return [node for _, _, node in sorted(keyed)]


def _order(graph: _Graph) -> list[list[str]]:
    """The rows after down and up barycenter sweeps, the variant with the fewest crossings."""
    rows = [list(r) for r in graph.rows]
    best, best_crossings = [list(r) for r in rows], _crossings(rows, graph.down)
    for sweep in range(SWEEPS):
        if sweep % 2 == 0:
            for i in range(1, len(rows)):
                rows[i] = _sweep(rows[i], graph.up, rows[i - 1])
        else:
            for i in range(len(rows) - 2, -1, -1):
                rows[i] = _sweep(rows[i], graph.down, rows[i + 1])
        crossings = _crossings(rows, graph.down)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in rows], crossings
        if best_crossings == 0:
            break
    return best


def _centres(rows: list[list[str]]) -> tuple[dict[str, float], float]:
    """The vertical centre of every node (layers centred on the tallest), and the drawing's height."""

    def room(node: str) -> float:
        return BEND_PITCH if node.startswith("\x00") else NODE_PITCH

    heights = [sum(room(n) for n in row) for row in rows]
    tallest = max(heights, default=0.0)
    centre: dict[str, float] = {}
    for row, height in zip(rows, heights, strict=True):
        y = MARGIN + (tallest - height) / 2
        for node in row:
            centre[node] = y + room(node) / 2
            y += room(node)
    return centre, tallest + 2 * MARGIN


def _left(layer: int) -> float:
    return MARGIN + layer * (NODE_W + GAP_X)


def _path(points: list[Point]) -> str:
    """A smooth path through ``points``: horizontal tangents at every point."""
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        if abs(y1 - y0) < 0.5:
            parts.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x0 + x1) / 2
            parts.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(parts)


def layout(deps: Mapping[str, Sequence[str]], order: Sequence[str]) -> Layout:
    """Lay out the DAG ``deps`` (task -> its dependencies), given a topological ``order``."""
    graph = _Graph(deps, order)
    rows = _order(graph)
    centre, height = _centres(rows)
    nodes = [
        NodeBox(name, _left(graph.layer[name]), centre[name] - NODE_H / 2, graph.layer[name])
        for row in rows
        for name in row
        if not name.startswith("\x00")
    ]
    edges = []
    for source, target, bends in graph.chains:
        points: list[Point] = [(_left(graph.layer[source]) + NODE_W, centre[source])]
        for bend in bends:
            points += [
                (_left(graph.layer[bend]), centre[bend]),
                (_left(graph.layer[bend]) + NODE_W, centre[bend]),
            ]
        points.append((_left(graph.layer[target]), centre[target]))
        edges.append(EdgePath(source, target, _path(points)))
    width = _left(len(rows)) - GAP_X + MARGIN if rows else 2 * MARGIN
    return Layout(width, height, NODE_W, NODE_H, nodes, edges)
