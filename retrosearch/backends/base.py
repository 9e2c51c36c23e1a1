"""The backend contract: the only seam through which the library touches a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "eos", "error"]


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to continue, with its sampling settings.

    Attributes:
        prompt: The full text to continue (already formatted for the model: chat template, think tag, ...).
        prompt_ids: The same prompt as token ids. When given, backends feed these ids to the model instead of
            re-tokenizing `prompt` (the RL path needs exact ids); `prompt` is then informative only.
        n: Number of independent samples.
        temperature: Sampling temperature; `0` means greedy.
        top_p: Nucleus sampling mass.
        max_tokens: Maximum number of new tokens per sample.
        stop: Stop strings. Generation ends right after the first one; it is kept at the end of the text.
        banned_words: Words that may not be generated anywhere in this request's continuation (every
            leading-space and capitalisation variant the caller wants banned must be listed, as vLLM's
            `bad_words`). Retro-Search bans switch words only in the *first step* by sending a first request
            with the ban and a blank-line stop, then a free continuation (see `retrosearch.retro`).
        seed: Seed for this request; sample `i` uses `seed + i` where a backend seeds per sample.
        logprobs: Whether to return the log-probability of every sampled token.
    """

    prompt: str
    prompt_ids: tuple[int, ...] | None = None
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise TypeError(f"GenerationRequest.prompt must be a str, got {type(self.prompt).__name__}")
        if self.n < 1:
            raise ValueError(f"GenerationRequest.n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"GenerationRequest.max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"GenerationRequest.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenerationRequest.top_p must be in (0, 1], got {self.top_p}")
        # Tuples keep the request hashable; accept lists from callers.
        for name in ("stop", "banned_words"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"GenerationRequest.{name} must be a sequence of strings, not a str")
            object.__setattr__(self, name, tuple(value))
        if self.prompt_ids is not None:
            object.__setattr__(self, "prompt_ids", tuple(int(t) for t in self.prompt_ids))


@dataclass
class Completion:
    """One sample returned by a backend.

    Attributes:
        text: The generated text (a matched stop string is kept at its end).
        token_ids: The generated token ids, `len == num_tokens`.
        finish_reason: `"stop"` (a stop string), `"eos"` (end of sequence), `"length"` (max tokens) or
            `"error"` (the backend failed for this request; `error` says why).
        stop_reason: The stop string that ended generation, if any.
        logprobs: Per-token log-probabilities of `token_ids` when requested.
        error: Why the request failed, when `finish_reason == "error"`.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    stop_reason: str | None = None
    logprobs: list[float] | None = None
    error: str | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@runtime_checkable
class Backend(Protocol):
    """What every backend implements. Heavy libraries are imported lazily inside implementations."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Continue every request; returns, per request and in order, its `n` completions."""
        ...

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens added."""
        ...


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, str | None]:
    """Cut `text` right after the earliest stop string (kept); returns the text and the stop that matched."""
    best: tuple[int, str] | None = None
    for s in stop:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best[0] + len(best[1])):
            best = (i, s)
    if best is None:
        return text, None
    return text[: best[0] + len(best[1])], best[1]


def chat_prompt(
    tokenizer: Any,
    messages: Sequence[dict[str, str]],
    *,
    add_generation_prompt: bool = True,
    name: str = "the model",
) -> str:
    """Chat `messages` as prompt text with a Hugging Face tokenizer's template (shared by the backends).

    Raises:
        ValueError: the tokenizer has no chat template (callers such as `PromptFormat` fall back to raw text).
    """
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"the tokenizer of {name} has no chat template")
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )
