"""Backends by name, and model names resolved to folders (a shipped model's name or a path / hub id)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from retrosearch.assets import MODEL_NAMES, model_path
from retrosearch.backends.base import Backend

#: Backend names accepted by `load_backend`, `BackendSpec` and the command line's `--backend`, with their class.
BACKENDS = {
    "scripted": "retrosearch.backends.scripted:ScriptedBackend",
    "transformers": "retrosearch.backends.hf:TransformersBackend",
    "vllm": "retrosearch.backends.vllm:VLLMBackend",
    "openai": "retrosearch.backends.openai:OpenAIBackend",
}


def backend_class(kind: str) -> type:
    """The class of backend `kind` (its heavy library is imported here, not before)."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend {kind!r}; choose one of {sorted(BACKENDS)}")
    module, name = BACKENDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def load_backend(kind: str, **kwargs: Any) -> Backend:
    """Build a backend by name: one of `BACKENDS` (keyword arguments go to its constructor)."""
    return backend_class(kind)(**kwargs)


def resolve_model(name: str) -> str:
    """A model folder for `name`: an existing path or hub id as given, or a shipped model's folder."""
    if Path(name).exists():
        return name
    if name in MODEL_NAMES:
        return str(model_path(name))
    return name
