"""Answer grading: math-verify equivalence with deadline and cache, exact / choice / callable / QA verifiers."""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from retrosearch.verify import (
    VERIFIERS,
    CallableVerifier,
    CoverEMVerifier,
    ExactMatchVerifier,
    F1Verifier,
    MathVerifier,
    MultipleChoiceVerifier,
    Verdict,
    Verifier,
    VerifyResult,
    cover_em,
    exact_match,
    extract_answer,
    extract_qa_answer,
    f1_score,
    get_verifier,
    gold_answer,
    normalize_answer,
    parse_gold_list,
)

MATH_SETS = ("aime24", "aime25", "amc23", "gaokao2023en", "gsm8k", "math500", "olympiadbench")
# An adversarial answer: math-verify parses it at once, then comparing it with 3 runs (effectively) forever.
PATHOLOGICAL = "\\boxed{2^{2^{40}}}"


@pytest.fixture(scope="module")
def math_verifier() -> MathVerifier:
    return MathVerifier()


# ------------------------------------------------------------------------------------------ real data


def _recover_gold(row: dict) -> str:
    # Two gaokao2023en rows have an empty `answer`; their question ends with "answers: $\frac{3}{10}$" /
    # "Answer: A", which is the gold.
    m = re.search(r"answers?\s*:\s*(.+?)\s*$", row["question"], re.IGNORECASE)
    assert m, f"row with an empty gold and no 'Answer:' in its question: {row['question'][-80:]!r}"
    return m.group(1)


def _math_rows(shared_data: Path) -> list[tuple[str, int, object]]:
    """`(set, row index, raw gold)` of the seven math sets, with the README's gold fields."""
    out = []
    for name in MATH_SETS:
        with open(shared_data / "math" / f"{name}.jsonl") as f:
            for i, line in enumerate(f):
                row = json.loads(line)
                gold = row["final_answer"] if name == "olympiadbench" else row["answer"]
                if gold == "":
                    gold = _recover_gold(row)
                out.append((name, i, gold))
    return out


def _special(gold: object) -> bool:
    """Golds that need more than wrapping in `$...$`: several `$...$` answers, a stray `$`, a currency `\\$`
    (28 rows: 20 olympiadbench, 5 gaokao2023en, 3 math500)."""
    text = gold_answer(gold)
    return text.count("$") > 2 or "\\$" in text


def _sample(rows: list, per_set: int, special: bool = True) -> list:
    rng = random.Random(0)
    picked = [r for r in rows if _special(r[2])] if special else []
    for name in MATH_SETS:
        picked += rng.sample([r for r in rows if r[0] == name], per_set)
    return picked


def _self_check(verifier: MathVerifier, rows: list) -> list:
    return [
        (n, i, g, r.reason)
        for n, i, g in rows
        if not (r := verifier(f"\\boxed{{{gold_answer(g)}}}", g)).correct
    ]


def _other_gold_check(verifier: MathVerifier, rows: list, all_rows: list) -> list:
    """Grade each gold against the next different gold of its set; returns the rows not judged INCORRECT."""
    by_set: dict[str, list] = {}
    for n, _, g in all_rows:
        by_set.setdefault(n, []).append(gold_answer(g))
    bad = []
    for n, i, g in rows:
        golds, mine = by_set[n], gold_answer(g)
        j = (i + 1) % len(golds)
        # math-verify is lenient by design with "x=5" for 5 and {-2} for -2: skip equations and sets as
        # the "clearly different" answer.
        while golds[j] == mine or "=" in golds[j] or "\\{" in golds[j]:
            j = (j + 1) % len(golds)
        r = verifier(f"The answer is \\boxed{{{golds[j]}}}.", g)
        if r.verdict is not Verdict.INCORRECT:
            bad.append((n, i, mine, golds[j], r.verdict, r.reason))
    return bad


@pytest.mark.shared_data
def test_sampled_golds_grade_against_themselves(shared_data: Path, math_verifier: MathVerifier) -> None:
    rows = _math_rows(shared_data)
    sample = _sample(rows, per_set=5)
    assert len(rows) == 2979 and len(sample) == 28 + 7 * 5
    assert _self_check(math_verifier, sample) == []


@pytest.mark.shared_data
def test_sampled_golds_reject_a_different_answer(shared_data: Path, math_verifier: MathVerifier) -> None:
    rows = _math_rows(shared_data)
    assert _other_gold_check(math_verifier, _sample(rows, per_set=4, special=False), rows) == []


@pytest.mark.slow
@pytest.mark.shared_data
def test_every_gold_grades_against_itself(shared_data: Path) -> None:
    rows = _math_rows(shared_data)
    assert _self_check(MathVerifier(), rows) == []


@pytest.mark.slow
@pytest.mark.shared_data
def test_every_gold_rejects_a_different_answer(shared_data: Path) -> None:
    rows = _math_rows(shared_data)
    assert _other_gold_check(MathVerifier(), rows, rows) == []


@pytest.mark.shared_data
def test_gsm8k_hash_golds(shared_data: Path, math_verifier: MathVerifier) -> None:
    rows = [r for r in _math_rows(shared_data) if r[0] == "gsm8k"][:60]
    for _, i, gold in rows:
        assert isinstance(gold, str) and "####" in gold
        n = gold_answer(gold)
        assert re.fullmatch(r"-?[\d,]+(\.\d+)?", n), (i, n)
        assert math_verifier(f"So the total is {n}.\n#### {n}", gold).correct, (i, n)
        wrong = math_verifier(f"\\boxed{{{float(n.replace(',', '')) + 1:g}}}", gold)
        assert wrong.verdict is Verdict.INCORRECT, (i, n, wrong.reason)


@pytest.mark.shared_data
def test_amc_float_golds_equal_integers(shared_data: Path, math_verifier: MathVerifier) -> None:
    rows = [r for r in _math_rows(shared_data) if r[0] == "amc23"]
    assert len(rows) == 40 and all(isinstance(g, float) for _, _, g in rows)
    assert rows[0][2] == 27.0
    for _, i, gold in rows:
        n = int(gold)
        assert math_verifier(f"\\boxed{{{n}}}", gold).correct, i  # the float as stored in the JSON
        assert math_verifier(f"\\boxed{{{n}}}", f"{gold}").correct, i  # the string "27.0"
        assert not math_verifier(f"\\boxed{{{n + 1}}}", gold).correct, i
    assert math_verifier("\\boxed{27}", "27.0").correct and math_verifier("\\boxed{27.0}", "27").correct


@pytest.mark.shared_data
def test_empty_gaokao_golds(shared_data: Path, math_verifier: MathVerifier) -> None:
    with open(shared_data / "math" / "gaokao2023en.jsonl") as f:
        rows = [json.loads(line) for line in f]
    empty = [i for i, r in enumerate(rows) if r["answer"] == ""]
    assert empty == [167, 192]
    r = math_verifier("\\boxed{3/10}", "")
    assert r.verdict is Verdict.UNPARSEABLE and r.reason == "gold answer is empty"
    assert _recover_gold(rows[167]) == "$\\frac{3}{10}$" and math_verifier(
        "\\boxed{0.3}", _recover_gold(rows[167])
    )
    assert (
        _recover_gold(rows[192]) == "A"
        and math_verifier("\\boxed{A}", "A")
        and not math_verifier("\\boxed{B}", "A")
    )


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        ("\\boxed{32348}", "\\$32,\\!348"),  # math500: currency sign, thin space
        ("\\boxed{18.9}", "\\$18.90"),
        ("\\boxed{20}", "20 $cm^{2}$"),  # gaokao2023en: unit outside math mode
        ("\\boxed{864}", "864 \\mbox{ inches}^2"),
        ("\\boxed{145}", "$145$solution:"),  # gaokao2023en: stray text after the answer
        ("\\boxed{-2, 2, \\frac12, -\\frac12}", "$2$ or $-2$ or $\\frac{1}{2}$ or $-\\frac{1}{2}$"),
        ("\\boxed{221, 8}", ["$221,$8$"]),  # olympiadbench: list with a stray $
        ("\\boxed{f(x)=x+1, f(x)=-1}", ["$f(x)=-1$,$f(x)=x+1$"]),
    ],
)
def test_irregular_golds(math_verifier: MathVerifier, response: str, gold: object) -> None:
    r = math_verifier(response, gold)
    assert r.correct, r.reason


# ------------------------------------------------------------------------------------------- math unit


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\frac{1}{2}", "0.5"),
        ("0.5", "\\frac{1}{2}"),
        ("1/2", "\\frac12"),
        ("\\dfrac{1}{2}", "0.5"),
        ("\\tfrac12", "1/2"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
        ("\\{2, 1\\}", "\\{1,2\\}"),
        ("(1, 2]", "(1,2]"),
        ("[-1, \\infty)", "[-1,\\infty)"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"),
        ("x = 5", "5"),
        ("3\\pi", "\\pi \\cdot 3"),
        ("27", "27.0"),
        ("1,000", "1000"),
        ("50\\%", "50"),
        ("\\text{Evelyn}", "\\text{Evelyn}"),
        ("x^2 + 2x + 1", "(x+1)^2"),
    ],
)
def test_equivalent_forms(math_verifier: MathVerifier, pred: str, gold: str) -> None:
    r = math_verifier(f"We find \\boxed{{{pred}}}.", gold)
    assert r.verdict is Verdict.CORRECT, r.reason
    assert r.prediction == pred and r.gold == gold


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("0.51", "\\frac{1}{2}"),
        ("(1, 2)", "(1,2]"),
        ("\\{1, 3\\}", "\\{1,2\\}"),
        ("x - 1", "x + 1"),
        ("2", "3"),
        ("-27", "27"),
        ("\\text{Alice}", "\\text{Evelyn}"),
    ],
)
def test_wrong_answers(math_verifier: MathVerifier, pred: str, gold: str) -> None:
    r = math_verifier(f"\\boxed{{{pred}}}", gold)
    assert r.verdict is Verdict.INCORRECT, r.reason
    assert "differs" in r.reason and not r and r.reward == 0.0


def test_answer_extraction_order(math_verifier: MathVerifier) -> None:
    # The last box wins, even in a trace that boxed a wrong answer first.
    assert math_verifier("First \\boxed{3}. Wait, no: \\boxed{\\frac{7}{2}}", "3.5").correct
    assert not math_verifier("First \\boxed{3.5}. Wait, no: \\boxed{3}", "3.5").correct
    assert math_verifier("Adding up, the answer is 42.", "42").prediction == "42"
    assert math_verifier("blah\n#### 1,234", "1234").correct
    # No marker at all: math-verify's own extraction on the whole response.
    r = math_verifier("So we get $x = \\frac{3}{4}$", "0.75")
    assert r.correct and r.prediction is not None


@pytest.mark.parametrize(
    ("response", "gold", "reason"),
    [
        ("I am not sure.", "3", "no answer found in the response"),
        ("\\boxed{}", "3", "the extracted answer is empty"),
        ("\\boxed{3}", "", "gold answer is empty"),
        ("\\boxed{3}", "####   ", "gold answer is empty"),
    ],
)
def test_unparseable(math_verifier: MathVerifier, response: str, gold: str, reason: str) -> None:
    r = math_verifier(response, gold)
    assert r.verdict is Verdict.UNPARSEABLE and r.reason == reason
    assert not r.correct and r.reward == 0.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        MathVerifier(timeout_s=0)
    with pytest.raises(ValueError, match="cache_size"):
        MathVerifier(cache_size=-1)
    with pytest.raises(ValueError, match="mode"):
        MathVerifier(mode="thread")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gold answer must be"):
        MathVerifier()("\\boxed{1}", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="response must be a str"):
        MathVerifier()(None, "1")  # type: ignore[arg-type]


def test_gold_answer_normalization() -> None:
    assert gold_answer("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18") == "18"
    assert gold_answer(27.0) == "27" and gold_answer(2.5) == "2.5" and gold_answer(7) == "7"
    assert gold_answer(["$\\frac{1}{2 n+2}$"]) == "$\\frac{1}{2 n+2}$"
    assert gold_answer("so it is \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"


def test_extract_answer() -> None:
    assert extract_answer("x \\boxed{\\frac{1}{\\sqrt{2}}} y") == "\\frac{1}{\\sqrt{2}}"
    assert extract_answer("The answer is $12$.") == "12"
    assert extract_answer("**Final Answer:** 7") == "7"
    assert extract_answer("work\n#### 72") == "72"
    assert extract_answer("Answer: 3\nThe final answer is 4.") == "4"
    assert extract_answer("nothing here") is None and extract_answer("") is None
    assert extract_answer("She answered: no idea") is None and extract_answer("The answer isn't 3") is None


# -------------------------------------------------------------------------------------- timeout, cache


def test_timeout_in_main_thread_real_input() -> None:
    v = MathVerifier(timeout_s=0.5)
    v("\\boxed{1}", "1")  # the one-time warm-up, outside the measured call
    start = time.monotonic()
    r = v(PATHOLOGICAL, "3")
    elapsed = time.monotonic() - start
    assert r.verdict is Verdict.UNPARSEABLE and r.reason.startswith("timed out after 0.5 s")
    assert r.prediction == "2^{2^{40}}" and elapsed < 20.0  # unbounded without a deadline
    assert v.cache_info()["timeouts"] == 1
    assert v("\\boxed{0.5}", "1/2").correct  # the process is still usable afterwards


def test_timeout_in_main_thread_slow_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify

    v = MathVerifier(timeout_s=0.3, fast=False)  # the cheap paths would answer without math-verify
    v("\\boxed{\\frac{2}{2}}", "1")  # warm-up
    monkeypatch.setattr(math_verify, "verify", lambda *a, **k: time.sleep(30))
    start = time.monotonic()
    r = v("\\boxed{\\frac{4}{2}}", "2")
    assert r.verdict is Verdict.UNPARSEABLE and "timed out" in r.reason
    # Far below the 30 s the check would take without a deadline, with room for a loaded machine.
    assert time.monotonic() - start < 20.0


def test_outer_alarm_is_restored() -> None:
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        v = MathVerifier(timeout_s=2.0)
        assert v("\\boxed{4}", "2+2").correct
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90.0 < left < 100.0 and not fired
        assert signal.getsignal(signal.SIGALRM) is not None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_deadline_inside_an_import_switches_to_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from retrosearch.verify import deadline

    monkeypatch.setitem(deadline.SIGNAL_STATE, "broken", False)  # restored after the test
    (tmp_path / "retrosearch_slow_import_probe.py").write_text("import time\ntime.sleep(30)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    finished, _ = deadline.run_with_alarm(
        lambda: importlib.import_module("retrosearch_slow_import_probe"), 0.2
    )
    assert not finished and deadline.SIGNAL_STATE["broken"]
    assert not MathVerifier()._use_signal()
    with pytest.raises(RuntimeError, match="cannot use SIGALRM"):
        MathVerifier(mode="signal")._use_signal()


def test_worker_threads_grade_and_time_out() -> None:
    v = MathVerifier(timeout_s=1.0, fast=False)  # every check goes to the worker process
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert threading.current_thread() is threading.main_thread()
        assert pool.submit(v, "\\boxed{\\dfrac{1}{2}}", "0.5").result().correct  # starts the worker process
        assert pool.submit(v, "\\boxed{3}", "4").result().verdict is Verdict.INCORRECT
        start = time.monotonic()
        r = pool.submit(v, PATHOLOGICAL, "3").result()
        elapsed = time.monotonic() - start
        assert r.verdict is Verdict.UNPARSEABLE and r.reason.startswith("timed out")
        assert elapsed < 20.0  # the deadline plus killing the worker (a loaded machine is slow)
    with pytest.raises(RuntimeError, match="main thread"), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(MathVerifier(mode="signal", fast=False), "\\boxed{\\frac{2}{2}}", "1").result()


@pytest.mark.slow
def test_process_mode_from_main_thread() -> None:
    v = MathVerifier(timeout_s=1.0, mode="process", fast=False)
    assert v("\\boxed{(1,2]}", "(1,2]").correct  # starts the worker process
    start = time.monotonic()
    assert v("\\boxed{(10^{10})!}", "3").reason.startswith("timed out")
    assert time.monotonic() - start < 4.0
    assert v("\\boxed{0.25}", "1/4").correct  # a fresh worker took over from the killed one
    with ThreadPoolExecutor(max_workers=2) as pool:  # concurrent calls each check out their own worker
        responses = ["\\boxed{\\frac{4}{2}}", "\\boxed{\\frac{6}{2}}", "\\boxed{\\frac{8}{2}}"]
        results = list(pool.map(v, responses, ["2", "3", "5"]))
    assert [r.verdict for r in results] == [Verdict.CORRECT, Verdict.CORRECT, Verdict.INCORRECT]


def test_cache_hit_does_not_parse_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify

    v = MathVerifier(fast=False)  # the cheap paths would answer these without math-verify or the cache
    v("\\boxed{\\frac{2}{2}}", "1")  # warm-up outside the count
    calls: list[str] = []
    real_parse = math_verify.parse

    def counting_parse(text: str, *args: object, **kwargs: object) -> list:
        calls.append(text)
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(math_verify, "parse", counting_parse)
    first = v("so \\boxed{\\frac{144}{2}}", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72")
    assert first.correct and calls == ["$72$", "$\\frac{144}{2}$"]  # the gold, then the prediction
    again = v(
        "another trace, same answer: \\boxed{\\frac{144}{2}}", "72"
    )  # same (prediction, normalized gold)
    assert again == first and len(calls) == 2
    assert v.cache_info() == {"hits": 1, "misses": 2, "timeouts": 0, "size": 2}  # with the warm-up call
    v("\\boxed{\\frac{146}{2}}", "72")
    assert len(calls) == 4 and v.cache_info()["misses"] == 3


def test_cache_is_lru_and_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = "\\boxed{\\frac{2}{2}}", "\\boxed{\\frac{4}{2}}"
    v = MathVerifier(cache_size=1, fast=False)  # every check reaches the cache
    v(one, "1")
    v(two, "2")  # evicts (one, "1")
    v(one, "1")
    assert v.cache_info() == {"hits": 0, "misses": 3, "timeouts": 0, "size": 1}
    off = MathVerifier(cache_size=0, fast=False)
    off(one, "1")
    off(one, "1")
    assert off.cache_info() == {"hits": 0, "misses": 2, "timeouts": 0, "size": 0}


# ------------------------------------------------------------------------------------- result, other kinds


def test_verify_result() -> None:
    ok = VerifyResult(Verdict.CORRECT, "equal", "1", "1")
    bad = VerifyResult(Verdict.INCORRECT, "differs", "2", "1")
    none = VerifyResult(Verdict.UNPARSEABLE, "nothing", None, "1")
    assert ok.correct and bool(ok) and ok.reward == 1.0
    assert not bad and bad.reward == 0.0 and not none.correct
    assert Verdict("correct") is Verdict.CORRECT and Verdict.CORRECT == "correct"
    with pytest.raises(AttributeError):
        ok.verdict = Verdict.INCORRECT  # type: ignore[misc]


@pytest.mark.parametrize(
    ("response", "gold", "verdict"),
    [
        (" Paris. ", "paris", Verdict.CORRECT),
        ("The answer is $42$.", "42", Verdict.CORRECT),
        ("\\boxed{New   York}", "new york", Verdict.CORRECT),
        ("blah\n#### 18", "work ...\n#### 18", Verdict.CORRECT),
        ("London", "Paris", Verdict.INCORRECT),
        ("1/2", "0.5", Verdict.INCORRECT),  # exact match knows no math
        ("   ", "Paris", Verdict.UNPARSEABLE),
    ],
)
def test_exact_match_verifier(response: str, gold: str, verdict: Verdict) -> None:
    assert ExactMatchVerifier()(response, gold).verdict is verdict


def test_exact_match_without_normalization() -> None:
    v = ExactMatchVerifier(normalize=False)
    assert (
        v("Paris", "Paris").correct and not v("paris", "Paris").correct and not v("Paris.", "Paris").correct
    )


@pytest.mark.parametrize(
    "response",
    [
        "\\boxed{B}",
        "\\boxed{\\text{(B)}}",
        "\\boxed{B) 12}",
        "So the answer is (B).",
        "The correct answer is B",
        "Answer: B",
        "**Answer:** (B) 42",
        "The final answer is $\\boxed{\\textbf{(B)}}$",
        "(B)",
        "B",
        "I compared (A) and (C); the result matches (B)",
    ],
)
def test_multiple_choice_extraction(response: str) -> None:
    v = MultipleChoiceVerifier()
    assert v.letter(response) == "B"
    r = v(response, "B")
    assert r.correct and r.prediction == "B"
    assert v(response, "(C)").verdict is Verdict.INCORRECT


def test_multiple_choice_edge_cases() -> None:
    v = MultipleChoiceVerifier()
    assert v("I think it is a good question", "A").verdict is Verdict.UNPARSEABLE  # "a" is an article
    assert v("\\boxed{F}", "A").verdict is Verdict.UNPARSEABLE  # F is not an option
    assert MultipleChoiceVerifier("ABCDEFG")("\\boxed{F}", "F").correct  # gaokao2023en has F and G golds
    assert v("\\boxed{A}", "42").reason.startswith("gold '42' is not one of the letters ABCDE")
    with pytest.raises(ValueError, match="choices"):
        MultipleChoiceVerifier("A1")


def test_callable_verifier() -> None:
    def same_length(response: str, gold: str) -> bool:
        return len(response) == len(gold)

    v = CallableVerifier(same_length)
    assert v.name == "same_length" and v("abc", "xyz").correct and not v("ab", "xyz").correct
    scored = CallableVerifier(lambda r, g: 0.75, name="score")
    r = scored("x", "y")
    assert r.correct and r.score == 0.75 and r.reward == 1.0 and scored.name == "score"
    assert not CallableVerifier(lambda r, g: 0.25)("x", "y").correct
    fixed = VerifyResult(Verdict.UNPARSEABLE, "custom", None, "y")
    assert CallableVerifier(lambda r, g: fixed)("x", "y") is fixed
    with pytest.raises(TypeError, match="returned NoneType"):
        CallableVerifier(lambda r, g: None)("x", "y")
    with pytest.raises(TypeError, match="needs a callable"):
        CallableVerifier(3)  # type: ignore[arg-type]


def test_get_verifier() -> None:
    assert isinstance(get_verifier("math"), MathVerifier)
    assert isinstance(get_verifier("exact"), ExactMatchVerifier)
    assert isinstance(get_verifier("choice"), MultipleChoiceVerifier)
    assert isinstance(get_verifier("cover_em"), CoverEMVerifier) and isinstance(
        get_verifier("f1"), F1Verifier
    )
    mine = ExactMatchVerifier()
    assert get_verifier(mine) is mine and isinstance(mine, Verifier)
    wrapped = get_verifier(lambda r, g: r == g)
    assert isinstance(wrapped, CallableVerifier) and wrapped("a", "a").correct
    with pytest.raises(ValueError, match="unknown verifier 'sympy'; choose one of: math, exact, choice"):
        get_verifier("sympy")
    with pytest.raises(TypeError, match="got int"):
        get_verifier(3)  # type: ignore[arg-type]
    assert tuple(VERIFIERS) == ("math", "exact", "choice", "cover_em", "f1")  # the names a config accepts
    for name in VERIFIERS:
        v = get_verifier(name)
        assert v.name == name and isinstance(v, Verifier)


# -------------------------------------------------------------------------------------------------- QA


def test_normalize_answer() -> None:
    # R1-Searcher's evaluation: `_` and punctuation (with ‘ ’ ´ `) to spaces, no articles, one space each.
    assert normalize_answer("The  Eiffel_Tower!") == "eiffel tower"
    assert normalize_answer("O\u2019Neil\u00b4s `A` \u2018Team\u2019") == "o neil s team"
    assert normalize_answer('Daniel Patrick "Pat" Moynihan') == "daniel patrick pat moynihan"
    assert normalize_answer("an Apple, a day") == "apple day"
    assert normalize_answer(" True ") == "yes" and normalize_answer("FALSE.") == "no"
    assert normalize_answer("Titan IIIE/Centaur") == "titan iiie centaur"


def test_qa_metrics() -> None:
    assert exact_match("The United States", "united states") and not exact_match("USA", "united states")
    assert cover_em("Emperor Ivan Asen II of Bulgaria", "Ivan Asen II of Bulgaria")
    assert not cover_em("Lockheed", "Lockheed Corporation")
    assert not cover_em("northern", "no")  # whole words only
    assert cover_em("Asen II, Ivan of Bulgaria", "Ivan Asen II")  # every gold token, in any order
    assert not cover_em("Ivan of Bulgaria", "Ivan Asen II")  # ... and all of them
    assert cover_em("it was Paris", ["London", "the city of Paris", "Paris"])  # the best over the aliases
    assert f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f1_score("yes", "no") == 0.0 and f1_score("", "x") == 0.0
    assert f1_score("Paris", ["London", "paris"]) == 1.0
    assert parse_gold_list('["a", "b"]') == ["a", "b"] and parse_gold_list("['x', 'y z']") == ["x", "y z"]
    assert parse_gold_list("[not a list") == ["[not a list"] and parse_gold_list(["a"]) == ["a"]
    assert cover_em("it is b", "['a', 'b']") and exact_match("B", '["a", "b"]')


def test_qa_verifiers() -> None:
    response = "<think>...</think> <answer> Emperor Ivan Asen II of Bulgaria </answer>"
    assert extract_qa_answer(response) == "Emperor Ivan Asen II of Bulgaria"
    r = CoverEMVerifier()(response, "Ivan Asen II of Bulgaria")
    assert r.correct and r.prediction == "Emperor Ivan Asen II of Bulgaria" and r.score == 1.0
    f1 = F1Verifier()(response, '["Ivan Asen II of Bulgaria", "Ivan Asen"]')
    assert f1.correct and f1.score == pytest.approx(10 / 11)  # P = 5/6, R = 1
    assert not F1Verifier(threshold=0.95)(response, "Ivan Asen II of Bulgaria").correct
    assert CoverEMVerifier()("<answer> </answer>", "x").verdict is Verdict.UNPARSEABLE
    assert CoverEMVerifier()("<answer>x</answer>", "[]").verdict is Verdict.UNPARSEABLE
    with pytest.raises(ValueError, match="threshold"):
        F1Verifier(threshold=0)


@pytest.mark.shared_data
def test_qa_verifiers_on_r1searcher_outputs(shared_data: Path) -> None:
    path = shared_data / "qa" / "r1searcher" / "outputs" / "bamboogle_llama.jsonl"
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    # The first rows: pred_ans vs answer, and the published LLM-judge verdict.
    expected = [  # (cover EM, exact match, F1)
        (True, True, 1.0),  # '20 June 1837' vs '20 June 1837'
        (False, False, 2 / 3),  # 'Lockheed' vs 'Lockheed Corporation'
        (False, False, 0.0),  # 'Ryan Tubridy' vs 'Jimmy Fallon'
        (True, True, 1.0),  # 'James Madison' vs 'james madison'
        (True, False, 0.8),  # 'Titan IIIE/Centaur' vs 'Titan IIIE'
    ]
    for row, (cov, em, f1) in zip(rows, expected):
        assert cover_em(row["pred_ans"], row["answer"]) is cov, row["pred_ans"]
        assert exact_match(row["pred_ans"], row["answer"]) is em, row["pred_ans"]
        assert f1_score(row["pred_ans"], row["answer"]) == pytest.approx(f1), row["pred_ans"]
        # the verifiers find the same answer in the whole rollout
        r = CoverEMVerifier()(row["gen_text_store"], row["answer"])
        assert r.prediction == row["pred_ans"].strip() and r.correct is cov


@pytest.mark.shared_data
def test_cover_em_agrees_with_the_llm_judge(shared_data: Path) -> None:
    agree = covered = extracted = total = 0
    for path in sorted((shared_data / "qa" / "r1searcher" / "outputs").glob("*.jsonl")):
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                total += 1
                extracted += extract_qa_answer(row["gen_text_store"]) == row["pred_ans"].strip()
                if cover_em(row["pred_ans"], row["answer"]):
                    covered += 1
                    agree += row["gpt4o_output"] == "True"
    # Measured: 1750 rows, 1099 covered, 1078 of them judged correct by GPT-4o; 1749 answers re-extracted.
    assert total == 1750 and covered > 1000
    assert agree / covered > 0.95 and extracted >= total - 5


def test_plain_numbers_are_graded_without_math_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    # More forms in test_verify_fast.py: fractions, roots, intervals, sets, ...
    import math_verify

    def boom(*a, **k):
        raise AssertionError("math-verify should not be called for plain numbers")

    monkeypatch.setattr(math_verify, "parse", boom)
    v = MathVerifier()
    assert v("so \\boxed{27}", "27.0").correct
    assert v("\\boxed{-3.50}", "-3.5").correct
    r = v("\\boxed{28}", "27")
    assert r.verdict is Verdict.INCORRECT and "differs" in r.reason
