"""Drawing one search tree: the original on a line, rollouts branching below, the kept path highlighted."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Literal

from retrosearch.analysis.records import as_graph, explorations, kept_path, rollout_of_node

if TYPE_CHECKING:
    import networkx as nx
    from matplotlib.axes import Axes

#: Colour of the kept path (edges and node outlines) in `draw_tree`.
ACCEPTED_COLOR = "crimson"
#: Colour of edges into rollouts accepted at one switch and cut at a later one, in `draw_tree`.
SUPERSEDED_COLOR = "#f2a7b5"
#: Colour of edges off the kept path in `draw_tree`.
EDGE_COLOR = "#c8c8c8"
#: Colour of the marks `draw_tree` puts where the untaken path before a query branches off (search traces).
QUERY_CUT_COLOR = "tab:purple"
#: Node face colours in `draw_tree`: by origin, and rollouts by outcome (correct; wrong answer; unfinished: cut
#: by the token budget or cap; ungraded).
NODE_COLORS: dict[str, str] = {
    "prompt": "black",
    "original": "tab:blue",
    "environment": "tab:purple",
    "rollout_correct": "tab:green",
    "rollout_wrong": "tab:orange",
    "rollout_unfinished": "tab:gray",
    "rollout_ungraded": "silver",
}


def tree_layout(g: nx.DiGraph, *, x: Literal["tokens", "depth"] = "tokens") -> dict[int, tuple[float, float]]:
    """Positions for `draw_tree`: the first-child chain from the root on `y = 0`, each other branch in a lane.

    `x` is the cumulative token count at the end of a node's span (prompt excluded) or its depth. A branch (a
    child other than the first, followed down its first children) goes to the nearest lane below 0 that is
    free over its x-range, so the drawing stays short; accepted branches are placed first.
    """
    if x not in ("tokens", "depth"):
        raise ValueError(f"tree_layout: x must be 'tokens' or 'depth', got {x!r}")
    roots = [n for n in g.nodes if g.in_degree(n) == 0]
    if len(roots) != 1:
        raise ValueError(f"draw_tree: the graph must have exactly one root, found {len(roots)}")
    root = roots[0]

    def kids(n: int) -> list[int]:
        return sorted(g.successors(n), key=lambda c: g.edges[n, c].get("order", c))

    xs: dict[int, float] = {root: 0.0}
    stack = [root]
    while stack:
        n = stack.pop()
        for c in kids(n):
            step = float(g.nodes[c].get("token_count") or 0) if x == "tokens" else 1.0
            xs[c] = xs[n] + step
            stack.append(c)

    lanes: list[list[tuple[float, float]]] = []
    ys: dict[int, float] = {}
    # (branch start, its parent): accepted branches first, so they sit next to the line they replace; then in
    # creation order.
    queue: list[tuple[bool, int, int | None]] = [(False, root, None)]
    while queue:
        _, start, parent = heapq.heappop(queue)
        chain = [start]
        while kids(chain[-1]):
            chain.append(kids(chain[-1])[0])
        lo = xs[parent] if parent is not None else xs[start]
        hi = max(xs[c] for c in chain)
        if parent is None:
            lane = 0
            lanes.append([(lo, hi)])
        else:
            lane = next(
                (k for k in range(1, len(lanes)) if all(hi < a or lo > b for a, b in lanes[k])), len(lanes)
            )
            if lane == len(lanes):
                lanes.append([])
            lanes[lane].append((lo, hi))
        for c in chain:
            ys[c] = -float(lane)
            for o in kids(c)[1:]:
                heapq.heappush(queue, (not g.nodes[o].get("accepted"), o, c))
    return {n: (xs[n], ys[n]) for n in g.nodes}


def _node_color(g: nx.DiGraph, n: int, rollouts: dict[int, dict[str, Any]]) -> str:
    """Face colour of node `n`: by origin; a rollout's nodes by its recorded outcome (by their own grade when
    the tree carries no exploration records, e.g. a tree not made by Retro-Search)."""
    origin = g.nodes[n].get("origin")
    if origin != "rollout":
        return NODE_COLORS.get(origin, "tab:gray")
    rec = rollouts.get(n)
    if rec is None:
        a = g.nodes[n]
        correct, closed, finish = a.get("correct"), a.get("correct") is not None, a.get("finish_reason")
    else:
        correct, closed, finish = rec["correct"], rec["closed"], rec["finish_reason"]
    if correct:
        return NODE_COLORS["rollout_correct"]
    if correct is False and closed and finish in ("stop", "eos"):
        return NODE_COLORS["rollout_wrong"]
    if correct is False or finish in ("length", "error"):
        return NODE_COLORS["rollout_unfinished"]
    return NODE_COLORS["rollout_ungraded"]


def draw_tree(
    tree: Any,
    ax: Axes | None = None,
    *,
    x: Literal["tokens", "depth"] = "tokens",
    labels: bool = True,
    node_size: float = 40.0,
) -> Axes:
    """Draw one trace's search tree: the original path on a line, rollouts branching off it, the kept path
    highlighted, token counts as labels.

    Edges into the nodes of the kept path (`kept_path`: the original up to the last accepted cut, then the
    accepted rollout) are drawn in `ACCEPTED_COLOR` and thick, and those nodes get an outline of that colour;
    edges into rollouts accepted at one switch and cut at a later one are drawn in `SUPERSEDED_COLOR`. Node
    faces: `NODE_COLORS` by origin, rollouts by outcome (green correct, orange wrong answer, gray cut by the
    token budget); documents (environment spans) in `NODE_COLORS["environment"]`. On a search trace, each node
    where the untaken path before a query branches off (the query tag banned in its first step) gets a
    `QUERY_CUT_COLOR` triangle above it, labelled "query cut" (a rollout without that query was kept) or
    "query kept". Each node's label is its span's token count.

    Args:
        tree: A `SearchTree`, its `to_networkx()` graph, its `to_dict()`, or a `RevisionResult` with a tree.
        ax: Axes to draw on (a new figure when `None`).
        x: Horizontal coordinate: cumulative `"tokens"` (an edge's length is its span's length) or `"depth"`.
        labels: Write token counts next to the nodes.
        node_size: Marker area in points^2.

    Returns:
        The axes. Its collections are labelled `"edges"` (a `LineCollection`, one segment per edge in
        `g.edges` order), `"nodes"` (a `PathCollection`, one marker per node in `g.nodes` order) and, on a
        search trace, `"query cuts"` (one triangle per explored query, in exploration order).
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    g = as_graph(tree)
    pos = tree_layout(g, x=x)
    n_lanes = int(-min(y for _, y in pos.values())) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(10, max(2.5, 0.45 * n_lanes + 1.5)), layout="constrained")
    on_path = set(kept_path(g)[1:])
    rollouts = rollout_of_node(g)
    nodes, edges = list(g.nodes), list(g.edges)

    def edge_style(v: int) -> tuple[str, float]:
        if v in on_path:
            return ACCEPTED_COLOR, 2.5
        if g.nodes[v].get("accepted"):
            return SUPERSEDED_COLOR, 1.8
        return EDGE_COLOR, 1.0

    styles = [edge_style(v) for _, v in edges]
    lc = LineCollection(
        [[pos[u], pos[v]] for u, v in edges],
        colors=[c for c, _ in styles],
        linewidths=[w for _, w in styles],
        zorder=1,
        label="edges",
    )
    ax.add_collection(lc)
    sc = ax.scatter(
        [pos[n][0] for n in nodes],
        [pos[n][1] for n in nodes],
        s=node_size,
        zorder=3,
        label="nodes",
        c=[_node_color(g, n, rollouts) for n in nodes],
        edgecolors=[ACCEPTED_COLOR if n in on_path else "white" for n in nodes],
        linewidths=[1.8 if n in on_path else 0.5 for n in nodes],
    )
    sc.set_label("nodes")
    queries = [e for e in explorations(g) if e.get("cut_kind") == "query"]
    if queries:
        qc = ax.scatter(
            [pos[e["node"]][0] for e in queries],
            [pos[e["node"]][1] + 0.28 for e in queries],
            s=node_size * 1.3,
            marker="v",
            color=QUERY_CUT_COLOR,
            zorder=4,
        )
        qc.set_label("query cuts")
        for e in queries:
            note = "cut" if e["accepted"] else "kept"  # the query itself: replaced, or still needed
            ax.annotate(
                f"query {note}",
                (pos[e["node"]][0], pos[e["node"]][1] + 0.28),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize="x-small",
                color=QUERY_CUT_COLOR,
            )
    if labels:
        for n in nodes:
            a = g.nodes[n]
            text = (
                f"prompt {a.get('token_count', '')}"
                if a.get("origin") == "prompt"
                else str(a.get("token_count"))
            )
            ax.annotate(
                text,
                pos[n],
                xytext=(0, 5),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize="x-small",
                color="dimgray",
            )
    handles = [
        Line2D([], [], color=ACCEPTED_COLOR, lw=2.5, label="kept path"),
        Line2D([], [], color=SUPERSEDED_COLOR, lw=1.8, label="accepted, later cut"),
        *(
            Line2D([], [], ls="", marker="o", color=NODE_COLORS[k], label=k.replace("_", " "))
            for k in ("original", "rollout_correct", "rollout_wrong", "rollout_unfinished")
        ),
    ]
    if any(g.nodes[n].get("origin") == "environment" for n in nodes):
        handles.append(Line2D([], [], ls="", marker="o", color=NODE_COLORS["environment"], label="documents"))
    if queries:
        handles.append(
            Line2D([], [], ls="", marker="v", color=QUERY_CUT_COLOR, label="untaken path at a query")
        )
    ax.legend(handles=handles, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.autoscale_view()
    ax.set_xlabel("thinking tokens" if x == "tokens" else "depth")
    ax.set_yticks([])
    ax.set_ylim(-n_lanes + 0.4, 0.8)
    index = g.graph.get("index")
    ax.set_title(f"Search tree of trace {index}" if index is not None else "Search tree")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax
