"""The toy world: seeded arithmetic problems, R1-style traces with bad habits, and the small models trained on them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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

#: Names of the models that ship with the package (`retrosearch/assets/toy/<name>/`).
MODEL_NAMES: tuple[str, ...] = ("toy-base", "toy-small")


def model_path(name: str = "toy-base") -> Path:
    """Folder of a shipped toy model (config, weights, tokenizer), loadable with `from_pretrained`.

    Args:
        name: `"toy-base"` (~2 M parameters) or `"toy-small"` (the weaker reviser for weak-to-strong).
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown toy model {name!r}; expected one of {MODEL_NAMES}")
    path = Path(str(resources.files("retrosearch") / "assets" / "toy" / name))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"toy model {name!r} is missing at {path}; rebuild it with scripts/train_toy_model.py --name {name}"
        )
    return path


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
