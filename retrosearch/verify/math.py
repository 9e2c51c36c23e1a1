"""Math grading: math-verify's equivalence behind a deadline and an LRU cache, with exact cheap paths first."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Any, Literal

from retrosearch.verify import deadline
from retrosearch.verify.base import Gold, Verdict, VerifyResult, short
from retrosearch.verify.extract import extract_answer, gold_answer, unclosed_box
from retrosearch.verify.fast import fast_verdict
from retrosearch.verify.normalize import math_latex, normalize_unicode

_PARSE_EXTRA: dict[str, Any] = {"parsing_timeout": None}
_VERIFY_EXTRA: dict[str, Any] = {"timeout_seconds": None}


class _NoTimeoutWarning(logging.Filter):
    # We pass timeout=None to math-verify on purpose (our own deadline wraps the whole check).
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


_FILTER_INSTALLED: list[bool] = []


def _install_log_filter() -> None:
    if not _FILTER_INSTALLED:
        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).addFilter(_NoTimeoutWarning())
        _FILTER_INSTALLED.append(True)


def grade(pred_latex: str | None, response: str | None, gold_latex: str) -> tuple[str, str, str | None]:
    """Parse gold and prediction with math-verify and compare them: `(verdict value, reason, prediction)`.

    `pred_latex` is the already extracted answer; when it is `None`, math-verify extracts one from `response`.
    Runs without its own timeout: the caller wraps it in a deadline.
    """
    import math_verify

    _install_log_filter()
    gold_parsed = math_verify.parse(gold_latex, **_PARSE_EXTRA)
    if not gold_parsed:
        return (
            Verdict.UNPARSEABLE.value,
            f"math-verify could not parse the gold answer {short(gold_latex)!r}",
            None,
        )
    if pred_latex is not None:
        pred_parsed = math_verify.parse(pred_latex, **_PARSE_EXTRA)
        shown: str | None = pred_latex.strip("$")
        if not pred_parsed:
            return (
                Verdict.UNPARSEABLE.value,
                f"math-verify could not parse the prediction {short(shown)!r}",
                shown,
            )
    else:
        pred_parsed = math_verify.parse(response or "", **_PARSE_EXTRA)
        if not pred_parsed:
            return Verdict.UNPARSEABLE.value, "no answer found in the response", None
        shown = pred_parsed[-1] if isinstance(pred_parsed[-1], str) else None
    gold_shown = gold_parsed[-1] if isinstance(gold_parsed[-1], str) else gold_latex.strip("$")
    if math_verify.verify(gold_parsed, pred_parsed, **_VERIFY_EXTRA):
        return (
            Verdict.CORRECT.value,
            f"math-verify: {short(str(shown))!r} equals {short(gold_shown)!r}",
            shown,
        )
    return (
        Verdict.INCORRECT.value,
        f"math-verify: {short(str(shown))!r} differs from {short(gold_shown)!r}",
        shown,
    )


# Inputs covering the answer types math-verify handles; graded once, without a deadline, before the first
# signal-guarded check: sympy imports submodules lazily, and a deadline that lands inside an import leaves a
# half-initialized module behind that breaks every later parse in the process.
_WARM_UP = (
    ("$x^2+1$", "$1+x^2$"),  # these first three import the most; the worker process runs only them
    ("$e^{i\\pi}$", "$-1$"),
    ("$1/2$", "$0.5$"),
    ("$\\{1,2\\}$", "$\\{2,1\\}$"),
    ("$(1,2]$", "$(1,2]$"),
    ("$x=5$", "$5$"),
    ("$\\begin{pmatrix}1\\\\2\\end{pmatrix}$", "$\\begin{pmatrix}1\\\\2\\end{pmatrix}$"),
    ("$\\frac{\\sqrt{2}}{2}$", "$\\sqrt{2}/2$"),
    ("$\\text{Evelyn}$", "$\\text{Evelyn}$"),
    ("$10\\%$", "$0.1$"),
    ("$3\\pi$", "$9.42477796$"),
    ("$2^{100}$", "$2^{99}$"),
    ("$\\sin x$", "$\\cos(\\pi/2 - x)$"),
    ("$\\log_2 8$", "$3$"),
    ("$x\\in[1,2)$", "$[1,2)$"),
    ("$a<b$", "$b>a$"),
)
_WARM = {"done": False}
_WARM_LOCK = threading.Lock()


def warm_up(n: int | None = None) -> None:
    """Grade the first `n` warm-up pairs (all by default), importing what math-verify imports lazily."""
    for pred, gold in _WARM_UP[:n]:
        grade(pred, None, gold)


def warm_up_worker() -> None:
    warm_up(3)


_POOL = deadline.WorkerPool("retrosearch.verify.math:grade", "retrosearch.verify.math:warm_up_worker")


class MathVerifier:
    """Mathematical equivalence through math-verify, with a per-call deadline and an LRU cache.

    The answer is the last run of `\\boxed{}` of the response (`\\boxed{1} and \\boxed{-2}` is one two-part
    answer; a box after prose replaces the earlier one), else the expression after a trailing `answer is X` /
    `#### X`, else whatever math-verify extracts from the whole response; a last `\\boxed{` that is never closed
    is unparseable. Golds are normalized (`gold_answer`: GSM8K `#### N`, AMC `27.0`, OlympiadBench lists),
    Unicode math is written as LaTeX, stray `$` and a trailing unit after a number are dropped, and the result
    is parsed as `$...$`.

    Most answers never reach sympy: `fast.fast_verdict` decides integers, fractions, decimals, roots, multiples
    of pi, polynomials, sets, tuples and intervals exactly where math-verify's verdict is certain, and hands
    everything else to math-verify.

    The deadline: in the main thread a SIGALRM timer (math-verify's own timeouts are switched off, since they
    use `signal.alarm` too); in any other thread the check runs in a worker process that is killed when the
    deadline passes (the first call in a thread pays the worker's start-up, outside the deadline).
    `mode="process"` uses the worker from the main thread too: a hard deadline even for a C-level hang that a
    signal cannot interrupt. A timed-out check is `UNPARSEABLE` with a reason starting "timed out", and cached.

    Args:
        timeout_s: deadline for one uncached check (both parses and the comparison), in seconds.
        cache_size: entries of the LRU cache keyed by `(extracted prediction, normalized gold)`; 0 disables it.
        mode: "auto" (signal in the main thread, worker process elsewhere), "signal" or "process".
        fast: decide the common forms without sympy (`False`: every check goes to math-verify).
    """

    name = "math"

    def __init__(
        self,
        timeout_s: float = 5.0,
        cache_size: int = 65536,
        *,
        mode: Literal["auto", "signal", "process"] = "auto",
        fast: bool = True,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size!r}")
        if mode not in ("auto", "signal", "process"):
            raise ValueError(f"mode must be 'auto', 'signal' or 'process', got {mode!r}")
        self.timeout_s = float(timeout_s)
        self.cache_size = cache_size
        self.mode = mode
        self.fast = fast
        self._cache: OrderedDict[tuple[str, str, str], tuple[str, str, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.timeouts = 0

    def cache_info(self) -> dict[str, int]:
        """`hits`, `misses` (uncached checks run), `timeouts` and current `size` of the cache."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "timeouts": self.timeouts,
                "size": len(self._cache),
            }

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def _use_signal(self) -> bool:
        if self.mode == "process":
            return False
        if deadline.signal_usable():
            return True
        if self.mode == "signal":
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError(
                    "MathVerifier(mode='signal') works only in the main thread; use mode='auto'"
                )
            raise RuntimeError("MathVerifier(mode='signal') cannot use SIGALRM in this process")
        return False

    def __call__(self, response: str, gold: Gold) -> VerifyResult:
        """Grade `response` (a solution or a whole trace) against `gold`."""
        if not isinstance(response, str):
            raise TypeError(f"response must be a str, got {type(response).__name__}")
        gold_text = gold_answer(gold)
        gold_latex = math_latex(gold_text)
        response = normalize_unicode(response)
        extracted = extract_answer(response)
        if not gold_latex:
            return VerifyResult(Verdict.UNPARSEABLE, "gold answer is empty", extracted, gold_text)
        if unclosed_box(response):
            return VerifyResult(Verdict.UNPARSEABLE, "the last \\boxed{ is never closed", None, gold_text)
        if extracted is not None:
            pred_latex: str | None = math_latex(extracted)
            if not pred_latex:
                return VerifyResult(
                    Verdict.UNPARSEABLE, "the extracted answer is empty", extracted, gold_text
                )
            if self.fast:
                decided = fast_verdict(pred_latex, gold_latex)
                if decided is not None:
                    verdict = Verdict.CORRECT if decided[0] else Verdict.INCORRECT
                    return VerifyResult(verdict, decided[1], extracted, gold_text)
            key = ("answer", pred_latex, gold_latex)
        else:
            pred_latex = None
            # a digest, not the text: 65536 whole traces would hold gigabytes
            key = ("response", hashlib.blake2b(response.encode(), digest_size=16).hexdigest(), gold_latex)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.hits += 1
        if cached is None:
            cached = self._check(pred_latex, response if pred_latex is None else None, gold_latex)
            with self._lock:
                self.misses += 1
                if self.cache_size:
                    self._cache[key] = cached
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        verdict, reason, shown = cached
        prediction = extracted if extracted is not None else shown
        return VerifyResult(Verdict(verdict), reason, prediction, gold_text)

    def _check(
        self, pred_latex: str | None, response: str | None, gold_latex: str
    ) -> tuple[str, str, str | None]:
        args = (pred_latex, response, gold_latex)
        if self._use_signal():
            if not _WARM["done"]:
                with _WARM_LOCK:
                    if not _WARM["done"]:
                        warm_up()
                        _WARM["done"] = True
            finished, value = deadline.run_with_alarm(lambda: grade(*args), self.timeout_s)
        else:
            finished, answer = _POOL.run(args, self.timeout_s)
            if finished and answer[0] == "error":
                value = (Verdict.UNPARSEABLE.value, f"math-verify raised {short(answer[1])}", None)
            else:
                value = answer[1] if finished else None
        if finished:
            return value
        with self._lock:
            self.timeouts += 1
        return (
            Verdict.UNPARSEABLE.value,
            f"timed out after {self.timeout_s:g} s parsing or comparing the answers",
            pred_latex.strip("$") if pred_latex else None,
        )
