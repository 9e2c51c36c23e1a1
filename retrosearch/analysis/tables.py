"""Tables of Retro-Search runs: per trace, per explored cut, per rollout, by thought, for the run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from retrosearch.analysis.load import SEARCHED, ResultsLike, load_results, row_id, searched_with_records
from retrosearch.analysis.records import explorations

if TYPE_CHECKING:
    import pandas as pd

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
    "retrievals_before",
    "retrievals_after",
    "retrievals_removed",
]
#: Integer columns of `trace_table` (nullable: `<NA>` for traces that were not searched).
_INT_COLUMNS = [*_STAT_COLUMNS, "saved_tokens", "overthinking", "underthinking"]


def trace_table(results: ResultsLike) -> pd.DataFrame:
    """One row per input trace.

    Columns: `index`, `row_id`, `status`, `reason`, `reference` (`"gold"`, `"self"` when graded against the
    trace's own answer, `None` when nothing was graded), `thoughts_before/after`, `steps_before/after`,
    `thinking_tokens_before/after`, `total_tokens_before/after`, `rollouts`, `tokens_spent` (rollout tokens
    generated), `boundaries_explored`, `accepted` (revisions kept), `first_accepted_thought` (thought index of
    the first kept revision), `saved_tokens` (thinking tokens before - after), `saved_share` (of before),
    `overthinking`/`underthinking` (kept revisions of each kind); for search traces `retrievals_before/after`
    and `retrievals_removed` (`<NA>` for reasoning traces). Counts are nullable integers: `<NA>` for traces that
    were not searched (skipped, error).
    """
    import pandas as pd

    rows = []
    for r in load_results(results):
        s = r.stats
        row: dict[str, Any] = {
            "index": r.index,
            "row_id": row_id(r),
            "status": r.status,
            "reason": r.reason,
            "reference": r.reference,
        }
        for k in _STAT_COLUMNS:
            row[k] = s.get(k)
        searched = r.status in SEARCHED
        if row["accepted"] is None and searched:
            row["accepted"] = len(r.revisions)
        before, after = s.get("thinking_tokens_before"), s.get("thinking_tokens_after")
        row["saved_tokens"] = before - after if before is not None and after is not None else None
        row["saved_share"] = row["saved_tokens"] / before if before else math.nan
        row["overthinking"] = sum(v.kind == "overthinking" for v in r.revisions) if searched else None
        row["underthinking"] = sum(v.kind == "underthinking" for v in r.revisions) if searched else None
        rows.append(row)
    columns = ["index", "row_id", "status", "reason", "reference", *_STAT_COLUMNS]
    df = pd.DataFrame(
        rows, columns=[*columns, "saved_tokens", "saved_share", "overthinking", "underthinking"]
    )
    for c in _INT_COLUMNS:
        df[c] = df[c].astype("Int64")
    df["saved_share"] = df["saved_share"].astype(float)
    return df


_BOUNDARY_COLUMNS = [
    "index",
    "row_id",
    "exploration",
    "boundary",
    "thought",
    "cut",
    "node",
    "prefix_tokens",
    "remainder_tokens",
    "remainder_steps",
    "remainder_value",
    "position",
    "budget",
    "rollouts",
    "rollout_tokens",
    "mean_rollout_tokens",
    "correct_rollouts",
    "accepted",
    "accepted_tokens",
    "saved_tokens",
    "kind",
    "reason",
    "cut_kind",
    "remainder_retrievals",
]


def boundary_table(results: ResultsLike) -> pd.DataFrame:
    """One row per explored thought switch, from the search's exploration records (no tree needed).

    Columns: `index`, `row_id`, `exploration` (rank within the trace), `boundary` (thought index of the switch
    in the trace as revised so far), `thought` (the same), `cut` (character offset in that thinking), `node`
    (branch point), `prefix_tokens`, `remainder_tokens` / `remainder_steps` / `remainder_value` (what the
    rollouts had to beat, closing and solution included), `position` (prefix / (prefix + remainder), in
    `[0, 1]`), `budget` (most tokens per rollout), `rollouts`, `rollout_tokens` (list, in sampling order),
    `mean_rollout_tokens`, `correct_rollouts`, `accepted`, `accepted_tokens` (of the kept rollout),
    `saved_tokens` (remainder - kept rollout), `kind` (`overthinking`/`underthinking`, `None` when nothing was
    kept), `reason` (why the rollout was kept, or why none was), `cut_kind` (`"switch"`, or `"query"`: the
    untaken path before a query of a search trace) and `remainder_retrievals` (search traces; else `<NA>`).

    Raises:
        ValueError: no searched result has exploration records (a journal of an older version).
    """
    import pandas as pd

    rows = []
    for r in searched_with_records(load_results(results), "boundary_table"):
        for e in explorations(r):
            lengths = [ro["tokens"] for ro in e["rollouts"]]
            kept = [ro["tokens"] for ro in e["rollouts"] if ro["accepted"]]
            total = e["prefix_tokens"] + e["remainder_tokens"]
            rows.append(
                {
                    "index": r.index,
                    "row_id": row_id(r),
                    **{k: e[k] for k in _BOUNDARY_COLUMNS if k in e},
                    "position": e["prefix_tokens"] / total if total else math.nan,
                    "rollouts": len(lengths),
                    "rollout_tokens": lengths,
                    "mean_rollout_tokens": sum(lengths) / len(lengths) if lengths else math.nan,
                    "correct_rollouts": sum(bool(ro["correct"]) for ro in e["rollouts"]),
                    "accepted_tokens": kept[0] if kept else None,
                    "saved_tokens": e["remainder_tokens"] - kept[0] if kept else None,
                }
            )
    df = pd.DataFrame(rows, columns=_BOUNDARY_COLUMNS)
    for c in ("accepted_tokens", "saved_tokens", "remainder_retrievals"):
        df[c] = df[c].astype("Int64")
    df["accepted"] = df["accepted"].astype(bool)
    for c in ("position", "mean_rollout_tokens", "remainder_value"):
        df[c] = df[c].astype(float)
    return df


def _outcome(ro: dict[str, Any]) -> str:
    if ro["accepted"]:
        return "accepted"
    if ro["correct"]:
        return "correct"
    if ro["closed"] and ro["finish_reason"] in ("stop", "eos"):
        return "wrong"
    return "unfinished"


def rollout_lengths(results: ResultsLike) -> pd.DataFrame:
    """One row per rollout, from the search's exploration records.

    Columns: `index`, `row_id`, `exploration`, `boundary`, `sample` (rank at its switch), `tokens`, `steps`
    (thinking steps before it closed its thinking; `None` when it never did), `remainder_tokens` (of its
    switch), `relative` (tokens / remainder), `finish_reason` (`"length"`: stopped by the token budget or cap),
    `verdict`, `correct`, `value`, `accepted`, `outcome` (`"accepted"`, `"correct"`: correct but not kept,
    `"wrong"`: closed its thinking with a wrong answer, `"unfinished"`: never closed its thinking, e.g. stopped
    by the token budget), `note` (why it was or was not kept).
    """
    import pandas as pd

    rows = []
    for r in searched_with_records(load_results(results), "rollout_lengths"):
        for e in explorations(r):
            rem = e["remainder_tokens"]
            for ro in e["rollouts"]:
                rows.append(
                    {
                        "index": r.index,
                        "row_id": row_id(r),
                        "exploration": e["exploration"],
                        "boundary": e["boundary"],
                        "sample": ro["sample"],
                        "tokens": ro["tokens"],
                        "steps": ro["steps"],
                        "remainder_tokens": rem,
                        "relative": ro["tokens"] / rem if rem else math.nan,
                        "finish_reason": ro["finish_reason"],
                        "verdict": ro["verdict"],
                        "correct": ro["correct"],
                        "value": ro["value"],
                        "accepted": ro["accepted"],
                        "outcome": _outcome(ro),
                        "note": ro["note"],
                    }
                )
    cols = [
        "index",
        "row_id",
        "exploration",
        "boundary",
        "sample",
        "tokens",
        "steps",
        "remainder_tokens",
        "relative",
        "finish_reason",
        "verdict",
        "correct",
        "value",
        "accepted",
        "outcome",
        "note",
    ]
    df = pd.DataFrame(rows, columns=cols)
    df["steps"] = df["steps"].astype("Int64")
    return df


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
    cols = ["explored", "accepted", "acceptance_rate", "overthinking", "underthinking"]
    return out[[*cols, "mean_rollout_tokens", "correct_share"]]


def summary(results: ResultsLike) -> pd.DataFrame:
    """One row over the whole run.

    Columns: `traces`, `revised`, `unchanged`, `skipped`, `errors`, `revised_share` (revised / searched, where
    searched = revised + unchanged), `thinking_tokens_before` / `thinking_tokens_after` (means over searched
    traces), `mean_cut_pct` (mean per-trace cut of thinking tokens, in %, over searched traces),
    `total_cut_pct` (cut of the summed thinking tokens, in %), `explored` (switches), `accepted` (revisions
    kept), `acceptance_rate` (accepted / explored), `rollouts`, `tokens_spent` (rollout tokens generated),
    `tokens_saved` (thinking tokens), `spent_per_saved` (tokens spent per thinking token saved; `inf` when
    nothing was saved), `mean_first_accepted_thought`, `overthinking` / `underthinking` (kept cuts of each
    kind), `overthinking_share` (of kept cuts), and for search traces `retrievals_before` / `retrievals_after`
    / `retrievals_removed` (sums over searched traces; 0 for reasoning traces) and `traces_with_removal`.
    """
    import pandas as pd

    tt = trace_table(results)
    status = tt["status"].value_counts()
    s = tt[tt["status"].isin(SEARCHED)]

    def total(col: str) -> int:
        return int(s[col].sum()) if len(s) else 0

    def mean(x: float) -> float:
        return x / len(s) if len(s) else math.nan

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
        "revised_share": mean(float(status.get("revised", 0))),
        "thinking_tokens_before": mean(before),
        "thinking_tokens_after": mean(after),
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
        "retrievals_before": total("retrievals_before"),
        "retrievals_after": total("retrievals_after"),
        "retrievals_removed": total("retrievals_removed"),
        "traces_with_removal": int((s["retrievals_removed"].fillna(0) > 0).sum()) if len(s) else 0,
    }
    return pd.DataFrame([row])
