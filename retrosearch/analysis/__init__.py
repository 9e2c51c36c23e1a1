"""Tables, plots and tree drawings of Retro-Search results, for Jupyter (pandas and matplotlib load lazily)."""

from retrosearch.analysis.drawing import (
    ACCEPTED_COLOR,
    EDGE_COLOR,
    NODE_COLORS,
    QUERY_CUT_COLOR,
    SUPERSEDED_COLOR,
    draw_tree,
    tree_layout,
)
from retrosearch.analysis.load import load_results
from retrosearch.analysis.plots import (
    plot_acceptance_by_thought,
    plot_lengths,
    plot_retrievals,
    plot_rollout_lengths,
    plot_spent_vs_saved,
)
from retrosearch.analysis.records import explorations, kept_path
from retrosearch.analysis.tables import (
    acceptance_by_thought,
    boundary_table,
    rollout_lengths,
    summary,
    trace_table,
)

__all__ = [
    "ACCEPTED_COLOR",
    "EDGE_COLOR",
    "NODE_COLORS",
    "QUERY_CUT_COLOR",
    "SUPERSEDED_COLOR",
    "acceptance_by_thought",
    "boundary_table",
    "draw_tree",
    "explorations",
    "kept_path",
    "load_results",
    "plot_acceptance_by_thought",
    "plot_lengths",
    "plot_retrievals",
    "plot_rollout_lengths",
    "plot_spent_vs_saved",
    "rollout_lengths",
    "summary",
    "trace_table",
    "tree_layout",
]
