"""Distillation: supervised fine-tuning of a student on (revised) traces with TRL's SFTTrainer."""

from retrosearch.backends.spec import resolve_model
from retrosearch.distill.config import DEFAULT_COMPLETION_TEMPLATE, DistillConfig
from retrosearch.distill.data import load_examples
from retrosearch.distill.trainer import build_trainer, distill

__all__ = [
    "DEFAULT_COMPLETION_TEMPLATE",
    "DistillConfig",
    "build_trainer",
    "distill",
    "load_examples",
    "resolve_model",
]
