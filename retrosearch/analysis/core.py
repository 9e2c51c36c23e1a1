"""Statistics of Retro-Search runs: tables per trace, per explored thought switch and per rollout; plots; trees."""

from __future__ import annotations

import heapq
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retrosearch.retro import Revision, RevisionResult
from retrosearch.tree import SearchTree

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "ACCEPTED_COLOR",
    "EDGE_COLOR",
    "NODE_COLORS",
    "SUPERSEDED_COLOR",
    "acceptance_by_thought",
    "boundary_table",
    "draw_tree",
    "explorations",
    "kept_path",
    "load_results",
    "plot_acceptance_by_thought",
    "plot_lengths",
    "plot_rollout_lengths",
    "plot_spent_vs_saved",
    "rollout_lengths",
    "summary",
    "trace_table",
    "tree_layout",
]

#: Colour of the kept path (edges and node outlines) in `draw_tree`.
ACCEPTED_COLOR = "crimson"
#: Colour of edges into rollouts accepted at one switch and cut at a later one, in `draw_tree`.
SUPERSEDED_COLOR = "#f2a7b5"
#: Colour of edges off the kept path in `draw_tree`.
EDGE_COLOR = "#c8c8c8"
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

#: The tag that ends the thinking in rollouts (`PromptFormat.think_close`): a rollout without it never finished.
THINK_CLOSE = "</think>"

#: File names a demo/output folder's journal is looked for under, in order, when the folder holds several.
JOURNAL_NAMES: tuple[str, ...] = ("revisions.jsonl", "results.jsonl", "journal.jsonl", "revised.jsonl")

#: Statuses of traces that were searched (have a tree and full stats).
SEARCHED = ("revised", "unchanged")

ResultsLike = Any  # RevisionResult | Sequence[RevisionResult | dict] | str | Path


# =========================================================================== loading
def _from_record(rec: dict[str, Any], position: int, source: str) -> RevisionResult:
    """A `RevisionResult` from a journal line or `RevisionResult.to_record()` (traces are not re-parsed)."""
    if not isinstance(rec, dict) or "status" not in rec:
        raise ValueError(f"{source}, record {position}: expected a dict with a 'status' (a journal record)")
    index = rec.get("index", rec.get("seq", position))
    try:
        revisions = [Revision(**r) for r in rec.get("revisions") or []]
    except TypeError as e:
        raise ValueError(f"{source}, record {position}: bad 'revisions' entry ({e})") from e
    tree = None
    if rec.get("tree") is not None:
        try:
            tree = SearchTree.from_dict(rec["tree"])
        except ValueError as e:
            raise ValueError(f"{source}, record {position}: bad 'tree' ({e})") from e
    res = RevisionResult(
        index=int(index),
        status=rec["status"],
        reason=rec.get("reason", ""),
        tree=tree,
        stats=dict(rec.get("stats") or {}),
        revisions=revisions,
    )
    # The journal names rows by a stable id; keep it for the tables (not a RevisionResult field).
    res.row_id = str(rec.get("row_id", index))  # type: ignore[attr-defined]
    return res


def _is_journal_file(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    return isinstance(rec, dict) and "status" in rec and ("row_id" in rec or "index" in rec)
    except (OSError, ValueError):
        return False
    return False


def _journal_in_folder(folder: Path) -> Path:
    found = sorted(p for p in folder.glob("*.jsonl") if _is_journal_file(p))
    if not found:
        found = sorted(p for p in folder.glob("*/*.jsonl") if _is_journal_file(p))
    if len(found) == 1:
        return found[0]
    for name in JOURNAL_NAMES:
        for p in found:
            if p.name == name:
                return p
    if not found:
        raise ValueError(
            f"{folder}: no journal found (a .jsonl file whose lines have 'status' and 'row_id', as written by "
            "`retrosearch revise`)"
        )
    raise ValueError(
        f"{folder}: several journals ({', '.join(p.name for p in found)}); pass the one to load "
        f"(or name it one of {JOURNAL_NAMES})"
    )


def _read_jsonl(path: Path) -> list[RevisionResult]:
    out = []
    with path.open(encoding="utf-8") as f:
        lines = f.readlines()
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            if lineno == len(lines) and not line.endswith("\n"):
                continue  # a run killed mid-write tears only the last line; the batch CLI redoes that row
            raise ValueError(f"{path}, line {lineno}: not valid JSON ({e})") from e
        res = _from_record(rec, len(out), f"{path}, line {lineno}")
        if res.row_id in seen:  # type: ignore[attr-defined]
            continue  # the journal keeps the first record of a row id
        seen.add(res.row_id)  # type: ignore[attr-defined]
        out.append(res)
    return out


def load_results(source: ResultsLike) -> list[RevisionResult]:
    """Results of a Retro-Search run, from memory or from disk, as a list of `RevisionResult`.

    Args:
        source: A `RevisionResult` or a list of them (returned as they are), a list of records (dicts as written
            by `RevisionResult.to_record()` or the batch journal), a journal `.jsonl` written by
            `retrosearch revise` (trees are read when it was run with `--save-trees`), or a folder holding one
            such journal (e.g. the output folder of `retrosearch demo`).

    Returns:
        Results sorted by input position. Results read from records have `original`/`revised` set to `None`
        and carry the journal's `row_id` as an extra attribute.

    Raises:
        ValueError: the file or folder holds no journal, or a record is malformed (the message names it).
    """
    if isinstance(source, RevisionResult):
        return [source]
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            path = _journal_in_folder(path)
        elif not path.is_file():
            raise ValueError(f"load_results: {path} is neither a journal file nor a folder")
        return sorted(_read_jsonl(path), key=lambda r: r.index)
    if isinstance(source, dict):
        return [_from_record(source, 0, "record")]
    out = []
    for k, item in enumerate(source):
        if isinstance(item, RevisionResult):
            out.append(item)
        elif isinstance(item, dict):
            out.append(_from_record(item, k, "records"))
        else:
            raise TypeError(
                f"load_results: item {k} is a {type(item).__name__}, expected a RevisionResult or a record dict"
            )
    return sorted(out, key=lambda r: r.index)


def _row_id(res: RevisionResult) -> str:
    return str(getattr(res, "row_id", res.index))


# =========================================================================== reading the trees
# The search tree records the search as it went: a rollout's nodes carry `meta.boundary` and `meta.phase`, the
# node a switch's rollouts branch from lists it in `meta.boundaries`, and a node split to branch inside it keeps
# its id while the tail (`meta.split`) becomes its only child. Everything below reads the `to_networkx()` graph.
def _head(g: nx.DiGraph, n: int) -> int:
    """The node a split tail was cut from (its grade and creation time are the head's); `n` itself otherwise."""
    while (g.nodes[n].get("meta") or {}).get("split"):
        preds = list(g.predecessors(n))
        if not preds:
            break
        n = preds[0]
    return n


def _kept_child(g: nx.DiGraph, node: int, before: float = math.inf) -> int | None:
    """The child the trace continued along below `node` just before node `before` was created (ids are creation
    order): the latest-created original span or accepted rollout among the older children; `None` at the end."""
    kids = [
        (_head(g, c), c)
        for c in g.successors(node)
        if (g.nodes[c].get("origin") == "original" or g.nodes[c].get("accepted")) and _head(g, c) < before
    ]
    return max(kids)[1] if kids else None


def kept_path(g: nx.DiGraph) -> list[int]:
    """Node ids of the path the search kept, root first: the original up to the last accepted cut, then the
    accepted rollout (a rollout accepted at one switch and cut at a later one is not on it)."""
    roots = [n for n in g.nodes if g.in_degree(n) == 0]
    if len(roots) != 1:
        raise ValueError(f"the graph must have exactly one root, found {len(roots)}")
    path = [roots[0]]
    while (nxt := _kept_child(g, path[-1])) is not None:
        path.append(nxt)
    return path


def _meta(g: nx.DiGraph, n: int) -> dict[str, Any]:
    return g.nodes[n].get("meta") or {}


def _starts_rollout(g: nx.DiGraph, n: int) -> bool:
    """A rollout's first node: a first step (not a split tail) whose parent is marked as its switch's cut point.

    (A first step re-asked after a bare separator hangs off the first one, which is no cut point.)
    """
    m = _meta(g, n)
    if g.nodes[n].get("origin") != "rollout" or m.get("phase") != "first_step" or m.get("split"):
        return False
    return any(m.get("boundary") in _meta(g, p).get("boundaries", []) for p in g.predecessors(n))


def _rollout_chains(g: nx.DiGraph) -> dict[int, list[int]]:
    """For every node of a Retro-Search rollout: all nodes of that rollout (phases and split tails), in order."""
    out: dict[int, list[int]] = {}
    for start in g.nodes:
        if not _starts_rollout(g, start):
            continue
        boundary, chain = _meta(g, start).get("boundary"), [start]
        while True:
            nxt = [
                c
                for c in g.successors(chain[-1])
                if g.nodes[c].get("origin") == "rollout"
                and _meta(g, c).get("boundary") == boundary
                and not _starts_rollout(g, c)
            ]
            if not nxt:
                break
            chain.append(nxt[0])
        for n in chain:
            out[n] = chain
    return out


def _remainder(g: nx.DiGraph, at: int, before: int) -> int:
    """Tokens of the trace's remainder below `at` as it stood just before node `before` was created."""
    total, node = 0, at
    while (node := _kept_child(g, node, before)) is not None:
        total += g.nodes[node].get("token_count") or 0
    return total


def _prefix(g: nx.DiGraph, at: int) -> int:
    """Tokens from just below the root down to `at` (its own span included, the prompt not)."""
    total = 0
    while True:
        preds = list(g.predecessors(at))
        if not preds:
            return total
        total += g.nodes[at].get("token_count") or 0
        at = preds[0]


def explorations(tree: SearchTree | nx.DiGraph, revisions: Sequence[Revision] = ()) -> list[dict[str, Any]]:
    """The thought switches explored in one Retro-Search tree, in the order they were explored.

    Each entry: `exploration` (rank in the trace), `boundary` (index of the thought ending at the switch, in
    the trace as revised so far), `thought`, `node` (id of the node the rollouts branch from), `prefix_tokens`,
    `remainder_tokens` (tokens of the remainder the rollouts competed with, closing and solution included),
    `rollouts` (per rollout: `nodes`, `tokens`, `correct`, `value`, `finish_reason`, `closed` (its thinking was
    closed: it reached an answer), `accepted`), `accepted`, and `kind` (`"overthinking"`/`"underthinking"` from
    the matching `Revision`, `None` when nothing was kept).

    Args:
        tree: A tree built by `revise`, or its `to_networkx()` graph.
        revisions: The result's accepted revisions, matched in order to the accepted explorations.
    """
    g = tree.to_networkx() if isinstance(tree, SearchTree) else tree
    chains = _rollout_chains(g)
    # The samples of one request are added one after the other, so one exploration's rollouts start at
    # consecutive ids. A switch can be explored twice from the same node (a kept rollout that began a new
    # thought right away leaves the switch where it was): those are separate runs.
    groups: list[tuple[int, Any, list[int]]] = []
    for n in sorted(g.nodes):
        if not _starts_rollout(g, n):
            continue
        at, boundary, sample = (
            next(iter(g.predecessors(n))),
            _meta(g, n).get("boundary"),
            _meta(g, n).get("sample"),
        )
        last = groups[-1] if groups else None
        if (
            last is not None
            and (last[0], last[1]) == (at, boundary)
            and last[2][-1] == n - 1
            and (sample or 0) > (_meta(g, n - 1).get("sample") or 0)
        ):
            last[2].append(n)
        else:
            groups.append((at, boundary, [n]))
    out = []
    pending = list(revisions)
    for rank, (at, boundary, starts) in enumerate(groups):
        rollouts = []
        for start in starts:
            chain = chains[start]
            nodes = [g.nodes[i] for i in chain]
            rollouts.append(
                {
                    "nodes": chain,
                    "tokens": sum(n.get("token_count") or 0 for n in nodes),
                    "correct": nodes[0].get("correct"),
                    "value": nodes[0].get("value"),
                    "finish_reason": nodes[-1].get("finish_reason"),
                    "closed": THINK_CLOSE in "".join(n.get("text", "") for n in nodes),
                    "accepted": bool(nodes[0].get("accepted")),
                }
            )
        accepted = any(r["accepted"] for r in rollouts)
        rev = pending.pop(0) if accepted and pending and pending[0].boundary == boundary else None
        out.append(
            {
                "exploration": rank,
                "boundary": boundary,
                "thought": rev.thought if rev is not None else boundary,
                "node": at,
                "prefix_tokens": _prefix(g, at),
                "remainder_tokens": _remainder(g, at, min(starts)),
                "rollouts": rollouts,
                "accepted": accepted,
                "kind": rev.kind if rev is not None else None,
            }
        )
    return out


def _searched_with_trees(results: list[RevisionResult], what: str) -> list[RevisionResult]:
    searched = [r for r in results if r.status in SEARCHED]
    with_tree = [r for r in searched if r.tree is not None]
    if searched and not with_tree:
        raise ValueError(
            f"{what} needs the search trees, and none of the {len(searched)} searched results has one: "
            "run `retrosearch revise --save-trees` (or keep the RevisionResult objects)"
        )
    if len(with_tree) < len(searched):
        warnings.warn(
            f"{what}: {len(searched) - len(with_tree)} of {len(searched)} searched results have no tree and are "
            "left out",
            stacklevel=3,
        )
    return with_tree


# =========================================================================== tables
#: Numbers copied from `RevisionResult.stats`.
_STAT_COLUMNS = [
    "thoughts_before",
    "thoughts_after",
    "steps_before",
    "steps_after",
    "thinking_tokens_before",
    "thinking_tokens_after",
    "total_tokens_before",
    "total_tokens_after",
    "rollouts",
    "tokens_spent",
    "boundaries_explored",
    "accepted",
    "first_accepted_thought",
]
#: Integer columns of `trace_table` (nullable: `<NA>` for traces that were not searched).
_INT_COLUMNS = [*_STAT_COLUMNS, "saved_tokens", "overthinking", "underthinking"]


def trace_table(results: ResultsLike) -> pd.DataFrame:
    """One row per input trace.

    Columns: `index`, `row_id`, `status`, `reason`, `thoughts_before/after`, `steps_before/after`,
    `thinking_tokens_before/after`, `total_tokens_before/after`, `rollouts`, `tokens_spent` (rollout tokens
    generated), `boundaries_explored`, `accepted` (revisions kept), `first_accepted_thought` (thought index of
    the first kept revision), `saved_tokens` (thinking tokens before - after), `saved_share` (of before),
    `overthinking`/`underthinking` (kept revisions of each kind). Counts are nullable integers: `<NA>` for
    traces that were not searched (skipped, error).
    """
    import pandas as pd

    rows = []
    for r in load_results(results):
        s = r.stats
        row: dict[str, Any] = {"index": r.index, "row_id": _row_id(r), "status": r.status, "reason": r.reason}
        for k in _STAT_COLUMNS:
            row[k] = s.get(k)
        if row["accepted"] is None and r.status in SEARCHED:
            row["accepted"] = len(r.revisions)
        before, after = s.get("thinking_tokens_before"), s.get("thinking_tokens_after")
        row["saved_tokens"] = before - after if before is not None and after is not None else None
        row["saved_share"] = row["saved_tokens"] / before if before else math.nan
        row["overthinking"] = (
            sum(v.kind == "overthinking" for v in r.revisions) if r.status in SEARCHED else None
        )
        row["underthinking"] = (
            sum(v.kind == "underthinking" for v in r.revisions) if r.status in SEARCHED else None
        )
        rows.append(row)
    df = pd.DataFrame(
        rows,
        columns=[
            "index",
            "row_id",
            "status",
            "reason",
            *_STAT_COLUMNS,
            "saved_tokens",
            "saved_share",
            "overthinking",
            "underthinking",
        ],
    )
    for c in _INT_COLUMNS:
        df[c] = df[c].astype("Int64")
    df["saved_share"] = df["saved_share"].astype(float)
    return df


def boundary_table(results: ResultsLike) -> pd.DataFrame:
    """One row per explored thought switch (from the search trees).

    Columns: `index`, `row_id`, `exploration` (rank within the trace), `boundary` (thought index of the switch
    in the trace as revised so far), `thought`, `node` (branch point), `prefix_tokens`, `remainder_tokens`
    (what the rollouts had to beat, closing and solution included), `position` (prefix / (prefix +
    remainder), in `[0, 1]`), `rollouts`, `rollout_tokens` (list, in sampling order), `mean_rollout_tokens`,
    `correct_rollouts`, `accepted`, `accepted_tokens` (of the kept rollout), `saved_tokens` (remainder - kept
    rollout), `kind` (`overthinking`/`underthinking`, `None` when nothing was kept).

    Raises:
        ValueError: no searched result has a tree.
    """
    import pandas as pd

    cols = [
        "index",
        "row_id",
        "exploration",
        "boundary",
        "thought",
        "node",
        "prefix_tokens",
        "remainder_tokens",
        "position",
        "rollouts",
        "rollout_tokens",
        "mean_rollout_tokens",
        "correct_rollouts",
        "accepted",
        "accepted_tokens",
        "saved_tokens",
        "kind",
    ]
    rows = []
    for r in _searched_with_trees(load_results(results), "boundary_table"):
        for e in explorations(r.tree, r.revisions):  # type: ignore[arg-type]
            lengths = [ro["tokens"] for ro in e["rollouts"]]
            kept = [ro["tokens"] for ro in e["rollouts"] if ro["accepted"]]
            total = e["prefix_tokens"] + e["remainder_tokens"]
            rows.append(
                {
                    "index": r.index,
                    "row_id": _row_id(r),
                    **{
                        k: e[k]
                        for k in (
                            "exploration",
                            "boundary",
                            "thought",
                            "node",
                            "prefix_tokens",
                            "remainder_tokens",
                        )
                    },
                    "position": e["prefix_tokens"] / total if total else math.nan,
                    "rollouts": len(lengths),
                    "rollout_tokens": lengths,
                    "mean_rollout_tokens": sum(lengths) / len(lengths) if lengths else math.nan,
                    "correct_rollouts": sum(bool(ro["correct"]) for ro in e["rollouts"]),
                    "accepted": e["accepted"],
                    "accepted_tokens": kept[0] if kept else None,
                    "saved_tokens": e["remainder_tokens"] - kept[0] if kept else None,
                    "kind": e["kind"],
                }
            )
    df = pd.DataFrame(rows, columns=cols)
    for c in ("accepted_tokens", "saved_tokens"):
        df[c] = df[c].astype("Int64")
    df["accepted"] = df["accepted"].astype(bool)
    df["position"] = df["position"].astype(float)
    df["mean_rollout_tokens"] = df["mean_rollout_tokens"].astype(float)
    return df


def rollout_lengths(results: ResultsLike) -> pd.DataFrame:
    """One row per rollout (from the search trees).

    Columns: `index`, `row_id`, `exploration`, `boundary`, `sample` (rank at its switch), `tokens`,
    `remainder_tokens` (of its switch), `relative` (tokens / remainder), `finish_reason` (`"length"`: stopped
    by the token budget or cap), `correct`, `value`, `accepted`, `outcome` (`"accepted"`, `"correct"`: correct
    but not kept, `"wrong"`: closed its thinking with a wrong answer, `"unfinished"`: never closed its thinking,
    e.g. stopped by the token budget).
    """
    import pandas as pd

    rows = []
    for r in _searched_with_trees(load_results(results), "rollout_lengths"):
        for e in explorations(r.tree, r.revisions):  # type: ignore[arg-type]
            for k, ro in enumerate(e["rollouts"]):
                if ro["accepted"]:
                    outcome = "accepted"
                elif ro["correct"]:
                    outcome = "correct"
                elif ro["closed"] and ro["finish_reason"] in ("stop", "eos"):
                    outcome = "wrong"
                else:
                    outcome = "unfinished"
                rows.append(
                    {
                        "index": r.index,
                        "row_id": _row_id(r),
                        "exploration": e["exploration"],
                        "boundary": e["boundary"],
                        "sample": k,
                        "tokens": ro["tokens"],
                        "remainder_tokens": e["remainder_tokens"],
                        "relative": ro["tokens"] / e["remainder_tokens"]
                        if e["remainder_tokens"]
                        else math.nan,
                        "finish_reason": ro["finish_reason"],
                        "correct": ro["correct"],
                        "value": ro["value"],
                        "accepted": ro["accepted"],
                        "outcome": outcome,
                    }
                )
    cols = [
        "index",
        "row_id",
        "exploration",
        "boundary",
        "sample",
        "tokens",
        "remainder_tokens",
        "relative",
        "finish_reason",
        "correct",
        "value",
        "accepted",
        "outcome",
    ]
    return pd.DataFrame(rows, columns=cols)


def acceptance_by_thought(
    results: ResultsLike, *, by: Literal["thought", "position"] = "thought", bins: int = 5
) -> pd.DataFrame:
    """Acceptance at each explored switch, grouped by thought index or by relative position in the trace.

    Args:
        results: See `load_results`.
        by: `"thought"` groups by the switch's thought index; `"position"` by where the cut fell in the trace
            (prefix share of the thinking), in `bins` equal-width bins over `[0, 1]`.
        bins: Number of position bins.

    Returns:
        One row per group (indexed by `thought` or by the position interval): `explored`, `accepted`,
        `acceptance_rate`, `overthinking`, `underthinking` (kept cuts of each kind), `mean_rollout_tokens`,
        `correct_share` (correct rollouts / rollouts).
    """
    import pandas as pd

    if by not in ("thought", "position"):
        raise ValueError(f"acceptance_by_thought: by must be 'thought' or 'position', got {by!r}")
    bt = boundary_table(results)
    if by == "position":
        if bins < 1:
            raise ValueError(f"acceptance_by_thought: bins must be >= 1, got {bins}")
        key = pd.cut(bt["position"], bins=[k / bins for k in range(bins + 1)], include_lowest=True)
        key.name = "position"
    else:
        key = bt["thought"]
    bt = bt.assign(
        _over=bt["kind"].eq("overthinking"),
        _under=bt["kind"].eq("underthinking"),
        _tokens=bt["rollout_tokens"].map(sum),
        _correct=bt["correct_rollouts"],
    )
    g = bt.groupby(key, observed=False, sort=True)
    out = pd.DataFrame(
        {
            "explored": g.size(),
            "accepted": g["accepted"].sum(),
            "overthinking": g["_over"].sum(),
            "underthinking": g["_under"].sum(),
            "_tokens": g["_tokens"].sum(),
            "_rollouts": g["rollouts"].sum(),
            "_correct": g["_correct"].sum(),
        }
    )
    out = out.astype({c: "int64" for c in ("explored", "accepted", "overthinking", "underthinking")})
    n = out["explored"].where(out["explored"] > 0)
    out["acceptance_rate"] = out["accepted"] / n
    ro = out["_rollouts"].where(out["_rollouts"] > 0)
    out["mean_rollout_tokens"] = out["_tokens"] / ro
    out["correct_share"] = out["_correct"] / ro
    out.index.name = by
    return out[
        [
            "explored",
            "accepted",
            "acceptance_rate",
            "overthinking",
            "underthinking",
            "mean_rollout_tokens",
            "correct_share",
        ]
    ]


def summary(results: ResultsLike) -> pd.DataFrame:
    """One row over the whole run.

    Columns: `traces`, `revised`, `unchanged`, `skipped`, `errors`, `revised_share` (revised / searched, where
    searched = revised + unchanged), `thinking_tokens_before` / `thinking_tokens_after` (means over searched
    traces), `mean_cut_pct` (mean per-trace cut of thinking tokens, in %, over searched traces),
    `total_cut_pct` (cut of the summed thinking tokens, in %), `explored` (switches), `accepted` (revisions
    kept), `acceptance_rate` (accepted / explored), `rollouts`, `tokens_spent` (rollout tokens generated),
    `tokens_saved` (thinking tokens), `spent_per_saved` (tokens spent per thinking token saved; `inf` when
    nothing was saved), `mean_first_accepted_thought`, `overthinking` / `underthinking` (kept cuts of each
    kind) and `overthinking_share` (of kept cuts).
    """
    import pandas as pd

    tt = trace_table(results)
    status = tt["status"].value_counts()
    s = tt[tt["status"].isin(SEARCHED)]

    def total(col: str) -> int:
        return int(s[col].sum()) if len(s) else 0

    before, after = total("thinking_tokens_before"), total("thinking_tokens_after")
    saved, spent = before - after, total("tokens_spent")
    explored, accepted = total("boundaries_explored"), total("accepted")
    over, under = total("overthinking"), total("underthinking")
    first = s["first_accepted_thought"].dropna()
    row = {
        "traces": len(tt),
        "revised": int(status.get("revised", 0)),
        "unchanged": int(status.get("unchanged", 0)),
        "skipped": int(status.get("skipped", 0)),
        "errors": int(status.get("error", 0)),
        "revised_share": float(status.get("revised", 0)) / len(s) if len(s) else math.nan,
        "thinking_tokens_before": before / len(s) if len(s) else math.nan,
        "thinking_tokens_after": after / len(s) if len(s) else math.nan,
        "mean_cut_pct": 100 * float(s["saved_share"].mean()) if len(s) else math.nan,
        "total_cut_pct": 100 * saved / before if before else math.nan,
        "explored": explored,
        "accepted": accepted,
        "acceptance_rate": accepted / explored if explored else math.nan,
        "rollouts": total("rollouts"),
        "tokens_spent": spent,
        "tokens_saved": saved,
        "spent_per_saved": spent / saved if saved > 0 else math.inf,
        "mean_first_accepted_thought": float(first.astype(float).mean()) if len(first) else math.nan,
        "overthinking": over,
        "underthinking": under,
        "overthinking_share": over / (over + under) if over + under else math.nan,
    }
    return pd.DataFrame([row])


# =========================================================================== plots
def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _scatter_by_status(ax: Any, table: Any, x: str, y: str) -> None:
    """One scatter series per search outcome (unchanged in gray, revised in blue) of `table[x]` vs `table[y]`."""
    for status, color in (("unchanged", "tab:gray"), ("revised", "tab:blue")):
        part = table[table["status"] == status]
        ax.scatter(
            part[x].astype(float),
            part[y].astype(float),
            s=14,
            alpha=0.7,
            color=color,
            label=f"{status} ({len(part)})",
        )


def plot_lengths(results: ResultsLike, ax: Axes | None = None) -> Axes:
    """Thinking tokens after vs before, one point per searched trace, with the diagonal (no change).

    Points below the diagonal were shortened; the distance below it is the saving.
    """
    tt = trace_table(results)
    s = tt[tt["status"].isin(SEARCHED)]
    ax = _axes(ax)
    _scatter_by_status(ax, s, "thinking_tokens_before", "thinking_tokens_after")
    hi = float(s["thinking_tokens_before"].max()) if len(s) else 1.0
    ax.plot([0, hi], [0, hi], color="black", lw=1, ls="--", label="no change")
    ax.set_xlim(0, hi * 1.05)
    ax.set_ylim(0, hi * 1.05)
    ax.set_xlabel("thinking tokens before")
    ax.set_ylabel("thinking tokens after")
    ax.set_title("Trace length before vs after revision")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_acceptance_by_thought(results: ResultsLike, ax: Axes | None = None) -> Axes:
    """Share of explored switches whose rollout was kept, by thought index, split by cut kind.

    The bars stack to the acceptance rate; the number above each is how many switches were explored there.
    """
    ab = acceptance_by_thought(results)
    ax = _axes(ax)
    x = [str(i) for i in ab.index]
    n = ab["explored"].where(ab["explored"] > 0)
    over = (ab["overthinking"] / n).fillna(0.0)
    under = (ab["underthinking"] / n).fillna(0.0)
    other = (ab["acceptance_rate"].fillna(0.0) - over - under).clip(lower=0.0)
    ax.bar(x, over, color="tab:red", label="over-thinking cut")
    ax.bar(x, under, bottom=over, color="tab:blue", label="under-thinking cut")
    if (other > 0).any():
        ax.bar(x, other, bottom=over + under, color="tab:gray", label="kind unknown")
    for xi, rate, cnt in zip(x, ab["acceptance_rate"].fillna(0.0), ab["explored"]):
        ax.annotate(f"n={cnt}", (xi, rate), ha="center", va="bottom", fontsize="x-small")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("thought index of the switch")
    ax.set_ylabel("acceptance rate")
    ax.set_title("Where revisions are accepted")
    ax.legend(fontsize="small")
    return ax


def plot_spent_vs_saved(results: ResultsLike, ax: Axes | None = None) -> Axes:
    """Rollout tokens spent vs thinking tokens saved, one point per searched trace.

    The dashed line is break-even (one token generated per token saved); the title gives the run's ratio.
    """
    tt = trace_table(results)
    s = tt[tt["status"].isin(SEARCHED)]
    ax = _axes(ax)
    _scatter_by_status(ax, s, "saved_tokens", "tokens_spent")
    hi = float(max(s["saved_tokens"].max(), 1)) if len(s) else 1.0
    ax.plot([0, hi], [0, hi], color="black", lw=1, ls="--", label="spent = saved")
    saved, spent = float(s["saved_tokens"].sum()), float(s["tokens_spent"].sum())
    ratio = f"{spent / saved:.1f}" if saved > 0 else "inf"
    ax.set_xlabel("thinking tokens saved")
    ax.set_ylabel("rollout tokens spent")
    ax.set_title(f"Search cost vs saving ({ratio} spent per token saved)")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_rollout_lengths(results: ResultsLike, ax: Axes | None = None, *, bins: int = 30) -> Axes:
    """Histogram of rollout lengths (tokens), stacked by outcome: accepted, correct, wrong, unfinished."""
    rl = rollout_lengths(results)
    ax = _axes(ax)
    colors = {
        "accepted": ACCEPTED_COLOR,
        "correct": "tab:green",
        "wrong": "tab:orange",
        "unfinished": "tab:gray",
    }
    data = [rl.loc[rl["outcome"] == k, "tokens"].astype(float).to_numpy() for k in colors]
    ax.hist(
        data,
        bins=bins,
        stacked=True,
        color=list(colors.values()),
        label=[f"{k} ({len(d)})" for k, d in zip(colors, data)],
    )
    ax.set_xlabel("rollout tokens")
    ax.set_ylabel("rollouts")
    ax.set_title("Rollout lengths")
    ax.legend(fontsize="small")
    return ax


# =========================================================================== the tree drawing
def _as_graph(tree: Any) -> nx.DiGraph:
    if isinstance(tree, RevisionResult):
        if tree.tree is None:
            raise ValueError(f"draw_tree: result {tree.index} ({tree.status}) has no search tree")
        tree = tree.tree
    if isinstance(tree, SearchTree):
        return tree.to_networkx()
    if isinstance(tree, dict):
        return SearchTree.from_dict(tree).to_networkx()
    if hasattr(tree, "nodes") and hasattr(tree, "successors"):
        return tree
    raise TypeError(
        f"draw_tree: expected a SearchTree, a RevisionResult or a networkx.DiGraph, got {type(tree)}"
    )


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


def _node_color(g: nx.DiGraph, n: int, chains: dict[int, list[int]]) -> str:
    origin = g.nodes[n].get("origin")
    if origin != "rollout":
        return NODE_COLORS.get(origin, "tab:gray")
    chain = chains.get(n, [n])
    correct = g.nodes[chain[0]].get("correct")
    if correct:
        return NODE_COLORS["rollout_correct"]
    finish = g.nodes[chain[-1]].get("finish_reason")
    closed = THINK_CLOSE in "".join(g.nodes[c].get("text", "") for c in chain)
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
    token budget). Each node's label is its span's token count.

    Args:
        tree: A `SearchTree`, its `to_networkx()` graph, its `to_dict()`, or a `RevisionResult` with a tree.
        ax: Axes to draw on (a new figure when `None`).
        x: Horizontal coordinate: cumulative `"tokens"` (an edge's length is its span's length) or `"depth"`.
        labels: Write token counts next to the nodes.
        node_size: Marker area in points^2.

    Returns:
        The axes. Its collections are labelled `"edges"` (a `LineCollection`, one segment per edge in
        `g.edges` order) and `"nodes"` (a `PathCollection`, one marker per node in `g.nodes` order).
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    g = _as_graph(tree)
    pos = tree_layout(g, x=x)
    n_lanes = int(-min(y for _, y in pos.values())) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(10, max(2.5, 0.45 * n_lanes + 1.5)), layout="constrained")
    on_path = set(kept_path(g)[1:])
    chains = _rollout_chains(g)
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
        c=[_node_color(g, n, chains) for n in nodes],
        edgecolors=[ACCEPTED_COLOR if n in on_path else "white" for n in nodes],
        linewidths=[1.8 if n in on_path else 0.5 for n in nodes],
    )
    sc.set_label("nodes")
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
