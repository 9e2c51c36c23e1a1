"""Backends: the only code that touches a model. Heavy ones are imported on first use."""

from __future__ import annotations

from typing import Any

from retrosearch.backends.base import Backend, Completion, GenerationRequest
from retrosearch.backends.registry import BACKENDS, backend_class, load_backend, resolve_model
from retrosearch.backends.scripted import ScriptContext, ScriptedBackend

_LAZY = {"TransformersBackend": "transformers", "VLLMBackend": "vllm", "OpenAIBackend": "openai"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return backend_class(_LAZY[name])
    if name == "LiveTransformersBackend":  # on-policy generation with a trainer's own model (imports torch)
        from retrosearch.backends.live import LiveTransformersBackend

        return LiveTransformersBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "GenerationRequest",
    "LiveTransformersBackend",
    "OpenAIBackend",
    "ScriptContext",
    "ScriptedBackend",
    "TransformersBackend",
    "VLLMBackend",
    "backend_class",
    "load_backend",
    "resolve_model",
]
