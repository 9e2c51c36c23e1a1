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


#: The package each backend needs, checked before anything loads.
_PACKAGES = {"transformers": "transformers", "vllm": "vllm", "openai": "httpx"}


@dataclass
class BackendSpec:
    """Everything needed to build a backend, picklable so that each Ray actor can build its own.

    Attributes:
        kind: `scripted`, `transformers`, `vllm` or `openai`.
        model: The model that generates: a local folder, a shipped model (`toy-base`) or a hub id (transformers,
            vllm), the server's model name (openai), or for `scripted` a JSON file mapping prompt suffixes to
            continuation(s) (see `load_script`).
        tokenizer: Tokenizer path/name when it differs from the model (all but scripted).
        base_url: Server address (openai).
        api_key: Bearer token (openai); `None` reads `$OPENAI_API_KEY` when set.
        device: Device for transformers (`auto`, `cpu`, `cuda`, ...).
        dtype: Weights dtype (transformers, vllm).
        trust_remote_code: Allow code from the model folder to run (off unless asked for).
        max_model_len: Context length for vllm.
        tensor_parallel_size: GPUs one vllm engine spreads the model over (a 32B reviser: 2 to 4).
        gpu_memory_utilization: Share of each GPU's memory vllm may take (weights and KV cache), in `(0, 1]`.
        seed: Seed of the engine (vllm); requests carry their own seeds, so results do not depend on it.
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
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    seed: int | None = None
    scripted_latency: float = 0.0
    batch_size: int = 16

    @staticmethod
    def add_arguments(group: Any, *, model_help: str, model_required: bool = False) -> None:
        """The command-line flags of a backend (`--backend`, `--model`, ...), shared by every subcommand.

        The engine's seed is not a flag of its own: `from_args` takes the command's `--seed` (the search's or
        the evaluation's), which the requests' seeds come from anyway.
        """
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
        group.add_argument(
            "--dtype",
            default="auto",
            help="Weights dtype (transformers, vllm): auto, bfloat16, float16, float32.",
        )
        group.add_argument("--max-model-len", type=int, default=None, help="Context length (vllm).")
        group.add_argument(
            "--tensor-parallel-size",
            type=int,
            default=1,
            help="GPUs one vllm engine spreads the model over (e.g. 4 for a 32B reviser).",
        )
        group.add_argument(
            "--gpu-memory-utilization",
            type=float,
            default=0.9,
            help="Share of each GPU's memory vllm may take for weights and KV cache, in (0, 1].",
        )
        group.add_argument(
            "--batch-size", type=int, default=16, help="Sequences per forward batch (transformers)."
        )
        group.add_argument(
            "--trust-remote-code", action="store_true", help="Allow code shipped with the model to run."
        )

    @classmethod
    def from_args(cls, args: Any, *, model: str | None = None, seed: int | None = None) -> BackendSpec:
        """The spec of parsed `add_arguments` flags.

        Args:
            args: The parsed command line.
            model: The model to build instead of `--model` (e.g. `revise --revision-model`).
            seed: The engine's seed (default: the command's `--seed`, when it has one).
        """
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
            tensor_parallel_size=getattr(args, "tensor_parallel_size", 1),
            gpu_memory_utilization=getattr(args, "gpu_memory_utilization", 0.9),
            seed=seed if seed is not None else getattr(args, "seed", None),
            scripted_latency=getattr(args, "scripted_latency", 0.0),
            batch_size=args.batch_size,
        )

    def validate(self, *, flag: str = "--model") -> None:
        """Refuse what cannot work, in one line and before anything loads (`build` calls it first).

        A model that is not a local folder, a shipped model or a hub id the hub knows (or the cache holds) fails
        here at once, instead of after the loader's retries.

        Args:
            flag: How the message names the model (`--model`, `--revision-model`).

        Raises:
            ValueError: naming the flag and what was expected.
        """
        import importlib.util

        if self.kind not in BACKENDS:
            raise ValueError(f"--backend {self.kind!r}: choose one of {sorted(BACKENDS)}")
        if not self.model:
            raise ValueError(f"{flag} is required for --backend {self.kind}")
        if self.kind == "openai":
            if not self.base_url:
                raise ValueError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000)")
        elif self.base_url:
            raise ValueError(f"--base-url only applies to --backend openai, not {self.kind}")
        if self.tensor_parallel_size < 1:
            raise ValueError(f"--tensor-parallel-size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"--gpu-memory-utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.kind != "vllm" and (self.tensor_parallel_size != 1 or self.gpu_memory_utilization != 0.9):
            raise ValueError(
                f"--tensor-parallel-size and --gpu-memory-utilization only apply to --backend vllm, not {self.kind}"
            )
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.scripted_latency < 0:
            raise ValueError(f"--scripted-latency must be >= 0, got {self.scripted_latency}")
        if self.kind == "scripted":
            load_script(self.model)
            return
        pkg = _PACKAGES[self.kind]
        if importlib.util.find_spec(pkg) is None:
            raise ValueError(f"--backend {self.kind} needs the package {pkg!r}, which is not installed")
        if self.kind in ("transformers", "vllm"):
            from retrosearch.backends.locate import locate_model

            if str(self.model).endswith((".json", ".jsonl", ".parquet")):
                raise ValueError(
                    f"{flag} {self.model!r} looks like a file of data, not a model, for --backend {self.kind}"
                )
            for name, what in ((self.model, flag), (self.tokenizer, "--tokenizer")):
                if name is not None:
                    try:
                        locate_model(name, what=what)
                    except FileNotFoundError as e:
                        raise ValueError(str(e)) from e

    def identity(self) -> dict[str, Any]:
        """What names the model's outputs, for a journal's fingerprint: no addresses, keys or speed settings."""
        model = str(self.model)
        if self.kind != "openai" and Path(model).exists():
            model = str(Path(model).resolve())
        out: dict[str, Any] = {"backend": self.kind, "model": model}
        if self.tokenizer is not None:
            out["tokenizer"] = self.tokenizer
        if self.kind in ("transformers", "vllm"):
            out["dtype"] = self.dtype
        return out

    def build(self) -> Backend:
        """Check (`validate`), then load the backend (heavy libraries are imported here, not before).

        For transformers and vllm, `model` may also name a shipped toy model (`toy-base`, `toy-small`).
        """
        from retrosearch.backends.scripted import ScriptedBackend

        self.validate()
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
            extra: dict[str, Any] = {} if self.seed is None else {"seed": self.seed}
            return load_backend(
                "vllm",
                model=self.model,
                tokenizer=self.tokenizer,
                dtype=self.dtype,
                max_model_len=self.max_model_len,
                trust_remote_code=self.trust_remote_code,
                tensor_parallel_size=self.tensor_parallel_size,
                gpu_memory_utilization=self.gpu_memory_utilization,
                **extra,
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
