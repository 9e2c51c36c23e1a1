"""The backend contract: the only seam through which the library touches a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from retrosearch.types import Completion, FinishReason, GenerationRequest

__all__ = ["Backend", "Completion", "FinishReason", "GenerationRequest", "apply_stop", "chat_prompt"]


@runtime_checkable
class Backend(Protocol):
    """What every backend implements. Heavy libraries are imported lazily inside implementations.

    A request's `prompt_ids`, when given, are the exact tokens to condition on (the engine sends them whenever a
    path's ids are exact); a backend that can take ids feeds them as they are, never re-tokenizing `prompt`,
    and one that cannot reads `prompt`. `images` are the prompt's images, in the order of their placeholders.
    Each completion's `token_ids` are the sampled ids (and `logprobs`, when asked for, one per id). A failure
    of one request is answered with `Completion(finish_reason="error", error=...)`; raising fails the whole
    call's programs. A backend may also offer `decode(ids) -> str` (used to split spans at token boundaries),
    and, when it takes requests as they come (an async engine, a server), `submit(request) ->
    concurrent.futures.Future[list[Completion]]`: the engine then runs its continuous schedule (and passes
    `priority=` if `submit` takes it: lower first, an int as in vLLM).
    """

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
