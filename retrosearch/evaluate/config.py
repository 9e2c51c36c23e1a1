"""`EvalConfig`: the settings of `evaluate`, in vLLM's sampling vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

from retrosearch.config import check_choices, option, with_aliases
from retrosearch.retro import PromptFormat
from retrosearch.verify import VERIFIERS

__all__ = ["EvalConfig"]


@with_aliases
@dataclass
class EvalConfig:
    """Settings of `evaluate` (every field is also a `retrosearch evaluate` flag; vLLM's `SamplingParams`
    names where it has one, the old `k` still accepted)."""

    n: int = option(4, "Samples per problem; accuracy is pass@1 averaged over them.", aliases=("k",))
    temperature: float = option(0.6, "Sampling temperature (0: greedy, then the n samples are identical).")
    top_p: float = option(0.95, "Nucleus sampling mass.")
    max_tokens: int = option(4096, "Most new tokens per sample (thinking and solution).")
    seed: int = option(0, "Seed of the samples (with the benchmark and problem id).")
    limit: int | None = option(None, "Evaluate only the first N problems of each benchmark.")
    verifier: str = option("math", "Answer grader.", choices=tuple(VERIFIERS))
    data_dir: str | None = option(
        None, "Folder holding math/*.jsonl (default: $RETROSEARCH_SHARED_DATA, else ../shared/data)."
    )
    toy_problems: int = option(200, "Held-out toy problems evaluated for the toy benchmark (when no limit).")
    toy_seed: int = option(0, "Seed of the toy benchmark's problems.")
    use_chat_template: bool = option(
        True, "Wrap the question with the model's chat template when it has one."
    )
    system_prompt: str | None = option(None, "System message for the chat template.")
    question_template: str = option(
        "{question}",
        "Text of the user turn; `{question}` is replaced (e.g. add 'Put your final answer within \\boxed{}.').",
    )
    think_open: str = option(
        "<think>\n", "Text that opens the thinking, appended to the prompt (unless there)."
    )
    think_close: str = option("</think>", "Tag that closes the thinking in the model's output.")
    max_active: int = option(
        256, "Problems sampled at once (their requests share one backend call per wave)."
    )
    save_samples: bool = option(
        True, "Keep every sample's text in the per-problem records of the JSON output."
    )

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in ("n", "max_tokens", "max_active", "toy_problems"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}.{f} must be an integer >= 1, got {v!r}")
        if self.limit is not None and (
            not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1
        ):
            raise ValueError(f"{name}.limit must be None or an integer >= 1, got {self.limit!r}")
        if not isinstance(self.temperature, (int, float)) or not self.temperature >= 0:
            raise ValueError(f"{name}.temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"{name}.top_p must be in (0, 1], got {self.top_p!r}")
        if "{question}" not in self.question_template:
            raise ValueError(
                f"{name}.question_template must contain {{question}}, got {self.question_template!r}"
            )
        if not self.think_close:
            raise ValueError(f"{name}.think_close must not be empty")
        check_choices(self)

    @property
    def prompt_format(self) -> PromptFormat:
        """The prompt as Retro-Search builds it: chat template, then the think tag."""
        return PromptFormat(
            use_chat_template=self.use_chat_template,
            system_prompt=self.system_prompt,
            question_template=self.question_template,
            think_open=self.think_open,
            think_close=self.think_close,
        )
