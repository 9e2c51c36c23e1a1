"""Images for the transformers backend: a vision-language model's processor turns a request's images into inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from retrosearch.types import ImagePart


def is_image_processor(obj: Any) -> bool:
    """Whether `obj` is a multimodal processor (a tokenizer plus an image processor), not a bare tokenizer."""
    return getattr(obj, "image_processor", None) is not None and getattr(obj, "tokenizer", None) is not None


class ImageInputs:
    """Expands a prompt's image tokens and builds the model's image tensors with the model's processor.

    A prompt names each image with the processor's image token (`<image>` for LLaVA, `<|image_pad|>` inside
    `<|vision_start|>...<|vision_end|>` for Qwen2-VL), once per image, in the order of the request's images.
    The processor decides how many tokens an image takes; each single image token of the prompt ids is replaced
    by that run (ids that already hold every run are kept as they are). Image tensors are per image and are
    concatenated along their first dimension across a batch, which is how the processors of LLaVA, Qwen2-VL and
    Qwen2.5-VL lay them out.

    Args:
        processor: A `transformers` processor with `tokenizer`, `image_processor` and an `image_token`.
    """

    def __init__(self, processor: Any) -> None:
        if not is_image_processor(processor):
            raise TypeError(f"expected a processor with an image processor, got {type(processor).__name__}")
        self.processor = processor
        token = getattr(processor, "image_token", None)
        if token is None:
            raise ValueError(f"{type(processor).__name__} names no image token (processor.image_token)")
        self.image_token: str = token
        token_id = getattr(processor, "image_token_id", None)
        self.image_token_id: int = (
            int(token_id) if token_id is not None else processor.tokenizer.convert_tokens_to_ids(token)
        )

    def one(self, image: Any) -> tuple[list[int], dict[str, torch.Tensor]]:
        """The run of token ids one image takes and its tensors (`pixel_values`, `image_grid_thw`, ...)."""
        out = self.processor(text=[self.image_token], images=[image], return_tensors="pt")
        ids = out["input_ids"][0].tolist()
        where = [k for k, t in enumerate(ids) if t == self.image_token_id]
        if not where:
            raise ValueError(f"the processor wrote no image token {self.image_token!r} for an image")
        run = ids[where[0] : where[-1] + 1]  # without a BOS or other tokens the tokenizer adds around text
        tensors = {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask", "token_type_ids")}
        return run, {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}

    def expand(
        self, ids: Sequence[int], images: Sequence[ImagePart]
    ) -> tuple[list[int], dict[str, torch.Tensor]]:
        """`ids` with each image's token expanded to its run, and the images' tensors for the model.

        Raises:
            ValueError: the ids hold neither one image token per image nor every image's full run.
        """
        parts = [self.one(part.load()) for part in images]
        positions = [k for k, t in enumerate(ids) if t == self.image_token_id]
        full = sum(len(run) for run, _ in parts)
        if len(positions) == full:
            out = list(ids)
        elif len(positions) == len(parts):
            out, start = [], 0
            for k, (run, _) in zip(positions, parts):
                out += list(ids[start:k]) + run
                start = k + 1
            out += list(ids[start:])
        else:
            raise ValueError(
                f"the prompt holds {len(positions)} image tokens {self.image_token!r} for {len(parts)} image(s): "
                f"expected one per image (or {full}, every image's expanded run)"
            )
        return out, concat([t for _, t in parts])


def concat(tensors: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-image (or per-row) tensors joined along their first dimension, key by key."""
    keys = [k for k in tensors[0]] if tensors else []
    return {k: torch.cat([t[k] for t in tensors], dim=0) for k in keys}
