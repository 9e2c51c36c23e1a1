"""Reading what a search recorded: its exploration records and the path it kept in the tree."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from retrosearch.retro import Exploration, RevisionResult
from retrosearch.tree import SearchTree

if TYPE_CHECKING:
    import networkx as nx


def as_graph(tree: Any, what: str = "draw_tree") -> nx.DiGraph:
    """The `networkx` graph of a `SearchTree`, its `to_dict()`, a `RevisionResult` with a tree, or a graph."""
    if isinstance(tree, RevisionResult):
        if tree.tree is None:
            raise ValueError(f"{what}: result {tree.index} ({tree.status}) has no search tree")
        tree = tree.tree
    if isinstance(tree, SearchTree):
        return tree.to_networkx()
    if isinstance(tree, dict):
        return SearchTree.from_dict(tree).to_networkx()
    if hasattr(tree, "nodes") and hasattr(tree, "successors"):
        return tree
    raise TypeError(
        f"{what}: expected a SearchTree, a RevisionResult or a networkx.DiGraph, got {type(tree)}"
    )


def _raw_records(source: Any) -> list[Any]:
    """The exploration records of `source`, as `Exploration` objects or their dicts."""
    if isinstance(source, RevisionResult):
        if source.explorations or source.tree is None:
            return list(source.explorations)
        source = source.tree
    if isinstance(source, SearchTree):
        return list(source.meta.get("explorations") or [])
    if isinstance(source, dict):
        return list((source.get("meta") or {}).get("explorations") or [])
    if hasattr(source, "graph") and hasattr(source, "successors"):
        return list(source.graph.get("explorations") or [])
    if isinstance(source, (list, tuple)):
        return list(source)
    raise TypeError(
        f"explorations: expected a RevisionResult, a SearchTree (or its dict or graph) or a list of records, got "
        f"{type(source).__name__}"
    )


def explorations(source: Any) -> list[dict[str, Any]]:
    """The cuts (thought switches, and queries of search traces) one Retro-Search explored, in order.

    Each entry is an `Exploration` as a dict — `exploration` (rank in the trace), `boundary` (index of the
    thought ending at the switch, in the trace as revised so far), `cut`, `node` (id of the node the rollouts
    branch from), `prefix_tokens`, `remainder_tokens` / `remainder_steps` / `remainder_value` (what the rollouts
    competed with; tokens include the closing and the solution), `budget`, `rollouts` (per rollout: `sample`,
    `nodes`, `tokens`, `steps`, `finish_reason`, `closed`, `verdict`, `correct`, `value`, `accepted`, `note`),
    `accepted`, `reason` (why the rollout was kept, or why none was) and `kind` — plus `thought` (the same index
    as `boundary`). Search traces add `cut_kind` (`"switch"` or `"query"`: where the untaken path branched),
    `remainder_retrievals`, and per rollout `retrievals` (of the trace it would make); elsewhere they are at
    their defaults (`"switch"`, `None`).

    Args:
        source: A `RevisionResult`, its tree (`SearchTree`, its `to_dict()` or `to_networkx()` graph: the tree's
            `meta` carries the records), or a list of `Exploration`.
    """
    out = []
    for e in _raw_records(source):
        d = dataclasses.asdict(e if isinstance(e, Exploration) else Exploration.from_dict(e))
        d["thought"] = d["boundary"]
        out.append(d)
    return out


def rollout_of_node(g: nx.DiGraph) -> dict[int, dict[str, Any]]:
    """For every node of a recorded rollout (split tails included): that rollout's record, as a dict."""
    out: dict[int, dict[str, Any]] = {}
    for e in explorations(g):
        for r in e["rollouts"]:
            for n in r["nodes"]:
                out[n] = r
    return out


def kept_path(g: nx.DiGraph) -> list[int]:
    """Node ids of the path the search kept, root first: the original up to the last accepted cut, then the
    accepted rollout.

    The search flags that path itself: every node on it is `accepted`, and a rollout accepted at one switch and
    cut short at a later one has its cut part marked `meta["superseded"]`; the path follows, from the root, the
    child that is accepted and not superseded.
    """
    roots = [n for n in g.nodes if g.in_degree(n) == 0]
    if len(roots) != 1:
        raise ValueError(f"the graph must have exactly one root, found {len(roots)}")
    path = [roots[0]]
    while True:
        kept = [
            c
            for c in g.successors(path[-1])
            if g.nodes[c].get("accepted") and not (g.nodes[c].get("meta") or {}).get("superseded")
        ]
        if not kept:
            return path
        if len(kept) > 1:
            raise ValueError(
                f"node {path[-1]} has {len(kept)} kept children {sorted(kept)}: not a search's tree"
            )
        path.append(kept[0])
