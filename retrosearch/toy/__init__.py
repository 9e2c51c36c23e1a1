"""The toy world: seeded arithmetic problems, R1-style traces with bad habits, and the small models trained on them."""

from __future__ import annotations

from retrosearch.assets import MODEL_NAMES, model_path

from .world import (
    SWITCH_WORDS,
    Problem,
    Trace,
    TraceConfig,
    detect_habits,
    evaluate_expression,
    habit_shares,
    make_dataset,
    make_drills,
    make_problem,
    make_problems,
    make_trace,
    split_think,
)

__all__ = [
    "MODEL_NAMES",
    "SWITCH_WORDS",
    "Problem",
    "Trace",
    "TraceConfig",
    "detect_habits",
    "evaluate_expression",
    "habit_shares",
    "make_dataset",
    "make_drills",
    "make_problem",
    "make_problems",
    "make_trace",
    "model_path",
    "split_think",
]
