"""String verifiers: exact match of the extracted answer, and the letter of a multiple-choice answer."""

from __future__ import annotations

import re
import string

from retrosearch.text import last_boxed
from retrosearch.verify.base import Gold, Verdict, VerifyResult, short
from retrosearch.verify.extract import extract_answer, gold_answer, unclosed_box
from retrosearch.verify.normalize import strip_wrappers


def _exact_normalize(s: str) -> str:
    s = strip_wrappers(s).replace("$", "")
    return re.sub(r"\s+", " ", s).strip().rstrip(".").strip().lower()


class ExactMatchVerifier:
    """String equality of the extracted answer (or the whole response when none is marked) and the gold.

    Args:
        normalize: strip, lowercase, collapse whitespace, drop `$` and a trailing period on both sides.
    """

    name = "exact"

    def __init__(self, normalize: bool = True) -> None:
        self.normalize = normalize

    def __call__(self, response: str, gold: Gold) -> VerifyResult:
        gold_text = gold_answer(gold)
        if unclosed_box(response):
            return VerifyResult(Verdict.UNPARSEABLE, "the last \\boxed{ is never closed", None, gold_text)
        extracted = extract_answer(response)
        pred = extracted if extracted is not None else response.strip()
        p, g = (_exact_normalize(pred), _exact_normalize(gold_text)) if self.normalize else (pred, gold_text)
        if not g:
            return VerifyResult(Verdict.UNPARSEABLE, "gold answer is empty", pred, gold_text)
        if not p:
            return VerifyResult(Verdict.UNPARSEABLE, "no answer found in the response", None, gold_text)
        if p == g:
            return VerifyResult(Verdict.CORRECT, f"exact match {short(p)!r}", pred, gold_text)
        return VerifyResult(Verdict.INCORRECT, f"{short(p)!r} != {short(g)!r}", pred, gold_text)


class MultipleChoiceVerifier:
    """The chosen letter, from `\\boxed{B}`, `(B)`, `answer is B`, `Answer: (B)`, ..., against the gold letter.

    Args:
        choices: the allowed option letters (upper case).
    """

    name = "choice"

    def __init__(self, choices: str = "ABCDE") -> None:
        choices = "".join(dict.fromkeys(choices.upper()))
        if not choices or not all(c in string.ascii_uppercase for c in choices):
            raise ValueError(f"choices must be letters, e.g. 'ABCDE', got {choices!r}")
        self.choices = choices
        cls = "[" + re.escape(choices) + "]"
        self._bare = re.compile(rf"^\(?\s*({cls})\s*\)?(?:[.:)\s]|$)", re.IGNORECASE)
        self._answer_is = re.compile(
            rf"answer\s*(?:is|:|=)?\s*:?\s*(?:option\s*)?[*$(\[{{\\]*(?:\\text(?:bf)?\{{)?\s*({cls})\b(?![a-z'])",
            re.IGNORECASE,
        )
        self._paren = re.compile(rf"\(({cls})\)")

    def letter(self, text: str | None) -> str | None:
        """The option letter in `text`, or `None`."""
        if not text:
            return None
        boxed = last_boxed(text)
        if boxed is not None:
            inner = (
                re.sub(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", r"\1", boxed)
                .replace("$", "")
                .strip()
            )
            m = self._bare.match(inner)
            return m.group(1).upper() if m else None
        hits = list(self._answer_is.finditer(text))
        if hits:
            return hits[-1].group(1).upper()
        stripped = strip_wrappers(text)
        m = self._bare.match(stripped)
        if m and len(stripped) <= 4:
            return m.group(1).upper()
        parens = list(self._paren.finditer(text))
        return parens[-1].group(1) if parens else None

    def __call__(self, response: str, gold: Gold) -> VerifyResult:
        gold_text = gold_answer(gold)
        g = self.letter(gold_text) if len(strip_wrappers(gold_text)) <= 4 else None
        if g is None:
            return VerifyResult(
                Verdict.UNPARSEABLE,
                f"gold {short(gold_text)!r} is not one of the letters {self.choices}",
                None,
                gold_text,
            )
        p = self.letter(response)
        if p is None:
            return VerifyResult(
                Verdict.UNPARSEABLE, f"no choice among {self.choices} found in the response", None, g
            )
        if p == g:
            return VerifyResult(Verdict.CORRECT, f"chose {p}", p, g)
        return VerifyResult(Verdict.INCORRECT, f"chose {p}, gold is {g}", p, g)
