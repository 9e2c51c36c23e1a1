"""On-policy generation: a backend over the trainer's own live `transformers` model (shared weights, no copy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from retrosearch.backends.base import Completion, GenerationRequest
from retrosearch.backends.hf import TransformersBackend


class LiveTransformersBackend(TransformersBackend):
    """Generates with a model that is being trained, so that every call samples from the current weights.

    The same requests / completions contract and the same code path as `TransformersBackend` (per-row seeded
    sampling, bans, stops, log-probs in either mode, images with a processor); what differs is only how the model
    is held. The model object is used as it is: never copied, moved or cast, and left in train mode between
    calls. Each `generate` switches it to eval mode (no dropout), runs under `torch.no_grad()` (not inference
    mode, whose tensors autograd refuses later), and restores every submodule's own train/eval flag afterwards,
    also when generation fails. It is what RL training uses on CPU: after an optimizer step the next call
    already sees the new weights, with nothing to synchronise.

    Args:
        model: The trainer's model (a `PreTrainedModel`, a PEFT model, or a wrapper with the model in `.module`,
            as DDP has). Under DeepSpeed ZeRO-3 gather the weights first (TRL's `unwrap_model_for_generation`).
        tokenizer: The model's tokenizer (or a processor), or where to load it from (default: the model's
            `name_or_path`).
        batch_size: Most rows (sequences) per `generate` call.
        processor: A vision-language model's processor, when requests carry images.
    """

    name = "transformers-live"
    _grad_mode = staticmethod(torch.no_grad)

    def __init__(
        self, model: Any, tokenizer: Any = None, *, batch_size: int = 16, processor: Any = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not hasattr(model, "generate") and hasattr(getattr(model, "module", None), "generate"):
            model = model.module
        if not (isinstance(model, torch.nn.Module) and hasattr(model, "generate")):
            raise TypeError(f"model must be a loaded transformers model, got {type(model).__name__}")
        self.batch_size = batch_size
        self.trust_remote_code = False
        self.model = model
        source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
        self._attach_tokenizer(tokenizer, processor, source, {})

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Continue every request with the model's current weights (eval mode, no gradients, modes restored)."""
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            return super().generate(requests)
        finally:
            for module, training in modes:
                module.training = training
