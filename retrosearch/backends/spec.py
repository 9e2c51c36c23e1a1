"""The one place that turns settings (command-line flags, a picklable spec for Ray actors) into a backend."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.backends.registry import BACKENDS, backend_class, load_backend, resolve_model

__all__ = ["BACKENDS", "BackendSpec", "backend_class", "load_backend", "load_script", "resolve_model"]


@dataclass
class BackendSpec:
    """Everything needed to build a backend, picklable so that each Ray actor can build its own.

    Attributes:
        kind: `scripted`, `transformers`, `vllm` or `openai`.
        model: The model that revises: a path or hub name (transformers, vllm), the server's model name (openai),
            or for `scripted` a JSON file mapping prompt suffixes to continuation(s) (see `load_script`).
        tokenizer: Tokenizer path/name when it differs from the model (all but scripted).
        base_url: Server address (openai).
        api_key: Bearer token (openai); `None` reads `$OPENAI_API_KEY` when set.
        device: Device for transformers (`auto`, `cpu`, `cuda`, ...).
        dtype: Weights dtype (transformers, vllm).
        trust_remote_code: Allow code from the model folder to run (off unless asked for).
        max_model_len: Context length for vllm.
        scripted_latency: Fake seconds per backend call (scripted).
        batch_size: Sequences per forward batch (transformers).
    """

    kind: str
    model: str
    tokenizer: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    max_model_len: int | None = None
    scripted_latency: float = 0.0
    batch_size: int = 16

    @staticmethod
    def add_arguments(group: Any, *, model_help: str, model_required: bool = False) -> None:
        """The command-line flags of a backend (`--backend`, `--model`, ...), shared by every subcommand."""
        group.add_argument(
            "--backend", required=True, choices=tuple(BACKENDS), help="Where generation happens."
        )
        group.add_argument("--model", default=None, required=model_required, help=model_help)
        group.add_argument(
            "--tokenizer", default=None, help="Tokenizer path/name when it differs from the model."
        )
        group.add_argument(
            "--base-url", default=None, help="OpenAI-compatible server (openai), e.g. http://127.0.0.1:8000."
        )
        group.add_argument(
            "--api-key", default=None, help="Bearer token for openai (default: $OPENAI_API_KEY if set)."
        )
        group.add_argument("--device", default="auto", help="Device for transformers (auto, cpu, cuda, ...).")
        group.add_argument("--dtype", default="auto", help="Weights dtype (transformers, vllm).")
        group.add_argument("--max-model-len", type=int, default=None, help="Context length (vllm).")
        group.add_argument(
            "--batch-size", type=int, default=16, help="Sequences per forward batch (transformers)."
        )
        group.add_argument(
            "--trust-remote-code", action="store_true", help="Allow code shipped with the model to run."
        )

    @classmethod
    def from_args(cls, args: Any, *, model: str | None = None) -> BackendSpec:
        """The spec of parsed `add_arguments` flags (`model` overrides `--model`, e.g. a revision model)."""
        return cls(
            kind=args.backend,
            model=model or args.model,
            tokenizer=args.tokenizer,
            base_url=args.base_url,
            api_key=args.api_key,
            device=args.device,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            max_model_len=args.max_model_len,
            scripted_latency=getattr(args, "scripted_latency", 0.0),
            batch_size=args.batch_size,
        )

    def build(self) -> Backend:
        """Load the backend (heavy libraries are imported here, not before).

        For transformers and vllm, `model` may also name a shipped toy model (`toy-base`, `toy-small`).
        """
        from retrosearch.backends.scripted import ScriptedBackend

        if self.kind in ("transformers", "vllm"):
            self = dataclasses.replace(self, model=resolve_model(self.model))
        if self.kind == "scripted":
            return ScriptedBackend(load_script(self.model), latency_s=self.scripted_latency)
        if self.kind == "transformers":
            return load_backend(
                "transformers",
                model=self.model,
                tokenizer=self.tokenizer,
                device=self.device,
                dtype=self.dtype,
                trust_remote_code=self.trust_remote_code,
                batch_size=self.batch_size,
            )
        if self.kind == "vllm":
            return load_backend(
                "vllm",
                model=self.model,
                tokenizer=self.tokenizer,
                dtype=self.dtype,
                max_model_len=self.max_model_len,
                trust_remote_code=self.trust_remote_code,
            )
        if self.kind == "openai":
            key = self.api_key if self.api_key is not None else os.environ.get("OPENAI_API_KEY")
            return load_backend(
                "openai", base_url=self.base_url, model=self.model, api_key=key, tokenizer=self.tokenizer
            )
        raise ValueError(f"backend: unknown kind {self.kind!r}")


def load_script(path: str | Path) -> dict[str, str | list[str]]:
    """Read a scripted model: a JSON object mapping a prompt suffix to a continuation or a list of them.

    The longest suffix that ends the prompt wins; a list gives the candidates in order of preference (those
    containing a banned word are dropped, and one of the rest is drawn with the request's seed). A prompt is
    the question, a newline, `<think>\\n`, then the thinking so far: rollouts start at the end of a thought's
    last step (before the blank line), so a key such as `"6 * 7 = 42."` answers the first step there and
    `"6 * 7 = 42.\\n</think>\\n\\n"` the continuation after the thinking is closed.

    Raises:
        ValueError: the file is not a JSON object of strings / lists of strings (the message names the key).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ValueError(f"--model: the scripted model file {p} does not exist") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"--model: {p} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(
            f"--model: {p} must hold a JSON object (prompt suffix -> continuation), got {type(data).__name__}"
        )
    for k, v in data.items():
        if not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))):
            raise ValueError(f"--model: {p}: key {k!r} must map to a string or a list of strings")
    return data
