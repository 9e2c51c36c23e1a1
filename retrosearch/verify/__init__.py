"""Answer grading behind one protocol: math (math-verify with deadlines), exact, multiple choice, QA."""

from retrosearch.verify.base import Verdict, Verifier, VerifyResult
from retrosearch.verify.choice import ExactMatchVerifier, MultipleChoiceVerifier
from retrosearch.verify.extract import extract_answer, gold_answer
from retrosearch.verify.math import MathVerifier
from retrosearch.verify.qa import (
    CoverEMVerifier,
    F1Verifier,
    cover_em,
    exact_match,
    extract_qa_answer,
    f1_score,
    normalize_answer,
    parse_gold_list,
)
from retrosearch.verify.registry import VERIFIERS, CallableVerifier, get_verifier

__all__ = [
    "CallableVerifier",
    "CoverEMVerifier",
    "ExactMatchVerifier",
    "F1Verifier",
    "MathVerifier",
    "MultipleChoiceVerifier",
    "Verdict",
    "Verifier",
    "VerifyResult",
    "VERIFIERS",
    "cover_em",
    "exact_match",
    "extract_answer",
    "extract_qa_answer",
    "f1_score",
    "get_verifier",
    "gold_answer",
    "normalize_answer",
    "parse_gold_list",
]
