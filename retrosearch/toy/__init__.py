"""The toy world: seeded arithmetic problems, R1-style traces with bad habits, and the small models trained on them."""

from __future__ import annotations

from retrosearch.assets import MODEL_NAMES, model_path

from .config import TraceConfig
from .habits import detect_habits, habit_shares, split_think
from .problems import Problem, apply_op, evaluate_expression, make_drills, make_problem, make_problems
from .world import SWITCH_WORDS, ToyTrace, make_dataset, make_trace

__all__ = [
    "MODEL_NAMES",
    "SWITCH_WORDS",
    "Problem",
    "ToyTrace",
    "TraceConfig",
    "apply_op",
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
