"""retrosearch: make reasoning models think shorter (Retro-Search) and search smarter (search-augmented RL)."""

from __future__ import annotations

from typing import Any

from retrosearch.backends import Backend, Completion, GenerationRequest, ScriptedBackend, load_backend
from retrosearch.engine import Engine, EngineStats, Generate, ProgramError
from retrosearch.retro import (
    Exploration,
    PromptFormat,
    RetroSearchConfig,
    Revision,
    RevisionResult,
    revise,
    revise_iter,
)
from retrosearch.trace import DEFAULT_KEYWORDS, Step, Thought, Trace, TraceFormatError
from retrosearch.tree import Node, SearchTree
from retrosearch.types import BackendError, Call, ImagePart, SamplingParams, ToolError
from retrosearch.verify import Verdict, Verifier, VerifyResult, get_verifier

__version__ = "0.1.0"

_LAZY_BACKENDS = ("TransformersBackend", "LiveTransformersBackend", "VLLMBackend", "OpenAIBackend")


def __getattr__(name: str) -> Any:
    # Heavy backends import torch / vllm / httpx: only on first use.
    if name in _LAZY_BACKENDS:
        from retrosearch import backends

        return getattr(backends, name)
    raise AttributeError(f"module 'retrosearch' has no attribute {name!r}")


__all__ = [
    "Backend",
    "BackendError",
    "Call",
    "Completion",
    "DEFAULT_KEYWORDS",
    "Engine",
    "EngineStats",
    "Exploration",
    "Generate",
    "GenerationRequest",
    "ImagePart",
    "LiveTransformersBackend",
    "Node",
    "OpenAIBackend",
    "ProgramError",
    "PromptFormat",
    "RetroSearchConfig",
    "Revision",
    "RevisionResult",
    "SamplingParams",
    "ScriptedBackend",
    "SearchTree",
    "Step",
    "Thought",
    "ToolError",
    "Trace",
    "TraceFormatError",
    "TransformersBackend",
    "VLLMBackend",
    "Verdict",
    "Verifier",
    "VerifyResult",
    "get_verifier",
    "load_backend",
    "revise",
    "revise_iter",
    "__version__",
]
