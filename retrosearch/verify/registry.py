"""Verifiers by name (`VERIFIERS`, `get_verifier`) and plain callables wrapped as verifiers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from retrosearch.verify.base import Verdict, Verifier, VerifyResult
from retrosearch.verify.choice import ExactMatchVerifier, MultipleChoiceVerifier
from retrosearch.verify.extract import extract_answer
from retrosearch.verify.math import MathVerifier
from retrosearch.verify.qa import CoverEMVerifier, F1Verifier


class CallableVerifier:
    """Wraps `fn(response, gold)` returning a bool, a score (correct when `>= threshold`) or a `VerifyResult`.

    Exceptions raised by `fn` propagate: a crashing grader is a bug to see, not an unparseable answer.
    """

    def __init__(
        self,
        fn: Callable[[str, str], bool | float | VerifyResult],
        name: str | None = None,
        *,
        threshold: float = 0.5,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallableVerifier needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.threshold = threshold

    def __call__(self, response: str, gold: Any) -> VerifyResult:
        out = self.fn(response, gold)
        gold_text = gold if isinstance(gold, str) else str(gold)
        if isinstance(out, VerifyResult):
            return out
        if isinstance(out, bool):
            verdict = Verdict.CORRECT if out else Verdict.INCORRECT
            return VerifyResult(verdict, f"{self.name} returned {out}", extract_answer(response), gold_text)
        if isinstance(out, (int, float)) and not (isinstance(out, float) and math.isnan(out)):
            verdict = Verdict.CORRECT if out >= self.threshold else Verdict.INCORRECT
            return VerifyResult(
                verdict,
                f"{self.name} scored {out:g} ({'>=' if out >= self.threshold else '<'} {self.threshold:g})",
                extract_answer(response),
                gold_text,
                score=float(out),
            )
        raise TypeError(
            f"verifier callable {self.name!r} returned {type(out).__name__}; expected bool, a number or VerifyResult"
        )


#: Names accepted by `get_verifier`, each with a factory taking no arguments; `tuple(VERIFIERS)` lists the
#: choices (for a config field or a CLI flag).
VERIFIERS: dict[str, Callable[[], Verifier]] = {
    "math": MathVerifier,
    "exact": ExactMatchVerifier,
    "choice": MultipleChoiceVerifier,
    "cover_em": CoverEMVerifier,
    "f1": F1Verifier,
}


def get_verifier(spec: str | Verifier | Callable[[str, str], Any]) -> Verifier:
    """A verifier from a name (one of `VERIFIERS`: "math", "exact", "choice", "cover_em", "f1"), a `Verifier`
    (returned as is) or a plain callable `fn(response, gold)` (wrapped in `CallableVerifier`).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: anything else.
    """
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in VERIFIERS:
            raise ValueError(
                f"unknown verifier {spec!r}; choose one of: {', '.join(VERIFIERS)} (or pass a callable)"
            )
        return VERIFIERS[key]()
    if isinstance(spec, Verifier):
        return spec
    if callable(spec):
        return CallableVerifier(spec)
    raise TypeError(f"verifier must be a name, a Verifier or a callable, got {type(spec).__name__}")
