"""Plots of Retro-Search runs: lengths and retrievals before vs after, acceptance, cost vs saving, rollout lengths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrosearch.analysis.drawing import ACCEPTED_COLOR
from retrosearch.analysis.load import SEARCHED, ResultsLike
from retrosearch.analysis.tables import acceptance_by_thought, rollout_lengths, trace_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes


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


def plot_retrievals(results: ResultsLike, ax: Axes | None = None) -> Axes:
    """Retrievals per search trace before and after revision: how many traces made 0, 1, 2, ... retrievals.

    Paired bars per retrieval count (before in gray, after in the kept path's colour); the title gives the
    retrievals removed over the run.
    """
    tt = trace_table(results)
    s = tt[tt["status"].isin(SEARCHED) & tt["retrievals_before"].notna()]
    ax = _axes(ax)
    before = s["retrievals_before"].astype(int)
    after = s["retrievals_after"].astype(int)
    top = int(max(before.max(), after.max())) if len(s) else 0
    xs = list(range(top + 1))
    width = 0.4
    for shift, col, color, label in (
        (-width / 2, before, "tab:gray", "before"),
        (width / 2, after, ACCEPTED_COLOR, "after"),
    ):
        counts = [int((col == k).sum()) for k in xs]
        ax.bar([x + shift for x in xs], counts, width=width, color=color, label=label)
    removed, total = int(before.sum() - after.sum()), int(before.sum())
    ax.set_xticks(xs)
    ax.set_xlabel("retrievals per trace")
    ax.set_ylabel("traces")
    share = f" ({100 * removed / total:.0f}%)" if total else ""
    ax.set_title(f"Retrievals before vs after: {removed} of {total} removed{share}")
    ax.legend(fontsize="small")
    return ax
