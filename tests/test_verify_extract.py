"""Finding the answer: several boxes, "the final answer is ...", Unicode math, unclosed boxes, gold forms."""

from __future__ import annotations

import pytest

from retrosearch.verify import MathVerifier, Verdict, extract_answer, gold_answer
from retrosearch.verify.extract import final_box, marked_answer, unclosed_box
from retrosearch.verify.normalize import normalize_unicode


@pytest.fixture(scope="module")
def math_verifier() -> MathVerifier:
    return MathVerifier()


# ------------------------------------------------------------------------------------------ several boxes


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        ("The roots are $\\boxed{1}$ and $\\boxed{-2}$.", "-2, 1"),  # roots, one box each
        ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1, 2, 3"),  # one box per list element
        ("$x = \\boxed{3}$ or $x = \\boxed{-3}$", "\\pm 3"),
        ("(a) \\boxed{4} (b) \\boxed{9}", "4, 9"),
        ("\\boxed{-2, 1}", "$x = \\boxed{1}$ or $x = \\boxed{-2}$"),  # a gold with several boxes
        ("\\boxed{-2, 1}", ["$\\boxed{1}$", "$\\boxed{-2}$"]),  # one boxed gold per list element
    ],
)
def test_several_boxes_are_one_multi_part_answer(math_verifier: MathVerifier, response: str, gold) -> None:
    r = math_verifier(response, gold)
    assert r.correct, r.reason


def test_a_box_after_prose_replaces_the_earlier_one(math_verifier: MathVerifier) -> None:
    # A guess, then a correction: the last box wins (math-verify alone would grade {3, 7/2}).
    assert math_verifier("First \\boxed{3}. Wait, no: \\boxed{\\frac{7}{2}}", "3.5").correct
    assert not math_verifier("First \\boxed{3.5}. Hmm, recheck... \\boxed{3}", "3.5").correct
    assert final_box("So \\boxed{12}. Let me double-check the count: it is \\boxed{13}.") == "13"
    # a multi-part answer that was then corrected: the last run of boxes
    assert (
        final_box("\\boxed{1} and \\boxed{2}. Wait, the second root is wrong: \\boxed{1} and \\boxed{3}")
        == "1, 3"
    )


def test_final_box_joins_and_dedupes_a_run() -> None:
    assert final_box("\\boxed{5} \\boxed{5}") == "5"
    assert final_box("$\\boxed{1}$, $\\boxed{2}$ and $\\boxed{3}$") == "1, 2, 3"
    assert final_box("\\boxed{1} \\quad \\boxed{2}") == "1, 2"
    assert final_box("\\boxed{\\boxed{5}}") == "\\boxed{5}"  # the outer box; math-verify reads the inner
    assert final_box("no box here") is None and final_box(None) is None


def test_gold_answer_with_several_boxes() -> None:
    assert gold_answer("so $x=\\boxed{1}$ or $x=\\boxed{-2}$") == "1, -2"  # a reference never corrects itself
    assert gold_answer("(a) is \\boxed{3}; for (b) we find \\boxed{5}") == "3, 5"
    assert gold_answer(["\\boxed{1}", "\\boxed{-2}"]) == "1, -2"


# ------------------------------------------------------------------------------- "the final answer is ..."


def test_final_answer_takes_the_expression_not_the_line(math_verifier: MathVerifier) -> None:
    line = "The final answer is 34 and the reason " + "we keep adding more words to this line " * 80
    assert len(line) > 3000
    assert extract_answer(line) == "34"
    r = math_verifier(line, "34")
    assert r.correct and r.prediction == "34"
    assert extract_answer("Final answer: The largest n is 34.") == "34"
    assert math_verifier("Final answer: The largest n is 34.", "34").correct


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("The answer is $\\frac{3}{4}$, which we checked twice.", "\\frac{3}{4}"),
        ("The final answer is 12 because each of the four sides gives 3.", "12"),
        ("Answer: x = 3. Then we are done.", "x = 3"),
        ("The answer is 3.5. Next we verify it.", "3.5"),
        ("The answer is: the number of ways is $720$.", "720"),
        ("**Final Answer:** 7", "7"),
        ("#### 1,234", "1,234"),
        ("Answer: 3\nThe final answer is 4.", "4"),
        ("The answer is 1, 2 and 3", "1, 2 and 3"),
    ],
)
def test_marked_answer(text: str, answer: str) -> None:
    assert marked_answer(text) == answer


def test_marked_answer_ignores_other_words() -> None:
    assert marked_answer("She answered: no idea") is None and marked_answer("The answer isn't 3") is None
    assert marked_answer("The answer is \\boxed{4") is None  # never a broken box as an answer


# ------------------------------------------------------------------------------------------------ Unicode


@pytest.mark.parametrize(
    ("text", "latex"),
    [
        ("½", "\\frac{1}{2}"),
        ("1½", "1\\frac{1}{2}"),
        ("√2", "\\sqrt{2}"),
        ("3√(x+1)", "3\\sqrt{x+1}"),
        ("∛8", "\\sqrt[3]{8}"),
        ("4\u200b2", "42"),
        ("x²+1", "x^{2}+1"),
        ("−5", "-5"),
        ("2π", "2\\pi "),
        ("90°", "90^{\\circ}"),
        ("１２", "12"),
        ("a\u00a0b", "a b"),
    ],
)
def test_normalize_unicode(text: str, latex: str) -> None:
    assert normalize_unicode(text) == latex


@pytest.mark.parametrize(
    ("response", "gold"),
    [("\\boxed{½}", "0.5"), ("\\boxed{√2}", "\\sqrt{2}"), ("\\boxed{4\u200b2}", "42"), ("\\boxed{−3}", "-3")],
)
def test_unicode_answers_grade(math_verifier: MathVerifier, response: str, gold: str) -> None:
    r = math_verifier(response, gold)
    assert r.correct, r.reason


def test_unicode_gold(math_verifier: MathVerifier) -> None:
    assert gold_answer("½") == "\\frac{1}{2}" and math_verifier("\\boxed{0.5}", "½").correct


# ------------------------------------------------------------------------------------------ unclosed boxes


def test_an_unclosed_box_is_unparseable(math_verifier: MathVerifier) -> None:
    r = math_verifier("so the answer is \\boxed{42", "42")
    assert r.verdict is Verdict.UNPARSEABLE and "never closed" in r.reason and r.prediction is None
    # a cut-off box after a complete one: the final answer is cut, still unparseable
    assert math_verifier("\\boxed{41}. Wait: \\boxed{4", "41").verdict is Verdict.UNPARSEABLE
    # a complete box after an unclosed one is the answer
    assert math_verifier("\\boxed{4 oops. \\boxed{42}", "42").correct
    assert (
        unclosed_box("\\boxed{1} then \\boxed{2") and not unclosed_box("\\boxed{1}") and not unclosed_box("")
    )
