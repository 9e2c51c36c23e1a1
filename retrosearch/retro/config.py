"""Settings of Retro-Search: how the revision model is prompted and how the search explores and accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retrosearch.config import check_choices, option, with_aliases
from retrosearch.rl.protocols import PROTOCOL_NAMES
from retrosearch.trace import DEFAULT_KEYWORDS
from retrosearch.verify import VERIFIERS

#: Where the reference answer of a trace comes from (`RetroSearchConfig.reference`).
REFERENCES: tuple[str, ...] = ("gold", "self")


@dataclass
class PromptFormat:
    """How the revision model is prompted: its chat template, then its think tag, then the thinking so far.

    A weak model revising a strong model's traces reads them in *its own* format; the revised trace is written
    back in the trace's format.
    """

    use_chat_template: bool = option(
        True, "Wrap the question with the backend's chat template (when it has one; else the raw template)."
    )
    system_prompt: str | None = option(None, "System message for the chat template.")
    question_template: str = option("{question}", "Text of the user turn; `{question}` is replaced.")
    raw_template: str = option(
        "{question}\n", "Prompt used without a chat template; `{question}` is the user turn's text."
    )
    think_open: str = option(
        "<think>\n", "Text that opens the thinking (appended unless the template ends with it)."
    )
    think_close: str = option("</think>", "Tag that closes the thinking in the revision model's output.")

    def render(self, question: str, backend: Any) -> str:
        """The prompt for `question` as `backend` reads it, ending with the opened thinking."""
        user = self.question_template.format(question=question)
        prompt = None
        if self.use_chat_template and hasattr(backend, "apply_chat_template"):
            messages = [{"role": "user", "content": user}]
            if self.system_prompt:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            try:
                prompt = backend.apply_chat_template(messages)
            except ValueError:  # the tokenizer has no chat template: a base model reads the raw prompt
                prompt = None
        if prompt is None:
            prompt = self.raw_template.format(question=user)
        if not prompt.endswith(self.think_open):
            # R1-distill templates already end with "<think>\n"; others need the tag.
            prompt += self.think_open
        return prompt


@with_aliases
@dataclass
class RetroSearchConfig:
    """Settings of `revise` (every field is also a `retrosearch revise` flag).

    Sampling fields take vLLM's names (`n`, `max_tokens`, `temperature`, `top_p`); the older spellings
    `n_rollouts` and `max_new_tokens` are accepted as keywords, attributes, flags and YAML keys.

    Acceptance: at each explored switch a rollout may replace the remainder when it is correct, its value beats
    the remainder's, and the revised trace is no longer in tokens (thinking and whole trace); of the rollouts that
    pass, the one with the highest value is kept, then the one with the fewest tokens, then the first sampled.
    With `gamma = 1` every correct continuation has value 1, so values always tie: a correct rollout then wins
    when its revised thinking is strictly shorter in tokens (the tie is broken on length). Below 1 the
    comparison of values is strict, as in the paper.

    Search traces (`protocol` set): the cuts are the thought switches and the queries. At a query the rollout
    continues from just before the query tag with that tag banned in its first step (answer from what the model
    knows or has already read); later queries are served by the engine's retrieval tool. The rule above gains
    the retrieval count: a rollout passes when it is correct, its revised trace is no longer in model-written
    tokens (documents are the environment's and are not counted), it makes no more retrievals, and either it
    makes fewer retrievals or its value beats the remainder's as above; of those that pass, the one with the
    fewest retrievals wins, then as above. So at a query the value `gamma ** steps * reward` ranks rollouts
    that all remove the retrieval, and at a switch a rollout may not buy a shorter thinking with a new search.
    """

    keywords: tuple[str, ...] = option(DEFAULT_KEYWORDS, "Transition keywords that start a new thought.")
    banned_words: tuple[str, ...] | None = option(
        None,
        "Words banned in the first step of a rollout (default: each keyword, bare and with a leading space).",
    )
    gamma: float = option(
        0.9,
        "Discount per thinking step: value = gamma ** steps * reward. At 1.0 values tie and fewer tokens wins.",
    )
    n: int = option(4, "Rollouts sampled at each thought switch.", aliases=("n_rollouts",))
    temperature: float = option(0.6, "Sampling temperature of rollouts.")
    top_p: float = option(0.95, "Nucleus sampling mass of rollouts.")
    max_tokens: int = option(
        4096,
        "Hard cap on the tokens of one rollout (its first step and its continuation together).",
        aliases=("max_new_tokens",),
    )
    token_budget: bool = option(
        True, "Stop a rollout once it is longer than the remainder it would replace (times budget_slack)."
    )
    budget_slack: float = option(
        1.0,
        "Multiplier on the budget. At >= 1.0 the budget never changes which revision is accepted, since a "
        "rollout longer than the remainder is never accepted.",
    )
    max_boundaries: int | None = option(
        None, "Partial revision: explore at most this many switches per trace (re-explorations included)."
    )
    boundary_stride: int = option(
        1,
        "Partial revision: explore only the switches whose index (in the trace as revised so far) is a "
        "multiple of k; the re-exploration of a switch after an acceptance is not counted again.",
    )
    first_step_max_tokens: int = option(
        256, "Cap on the first (banned-word) step of a rollout (at most max_tokens)."
    )
    verifier: str = option("math", f"Answer grader: {' | '.join(VERIFIERS)}.", choices=tuple(VERIFIERS))
    reference: str = option(
        "gold",
        "What a rollout's answer is graded against: 'gold' (a trace without a gold answer is skipped, the "
        "paper's rule) or 'self' (a trace without one is graded against its own final answer; the result's "
        "`reference` says so).",
        choices=REFERENCES,
    )
    protocol: str | None = option(
        None,
        "Tag protocol of search traces (e.g. r1-searcher): queries become cuts too, rollouts may search, and "
        f"the grader defaults to cover_em ({' | '.join(PROTOCOL_NAMES)}). None: reasoning traces, cuts at "
        "switches only.",
    )
    top_k: int = option(5, "Search traces: documents per query of a rollout (R1-Searcher's evaluation: 5).")
    max_retrievals: int = option(
        8, "Search traces: most retrievals in a revised trace (R1-Searcher: 8); a rollout past it is cut."
    )
    seed: int = option(0, "Seed of the rollouts (with the example index and the switch).")
    prompt: PromptFormat = field(
        default_factory=PromptFormat, metadata={"help": "Revision prompt.", "cli": False}
    )

    def __post_init__(self) -> None:
        if isinstance(self.prompt, dict):
            self.prompt = PromptFormat(**self.prompt)
        self.keywords = tuple(self.keywords)
        if not self.keywords:
            raise ValueError("RetroSearchConfig.keywords must not be empty")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"RetroSearchConfig.gamma must be in (0, 1], got {self.gamma}")
        for name in ("n (n_rollouts)", "max_tokens (max_new_tokens)", "first_step_max_tokens"):
            value = getattr(self, name.split()[0])
            if value < 1:
                raise ValueError(f"RetroSearchConfig.{name} must be >= 1, got {value}")
        if self.first_step_max_tokens > self.max_tokens:
            raise ValueError(
                f"RetroSearchConfig.first_step_max_tokens ({self.first_step_max_tokens}) must be <= "
                f"max_tokens (max_new_tokens, {self.max_tokens}): the first step is part of the rollout"
            )
        if self.budget_slack <= 0:
            raise ValueError(f"RetroSearchConfig.budget_slack must be > 0, got {self.budget_slack}")
        if self.boundary_stride < 1:
            raise ValueError(f"RetroSearchConfig.boundary_stride must be >= 1, got {self.boundary_stride}")
        if self.max_boundaries is not None and self.max_boundaries < 0:
            raise ValueError(f"RetroSearchConfig.max_boundaries must be >= 0, got {self.max_boundaries}")
        if self.top_k < 1 or self.max_retrievals < 0:
            raise ValueError(
                f"RetroSearchConfig.top_k must be >= 1 and max_retrievals >= 0, got {self.top_k}, "
                f"{self.max_retrievals}"
            )
        if self.protocol is not None and self.protocol not in PROTOCOL_NAMES:
            raise ValueError(
                f"RetroSearchConfig.protocol must be one of {list(PROTOCOL_NAMES)} or None, got {self.protocol!r}"
            )
        if self.protocol is not None and self.verifier == "math":
            # A search trace answers in tags, not \boxed{}: the math grader cannot read it.
            self.verifier = "cover_em"
        check_choices(self)

    @property
    def first_step_ban(self) -> tuple[str, ...]:
        """The words banned in a rollout's first step."""
        if self.banned_words is not None:
            return tuple(self.banned_words)
        out: list[str] = []
        for k in self.keywords:
            for v in (k, " " + k):
                if v not in out:
                    out.append(v)
        return tuple(out)
