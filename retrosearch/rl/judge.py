"""An LLM judge for QA: any backend (an OpenAI-compatible server, typically) grades (question, gold, prediction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrosearch.types import GenerationRequest

#: The judge's prompt. `{question}`, `{gold}` (the gold aliases joined by " | ") and `{prediction}` are filled
#: in; the judge answers with one word, True or False, which `parse_verdict` reads (the first word that says
#: true/yes/correct or false/no/incorrect; anything else is no verdict).
JUDGE_TEMPLATE = """You are grading the answer to a question against its golden answer.

Question: {question}
Golden answer: {gold}
Predicted answer: {prediction}

The predicted answer is correct if it has the same meaning and the same key information as the golden answer \
(any one of them, when several are separated by " | "); wording, capitalisation and extra detail that does not \
change the meaning do not matter. Reply with one word: True if the predicted answer is correct, False otherwise.
Verdict:"""

_TRUE = ("true", "yes", "correct", "right")
_FALSE = ("false", "no", "incorrect", "wrong")


def parse_verdict(reply: str) -> bool | None:
    """A verdict from a judge's reply (or a recorded verdict such as R1-Searcher's `gpt4o_output`)."""
    for word in reply.replace("*", " ").replace(".", " ").replace(",", " ").replace(":", " ").lower().split():
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


@dataclass(frozen=True)
class JudgeVerdict:
    """One grade: `correct` is `None` when the judge gave no readable verdict (`reply` says what it wrote)."""

    correct: bool | None
    reply: str


class LLMJudge:
    """Grades predictions with a model: one batched `generate` call per `batch_size` items, greedy.

    Args:
        backend: Any `Backend`; an `OpenAIBackend` makes any OpenAI-compatible server the judge.
        template: The prompt (see `JUDGE_TEMPLATE`).
        use_chat_template: Send the prompt as a user turn through the backend's chat template when it has one.
        max_tokens: Most tokens of a reply.
        batch_size: Items per backend call.
    """

    def __init__(
        self,
        backend: Any,
        *,
        template: str = JUDGE_TEMPLATE,
        use_chat_template: bool = True,
        max_tokens: int = 8,
        batch_size: int = 64,
    ) -> None:
        for key in ("{question}", "{gold}", "{prediction}"):
            if key not in template:
                raise ValueError(f"the judge template must contain {key}")
        if batch_size < 1 or max_tokens < 1:
            raise ValueError(f"batch_size and max_tokens must be >= 1, got {batch_size}, {max_tokens}")
        self.backend, self.template = backend, template
        self.use_chat_template, self.max_tokens, self.batch_size = use_chat_template, max_tokens, batch_size

    def prompt(self, question: str, golds: Sequence[str], prediction: str) -> str:
        text = self.template.format(question=question, gold=" | ".join(golds), prediction=prediction)
        if self.use_chat_template and hasattr(self.backend, "apply_chat_template"):
            try:
                return self.backend.apply_chat_template([{"role": "user", "content": text}])
            except ValueError:  # no chat template: the raw prompt
                pass
        return text

    def __call__(self, items: Sequence[tuple[str, Sequence[str], str | None]]) -> list[JudgeVerdict]:
        """Grade `(question, gold aliases, prediction)` items, in order; an empty prediction is wrong unasked."""
        out: list[JudgeVerdict | None] = [None] * len(items)
        asks: list[tuple[int, GenerationRequest]] = []
        for i, (question, golds, pred) in enumerate(items):
            if pred is None or not str(pred).strip():
                out[i] = JudgeVerdict(False, "")
            else:
                req = GenerationRequest(
                    self.prompt(question, list(golds), str(pred)), temperature=0.0, max_tokens=self.max_tokens
                )
                asks.append((i, req))
        for k in range(0, len(asks), self.batch_size):
            chunk = asks[k : k + self.batch_size]
            results = self.backend.generate([r for _, r in chunk])
            for (i, _), completions in zip(chunk, results):
                c = completions[0]
                reply = c.text if c.finish_reason != "error" else f"error: {c.error}"
                out[i] = JudgeVerdict(None if c.finish_reason == "error" else parse_verdict(reply), reply)
        return out  # type: ignore[return-value]
