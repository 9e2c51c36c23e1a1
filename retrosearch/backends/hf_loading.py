"""Loading for the transformers backend: dtypes, the model class of a config, a vision-language processor."""

from __future__ import annotations

from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM

from retrosearch.backends.hf_images import is_image_processor

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def dtype_kwargs(dtype: str | torch.dtype = "auto") -> dict[str, Any]:
    """The `from_pretrained` keyword for a weights dtype (`{"dtype": ...}`, or `torch_dtype` before 4.56).

    Args:
        dtype: `"auto"` (the checkpoint's), a name (`"float32"`, `"bfloat16"`, `"float16"`, `"bf16"`, ...) or a
            `torch.dtype`.

    Raises:
        ValueError: an unknown dtype name.
    """
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        value: Any = dtype
    elif dtype in _DTYPES:
        value = _DTYPES[dtype]
    else:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}")
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": value}


def auto_class(config: Any) -> Any:
    """`AutoModelForImageTextToText` for a vision-language config, else `AutoModelForCausalLM`."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if getattr(config, "model_type", None) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText
    return AutoModelForCausalLM


def load_processor(source: str, load_kwargs: dict[str, Any]) -> Any:
    """The folder's multimodal processor, or `None` when it has none (the model then takes text only)."""
    from transformers import AutoProcessor

    kwargs = {k: v for k, v in load_kwargs.items() if k != "gguf_file"}
    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return processor if is_image_processor(processor) else None


def resolve_device(device: str) -> str:
    """`device` as given, or for `"auto"` the best one here: CUDA, then MPS, then CPU."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
