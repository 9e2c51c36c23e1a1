"""Question-answering metrics: exact match, token F1 and cover-EM with R1-Searcher's normalization."""

from __future__ import annotations

import ast
import json
import re
import string
from typing import Any

from retrosearch.verify.base import Verdict, VerifyResult
from retrosearch.verify.extract import extract_answer

# R1-Searcher's evaluation: ASCII punctuation and the quote marks ‘ ’ ´ ` become spaces.
_PUNCT = re.compile("[" + re.escape(string.punctuation + "\u2018\u2019\u00b4`") + "]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def normalize_answer(s: str) -> str:
    """R1-Searcher's QA normalization: `_` to a space, lowercase, punctuation (and ‘ ’ ´ `) to spaces, drop
    a/an/the, collapse spaces; a whole answer of "true"/"false" (any case) becomes "yes"/"no"."""
    s = str(s).replace("_", " ").lower()
    s = _PUNCT.sub(" ", s)
    s = _ARTICLES.sub(" ", s)
    s = " ".join(s.split())
    return {"true": "yes", "false": "no"}.get(s, s)


def parse_gold_list(gold: Any) -> list[str]:
    """Gold answers as a list of strings: a list, a JSON-ish list string (`'["a", "b"]'`, `"['a']"`) or one
    answer."""
    if isinstance(gold, (list, tuple)):
        return [str(g) for g in gold]
    if gold is None:
        raise TypeError("gold answer must be a str or a list of str, got None")
    text = str(gold).strip()
    if text.startswith("[") and text.endswith("]"):
        for loader in (json.loads, ast.literal_eval):
            try:
                value = loader(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
    return [text]


def exact_match(pred: str, golds: Any) -> bool:
    """`normalize_answer(pred)` equals that of one of the golds."""
    p = normalize_answer(pred)
    return any(p == normalize_answer(g) for g in parse_gold_list(golds))


def cover_em(pred: str, golds: Any) -> bool:
    """R1-Searcher's cover EM: every token of some normalized gold is among the normalized prediction's tokens
    (in any order; the best over the gold aliases)."""
    p_tokens = set(normalize_answer(pred).split())
    for gold in parse_gold_list(golds):
        g_tokens = normalize_answer(gold).split()
        if g_tokens and all(t in p_tokens for t in g_tokens):
            return True
    return False


def f1_score(pred: str, gold: Any) -> float:
    """Token-level F1 of the normalized prediction against the gold (the best over a list of golds)."""
    best = 0.0
    p_tokens = normalize_answer(pred).split()
    for g in parse_gold_list(gold):
        g_tokens = normalize_answer(g).split()
        if not p_tokens or not g_tokens:
            continue
        common = sum(min(p_tokens.count(t), g_tokens.count(t)) for t in set(p_tokens) & set(g_tokens))
        if common:
            precision, recall = common / len(p_tokens), common / len(g_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def extract_qa_answer(response: str | None) -> str | None:
    """The answer of a QA rollout: the last `<answer>...</answer>`, else `extract_answer`, else `None`."""
    if not response:
        return None
    tags = _ANSWER_TAG.findall(response)
    if tags:
        return tags[-1].strip()
    return extract_answer(response)


class _QAVerifier:
    name = "qa"

    def _pred(self, response: str) -> str:
        extracted = extract_qa_answer(response)
        return extracted if extracted is not None else response.strip()

    def _golds(self, gold: Any) -> list[str]:
        return [g for g in parse_gold_list(gold) if g.strip()]


class CoverEMVerifier(_QAVerifier):
    """Correct when some gold answer is covered (`cover_em`) by the extracted answer."""

    name = "cover_em"

    def __call__(self, response: str, gold: Any) -> VerifyResult:
        golds, pred = self._golds(gold), self._pred(response)
        if not golds:
            return VerifyResult(Verdict.UNPARSEABLE, "gold answer is empty", pred, None)
        if not normalize_answer(pred):
            return VerifyResult(Verdict.UNPARSEABLE, "no answer found in the response", None, golds[0])
        ok = cover_em(pred, golds)
        return VerifyResult(
            Verdict.CORRECT if ok else Verdict.INCORRECT,
            f"{'covers' if ok else 'does not cover'} {golds!r}",
            pred,
            golds[0] if len(golds) == 1 else json.dumps(golds),
            score=1.0 if ok else 0.0,
        )


class F1Verifier(_QAVerifier):
    """Token F1 of the extracted answer against the gold(s), in `score`; correct when F1 >= `threshold`.

    Args:
        threshold: F1 at or above which the verdict is correct (the binary `reward`).
    """

    name = "f1"

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        self.threshold = threshold

    def __call__(self, response: str, gold: Any) -> VerifyResult:
        golds, pred = self._golds(gold), self._pred(response)
        if not golds:
            return VerifyResult(Verdict.UNPARSEABLE, "gold answer is empty", pred, None)
        if not normalize_answer(pred):
            return VerifyResult(
                Verdict.UNPARSEABLE, "no answer found in the response", None, golds[0], score=0.0
            )
        f1 = f1_score(pred, golds)
        ok = f1 >= self.threshold
        return VerifyResult(
            Verdict.CORRECT if ok else Verdict.INCORRECT,
            f"F1 {f1:.3f} {'>=' if ok else '<'} {self.threshold:g}",
            pred,
            golds[0] if len(golds) == 1 else json.dumps(golds),
            score=f1,
        )
