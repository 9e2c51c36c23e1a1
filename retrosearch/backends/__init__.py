"""Backends: the only code that touches a model. Heavy ones are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from retrosearch.backends.base import Backend, Completion, GenerationRequest
from retrosearch.backends.scripted import ScriptContext, ScriptedBackend

_LAZY = {
    "TransformersBackend": "retrosearch.backends.hf",
    "VLLMBackend": "retrosearch.backends.vllm",
    "OpenAIBackend": "retrosearch.backends.openai",
}

#: Names accepted by `load_backend` (and the CLI's `--backend`).
BACKENDS = {
    "scripted": "ScriptedBackend",
    "transformers": "TransformersBackend",
    "vllm": "VLLMBackend",
    "openai": "OpenAIBackend",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_backend(kind: str, **kwargs: Any) -> Backend:
    """Build a backend by name: one of `BACKENDS` (keyword arguments go to its constructor)."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend {kind!r}; choose one of {sorted(BACKENDS)}")
    cls_name = BACKENDS[kind]
    cls = ScriptedBackend if kind == "scripted" else __getattr__(cls_name)
    return cls(**kwargs)


__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "GenerationRequest",
    "OpenAIBackend",
    "ScriptContext",
    "ScriptedBackend",
    "TransformersBackend",
    "VLLMBackend",
    "load_backend",
]
