"""The grading protocol: `Verifier`, its `VerifyResult` and the three verdicts."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: A gold answer as stored in the data sets: a string (LaTeX, a GSM8K worked solution ending in `#### N`), a
#: number (AMC's `27.0`) or a one-element list (OlympiadBench's `final_answer`).
Gold = str | int | float | Sequence[Any]


class Verdict(str, enum.Enum):
    """Outcome of grading one response."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNPARSEABLE = "unparseable"


@dataclass(frozen=True)
class VerifyResult:
    """What a verifier says about one response.

    Attributes:
        verdict: correct / incorrect / unparseable (no answer found, an answer or gold that does not parse, or a
            check that ran past its deadline).
        reason: one line saying why, for logs and debugging.
        prediction: the answer extracted from the response, or `None` when none was found.
        gold: the gold answer as it was compared (after normalization), or `None`.
        score: a graded score in `[0, 1]` where the verifier has one (F1, a callable returning a float), else
            `None`; `reward` stays binary.
    """

    verdict: Verdict
    reason: str
    prediction: str | None = None
    gold: str | None = None
    score: float | None = None

    @property
    def correct(self) -> bool:
        """`True` only for `Verdict.CORRECT`."""
        return self.verdict is Verdict.CORRECT

    @property
    def reward(self) -> float:
        """`1.0` when correct, else `0.0`."""
        return 1.0 if self.correct else 0.0

    def __bool__(self) -> bool:
        return self.correct


@runtime_checkable
class Verifier(Protocol):
    """Grades a model response against a gold answer; extracts the answer from the response itself."""

    name: str

    def __call__(self, response: str, gold: str) -> VerifyResult: ...


def short(s: str, n: int = 80) -> str:
    """`s` cut to `n` characters (with "...") for reasons and log lines."""
    return s if len(s) <= n else s[: n - 3] + "..."
