"""The exact cheap paths: a verdict only where math-verify's is certain, and the same verdict as math-verify."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrosearch.verify import MathVerifier, Verdict, gold_answer
from retrosearch.verify.fast import fast_verdict
from retrosearch.verify.math import grade
from retrosearch.verify.normalize import math_latex


def _math_verify_says(pred: str, gold: str) -> bool:
    """math-verify's own verdict on two answers (as `$...$` strings), without any cheap path."""
    verdict, reason, _ = grade(f"${pred}$", None, f"${gold}$")
    assert verdict != Verdict.UNPARSEABLE.value, reason
    return verdict == Verdict.CORRECT.value


def _fast(pred: str, gold: str) -> bool | None:
    decided = fast_verdict(f"${pred}$", f"${gold}$")
    return None if decided is None else decided[0]


# (gold, prediction, math-verify's verdict): each decided without sympy, each checked against math-verify.
DECIDED = [
    ("-3.5", "-3.50", True),
    ("\\frac{1}{2}", "0.5", True),
    ("1.25", "\\frac{5}{4}", True),
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", True),
    ("1\\frac{1}{2}", "\\frac{3}{2}", True),  # a mixed number
    ("2\\frac{1}{2}\\pi", "\\pi", True),  # ... but not before pi: latex2sympy multiplies
    ("12\\pi", "12 \\pi", True),
    ("\\frac{\\pi}{2}", "\\frac{1}{2}\\pi", True),
    ("90^\\circ", "90", True),  # degrees are not converted
    ("52_8", "52", True),  # a base subscript is dropped
    ("1,000", "1000", True),
    ("10,\\!080", "10080", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("2k+2", "2k+3", False),
    ("3R^2", "3r^2", True),  # capitals are read lower-case
    ("6 - 5i", "6-5i", True),  # i is a plain symbol unless the answer looks complex
    ("1, 2", "(2,1)", True),  # a set against a tuple: both sorted
    ("(2,1)", "1, 2", False),  # a tuple against a set: the set as written
    ("\\{1,2\\}", "(1,2)", True),
    ("(1,2)", "\\{2,1\\}", False),
    ("5", "5, 5", True),
    ("5", "\\{5\\}", True),
    ("[-\\infty, 0]", "(-\\infty, 0]", True),  # infinite ends are open
    ("(3,4]", "(3,4)", False),
    ("(0,36)", "(0,9)\\cup[9,36)", True),
    ("(0,9)\\cup(9,36)", "(0,36)", False),
    ("(0,9)\\cup(9,36)", "12", False),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", True),
    ("x=5", "5", True),
    ("5", "x=5", True),
    ("x=5", "y=5", False),
    ("y = 2x + 3", "2x+3", True),
    ("x \\in [-2,7]", "[-2,7]", True),
    ("\\text{Evelyn}", "\\text{evelyn}", True),
    ("\\text{(C)}", "c", True),
    ("\\text{east}", "9", False),
    ("\\begin{pmatrix} 1/2 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ 2 \\end{pmatrix}", True),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", False),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "5", False),
    ("1.5", "1.500003", False),  # Floats are rounded to 6 decimals, and these differ there
    ("\\pi", "3.14159", False),
    ("\\sqrt{2}", "1.414", False),
    (".35625", ".35626", False),
    ("12345678901234567", "12345678901234568", False),  # Integers compare exactly
]

# Left to math-verify: an answer within rounding of the gold, symbols against symbol products, and so on.
UNDECIDED = [
    ("1.25", "1.250000001", True),
    ("\\frac{1}{3}", "0.333333", True),
    ("\\pi", "3.141593", True),
    ("1.5", "1.5000005", True),
    ("1.5", "1.500001", False),  # differ in the 6th decimal: too close for the cheap path
    ("\\text{xy}", "x\\cdot y", True),
    ("x", "x+0", False),
    ("\\frac{1}{0}", "\\frac{2}{0}", False),
]


@pytest.mark.parametrize(("gold", "pred", "expected"), DECIDED)
def test_decided_without_sympy_and_as_math_verify_decides(gold: str, pred: str, expected: bool) -> None:
    assert _fast(pred, gold) is expected
    assert _math_verify_says(pred, gold) is expected


@pytest.mark.parametrize(("gold", "pred", "expected"), UNDECIDED)
def test_left_to_math_verify(gold: str, pred: str, expected: bool) -> None:
    assert _fast(pred, gold) is None
    assert MathVerifier()(f"\\boxed{{{pred}}}", gold).correct is expected


def test_a_near_decimal_is_graded_as_math_verify_grades_it() -> None:
    # math-verify rounds both to 6 decimals: 1.250000001 equals 1.25. The plain-number path once said no.
    r = MathVerifier()("\\boxed{1.250000001}", "1.25")
    assert r.correct and r.reason.startswith("math-verify")


def test_common_forms_never_reach_sympy(monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify

    def boom(*a, **k):
        raise AssertionError("math-verify should not be called for these answers")

    monkeypatch.setattr(math_verify, "parse", boom)
    monkeypatch.setattr(math_verify, "verify", boom)
    v = MathVerifier()
    for pred, gold, correct in [
        ("27", "27.0", True),
        ("-3.50", "-3.5", True),
        ("28", "27", False),
        ("\\dfrac{3}{4}", "0.75", True),
        ("\\frac{3}{4}", "\\frac{4}{5}", False),
        ("3\\sqrt{2}", "\\sqrt{18}", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
        ("[1, 2)", "(1, 2)", False),
        ("\\{1, 2\\}", "2, 1", True),
        ("\\text{Evelyn}", "\\text{Evelyn}", True),
        ("30^\\circ", "30", True),
        ("\\pm 2", "-2, 2", True),
        ("x^2 - 1", "(x-1)(x+1)", True),
        ("\\$18.90", "18.9", True),
    ]:
        r = v(f"so \\boxed{{{pred}}}", gold)
        assert r.correct is correct, (pred, gold, r.reason)
        assert not r.reason.startswith("math-verify"), r.reason


# ------------------------------------------------------------------------------------------ random forms

_SCALARS = st.sampled_from(
    ["0", "1", "2", "3", "-2", "12", "0.5", "1.5", "2.50", ".75", "1.2500001", "\\frac{1}{2}", "\\frac{3}{2}",
     "\\frac{6}{4}", "-\\frac{1}{2}", "1\\frac{1}{2}", "3/2", "\\sqrt{2}", "\\sqrt{8}", "2\\sqrt{2}", "\\pi",
     "2\\pi", "\\frac{\\pi}{2}", "x", "2x", "x^2", "x+1", "1+x", "k", "y", "\\text{A}", "a", "\\text{east}+1",
     "\\infty", "-\\infty", "2(3)", "-1\\frac{1}{2}", "0.333333", "\\frac{1}{3}", "3R^2", "6-5i"]
)  # fmt: skip


@st.composite
def _answers(draw: st.DrawFn) -> str:
    a, b, c = draw(_SCALARS), draw(_SCALARS), draw(_SCALARS)
    shape = draw(st.integers(0, 14))
    return [
        a,
        f"{a}+{b}",
        f"{a}-{b}",
        f"{a}\\cdot {b}",
        f"{a}, {b}",
        f"\\{{{a}, {b}\\}}",
        f"({a}, {b}, {c})",
        f"({a}, {b}]",
        f"[{a}, {b}]",
        f"{a} \\pm {b}",
        f"x = {a}",
        f"({a}, {b}) \\cup ({b}, {c})",
        f"y = {a}",
        f"x \\in [{a}, {b}]",
        f"\\begin{{pmatrix}} {a} \\\\ {b} \\end{{pmatrix}}",
    ][shape]


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(gold=_answers(), pred=_answers(), rewrite=st.booleans())
def test_random_forms_agree_with_math_verify(gold: str, pred: str, rewrite: bool) -> None:
    if rewrite:  # the gold written another way: mostly equal answers
        pred = gold.replace(" ", "").replace("\\frac", "\\dfrac")
    decided = _fast(pred, gold)
    if decided is not None:
        verdict = grade(f"${pred}$", None, f"${gold}$")[0]
        assert decided is (verdict == Verdict.CORRECT.value), (gold, pred)


# -------------------------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_real_golds_agree_with_math_verify(shared_data: Path) -> None:
    rng = random.Random(0)
    golds = []
    for name in ("aime24", "aime25", "amc23", "gaokao2023en", "gsm8k", "math500", "olympiadbench"):
        with open(shared_data / "math" / f"{name}.jsonl") as f:
            rows = [json.loads(line) for line in f]
        for row in rng.sample(rows, 6):
            text = gold_answer(row["final_answer"] if name == "olympiadbench" else row["answer"])
            if math_latex(text):
                golds.append(math_latex(text))
    decided = 0
    for gold in golds:
        other = rng.choice(golds)
        rewritten = gold.replace("\\frac", "\\dfrac").replace(" ", "")
        bumped = re.sub(r"\d+", lambda m: str(int(m.group()) + 1), gold, count=1)
        for pred in (gold, rewritten, other, bumped):
            fast = fast_verdict(pred, gold)
            if fast is not None:
                decided += 1
                assert fast[0] is (grade(pred, None, gold)[0] == Verdict.CORRECT.value), (gold, pred)
    assert decided > 0.8 * 4 * len(golds)  # the cheap paths cover most real answers
