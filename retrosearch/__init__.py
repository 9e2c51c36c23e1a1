"""retrosearch: make reasoning models think shorter (Retro-Search) and search smarter (search-augmented RL)."""

from __future__ import annotations

from typing import Any

from retrosearch.backends import Backend, Completion, GenerationRequest, ScriptedBackend, load_backend
from retrosearch.engine import Engine, EngineStats, Generate, ProgramError
from retrosearch.retro import PromptFormat, RetroSearchConfig, Revision, RevisionResult, revise, revise_iter
from retrosearch.trace import DEFAULT_KEYWORDS, Step, Thought, Trace, TraceFormatError
from retrosearch.tree import Node, SearchTree
from retrosearch.verify import Verdict, Verifier, VerifyResult, get_verifier

__version__ = "0.1.0"

_LAZY_BACKENDS = ("TransformersBackend", "VLLMBackend", "OpenAIBackend")


def __getattr__(name: str) -> Any:
    # Heavy backends import torch / vllm / httpx: only on first use.
    if name in _LAZY_BACKENDS:
        from retrosearch import backends

        return getattr(backends, name)
    raise AttributeError(f"module 'retrosearch' has no attribute {name!r}")


__all__ = [
    "DEFAULT_KEYWORDS",
    "Backend",
    "Completion",
    "Engine",
    "EngineStats",
    "Generate",
    "GenerationRequest",
    "Node",
    "OpenAIBackend",
    "ProgramError",
    "PromptFormat",
    "RetroSearchConfig",
    "Revision",
    "RevisionResult",
    "ScriptedBackend",
    "SearchTree",
    "Step",
    "Thought",
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
