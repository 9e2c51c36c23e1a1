"""GRPO training of search agents on TRL (R1-Searcher's two stages, R1-Searcher++): config, rollout_func, trainer.

`config` is light; `rollout_func` needs the engine only; `trainer` imports torch and TRL (loaded on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

from retrosearch.rl.train.config import RECIPES, REWARDS, RLTrainConfig, load_config, recipe_path

_LAZY = {
    "SearchRolloutFunc": "retrosearch.rl.train.rollout_func",
    "SearchGRPOTrainer": "retrosearch.rl.train.trainer",
    "build_trainer": "retrosearch.rl.train.trainer",
    "train": "retrosearch.rl.train.trainer",
}

__all__ = [
    "RECIPES",
    "REWARDS",
    "RLTrainConfig",
    "SearchGRPOTrainer",
    "SearchRolloutFunc",
    "build_trainer",
    "load_config",
    "recipe_path",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
