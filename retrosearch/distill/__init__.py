"""Distillation: supervised fine-tuning of a student on (revised) traces with TRL's SFTTrainer."""

from retrosearch.distill.core import (  # noqa: F401
    DEFAULT_COMPLETION_TEMPLATE,
    DistillConfig,
    build_trainer,
    distill,
    load_examples,
)

__all__ = [
    "DEFAULT_COMPLETION_TEMPLATE",
    "DistillConfig",
    "build_trainer",
    "distill",
    "load_examples",
    "resolve_model",
]
