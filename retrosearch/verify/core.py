"""Answer grading: math equivalence (math-verify), exact match, multiple choice, QA metrics and user callables."""

from __future__ import annotations

import ast
import atexit
import enum
import hashlib
import json
import logging
import math
import re
import signal
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from retrosearch.text import last_boxed

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


# --------------------------------------------------------------------------------------------- extraction

_ANSWER_IS = re.compile(
    r"\b(?:final\s+answer|answer)\s*(?:is\b|:|=)\s*:?\s*(?P<ans>[^\n]+?)\s*$", re.IGNORECASE | re.MULTILINE
)
_HASHES = re.compile(r"####\s*(?P<ans>[^\n]+?)\s*$", re.MULTILINE)


def _strip_wrappers(s: str) -> str:
    """Trim whitespace, markdown bold, a trailing period and one pair of `$`/`\\(`/`\\[` delimiters."""
    s = s.strip()
    for _ in range(3):
        before = s
        s = s.strip().strip("*").strip()
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1].rstrip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)].strip()
                break
        if s == before:
            break
    return s


def extract_answer(response: str | None) -> str | None:
    """The final answer in a response: the last `\\boxed{}`, else a trailing `answer is X` / `Answer: X` /
    `#### X` (the last such line), else `None`."""
    if not response:
        return None
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed.strip()
    found: list[tuple[int, str]] = []
    for pattern in (_HASHES, _ANSWER_IS):
        for m in pattern.finditer(response):
            found.append((m.start("ans"), m.group("ans")))
    if not found:
        return None
    ans = _strip_wrappers(max(found)[1])
    return ans or None


def gold_answer(gold: Gold) -> str:
    """The gold answer as one string, whatever the data set stores.

    A one-element list gives its element (several are joined with `", "`); an integral float gives the integer
    (`27.0` -> `"27"`); a GSM8K worked solution gives the text after its last `####`; a gold containing
    `\\boxed{}` gives the box content.

    Raises:
        TypeError: `gold` is `None` or of another type.
    """
    if isinstance(gold, (list, tuple)):
        gold = ", ".join(gold_answer(g) for g in gold)
    if isinstance(gold, bool) or gold is None or not isinstance(gold, (str, int, float)):
        raise TypeError(f"gold answer must be a str, a number or a list of them, got {type(gold).__name__}")
    if isinstance(gold, float):
        return str(int(gold)) if gold.is_integer() else repr(gold)
    text = str(gold).strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip()
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed.strip()
    return text


# ----------------------------------------------------------------------------------------------- math

# Units a data set writes after a number ("20 $cm^{2}$", "864 \\mbox{ inches}^2"): dropped so the number is
# compared. One-letter units only when set apart by a space or `\\text{}`: "2s" or "6m" may be expressions.
_UNITS_LONG = (
    r"(?:cm|mm|km|kg|mg|ml|sec|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?|years?|km/h|m/s|mph|"
    r"inch(?:es)?|feet|foot|ft|yards?|miles?|dollars?|cents?|units?|degrees?|meters?|metres?|liters?|litres?)"
)
_UNITS_SHORT = r"(?:m|s|h|g|l|in)"
_NUMBER_UNIT = re.compile(
    r"^(?P<num>[-+]?\d[\d,]*(?:\.\d+)?)\s*(?:\\[,;! ]\s*)*"
    r"(?:\\(?:text|mathrm|mbox|textrm)\s*\{\s*(?:" + _UNITS_LONG + "|" + _UNITS_SHORT + r")\s*\}"
    r"|" + _UNITS_LONG + r"|\s" + _UNITS_SHORT + r")"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_INTEGRAL_FLOAT = re.compile(r"^([-+]?\d+)\.0+$")
# Several `$...$` answers joined by commas, "or", "and": "$2$ or $-2$", "$69$,$84$".
_SEGMENT_LIST = re.compile(r"^\s*\$[^$]*\$(?:\s*(?:,|;|\bor\b|\band\b)?\s*\$[^$]*\$)+\s*$")
# One `$...$` answer with plain words around it: "$145$solution:", "$2$ cm".
_ONE_SEGMENT = re.compile(r"^(?P<pre>[^$]*)\$(?P<math>[^$]+)\$(?P<post>[^$]*)$")
_MATHY = re.compile(r"[\d\\^_{}=<>+*/|-]")


def _math_latex(answer: str) -> str:
    """A short answer (gold or box content) as one `$...$` math string for math-verify.

    Data sets write golds like `20 $cm^{2}$`, `$2$ or $-2$`, `$221,$8$` or `\\$18.90`: a currency `\\$` is
    dropped, a list of `$...$` answers becomes one comma-separated list, one `$...$` among plain words is
    taken alone, any other `$` is dropped; then a trailing unit after a number and an integral `.0` go.
    """
    s = answer.strip().replace("\\$", "")
    if _SEGMENT_LIST.match(s):
        s = ", ".join(seg.strip() for seg in re.findall(r"\$([^$]*)\$", s))
    else:
        s = _strip_wrappers(s)
        m = _ONE_SEGMENT.match(s)
        if m and not _MATHY.search(m.group("pre") + m.group("post")):
            s = m.group("math")
        s = s.replace("$", "").strip()
    m = _NUMBER_UNIT.match(s)
    if m:
        s = m.group("num")
    m = _INTEGRAL_FLOAT.match(s)
    if m:
        s = m.group(1)
    return f"${s}$" if s else ""


class _Deadline(BaseException):
    """Raised by the SIGALRM handler; a BaseException so math-verify's `except Exception` does not swallow it."""


_PARSE_EXTRA: dict[str, Any] = {"parsing_timeout": None}
_VERIFY_EXTRA: dict[str, Any] = {"timeout_seconds": None}


class _NoTimeoutWarning(logging.Filter):
    # We pass timeout=None to math-verify on purpose (our own deadline wraps the whole check).
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


_FILTER_INSTALLED = False


def _install_log_filter() -> None:
    global _FILTER_INSTALLED
    if not _FILTER_INSTALLED:
        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).addFilter(_NoTimeoutWarning())
        _FILTER_INSTALLED = True


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _grade(pred_latex: str | None, response: str | None, gold_latex: str) -> tuple[str, str, str | None]:
    """Parse gold and prediction and compare them: `(verdict value, reason, prediction string)`.

    `pred_latex` is the already extracted answer; when it is `None`, math-verify extracts one from `response`.
    Runs without its own timeout: the caller wraps it in a deadline.
    """
    import math_verify

    _install_log_filter()
    gold_parsed = math_verify.parse(gold_latex, **_PARSE_EXTRA)
    if not gold_parsed:
        return (
            Verdict.UNPARSEABLE.value,
            f"math-verify could not parse the gold answer {_short(gold_latex)!r}",
            None,
        )
    if pred_latex is not None:
        pred_parsed = math_verify.parse(pred_latex, **_PARSE_EXTRA)
        shown: str | None = pred_latex.strip("$")
        if not pred_parsed:
            return (
                Verdict.UNPARSEABLE.value,
                f"math-verify could not parse the prediction {_short(shown)!r}",
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
            f"math-verify: {_short(str(shown))!r} equals {_short(gold_shown)!r}",
            shown,
        )
    return (
        Verdict.INCORRECT.value,
        f"math-verify: {_short(str(shown))!r} differs from {_short(gold_shown)!r}",
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
_SIGNAL_STATE = {"warm": False, "broken": False}
_SIGNAL_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


def _warm_up(n: int | None = None) -> None:
    for pred, gold in _WARM_UP[:n]:
        _grade(pred, None, gold)


def _interrupted_import(tb: Any) -> bool:
    """Whether a traceback passes through the import machinery (the deadline landed inside an import)."""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        tb = tb.tb_next
    return False


def _run_with_alarm(fn: Callable[[], Any], timeout_s: float) -> tuple[bool, Any]:
    """Run `fn` in the main thread under a SIGALRM deadline: `(finished, value)`.

    A previously armed `ITIMER_REAL` (an outer timeout) is re-armed afterwards with its remaining time.
    """

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Deadline

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    prev_delay, prev_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        try:
            return True, fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline as e:
        if _interrupted_import(e.__traceback__):
            _SIGNAL_STATE["broken"] = True
            logger.warning(
                "a grading deadline interrupted a module import; this process's sympy may be damaged, so math "
                "answers are graded in worker processes from now on"
            )
        return False, None
    finally:
        signal.signal(signal.SIGALRM, old_handler)
        if prev_delay > 0:
            left = max(prev_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, prev_interval)


def _worker_main() -> None:
    """Body of a grading worker process: pickled `_grade` arguments on stdin, pickled results on stdout."""
    import os
    import pickle
    import sys

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from libraries go to stderr, not into the result stream
    _warm_up(3)  # before "ready": the first deadline must not be spent importing
    pickle.dump("ready", out)
    out.flush()
    while True:
        try:
            args = pickle.load(sys.stdin.buffer)
        except (EOFError, OSError):
            return
        try:
            result: Any = _grade(*args)
        except Exception as e:  # a bug in math-verify must not kill the worker
            result = (
                Verdict.UNPARSEABLE.value,
                f"math-verify raised {type(e).__name__}: {_short(str(e))}",
                None,
            )
        pickle.dump(result, out)
        out.flush()


class _Worker:
    """One grading subprocess; killed (the pool starts another) when a request runs past its deadline.

    A plain subprocess running `_worker_main`, not `multiprocessing`: spawn would re-import the caller's
    `__main__` (scripts without a main guard would run twice) and fork is unsafe in a threaded process.
    """

    STARTUP_S = 120.0

    def __init__(self) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from retrosearch.verify.core import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        if not self._wait(self.STARTUP_S):
            self.kill()
            raise RuntimeError(f"math-verify worker process did not start within {self.STARTUP_S:.0f} s")
        if self._read() != "ready":
            self.kill()
            raise RuntimeError("math-verify worker process failed to start (see its stderr above)")

    def _wait(self, timeout_s: float) -> bool:
        import select

        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return bool(readable)

    def _read(self) -> Any:
        import pickle

        try:
            return pickle.load(self.proc.stdout)  # type: ignore[arg-type]
        except (EOFError, OSError, pickle.UnpicklingError):
            return None

    def run(self, args: tuple, timeout_s: float) -> tuple[bool, Any]:
        import pickle

        assert self.proc.stdin is not None
        try:
            pickle.dump(args, self.proc.stdin)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return True, (Verdict.UNPARSEABLE.value, "math-verify worker process died", None)
        if not self._wait(timeout_s):
            self.kill()
            return False, None
        result = self._read()
        if result is None:
            self.kill()
            return True, (Verdict.UNPARSEABLE.value, "math-verify worker process died", None)
        return True, result

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class _WorkerPool:
    """Idle grading processes shared by all threads; a thread checks one out per call."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self.started = 0

    def run(self, args: tuple, timeout_s: float) -> tuple[bool, Any]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker()
            with self._lock:
                self.started += 1
        finished, value = worker.run(args, timeout_s)
        if worker.alive:
            with self._lock:
                self._idle.append(worker)
        return finished, value

    def close(self) -> None:
        """Stop the idle workers (also run at exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for w in idle:
            w.kill()


_POOL = _WorkerPool()
atexit.register(_POOL.close)


_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _plain_number_verdict(pred: str | None, gold: str) -> tuple[Verdict, str] | None:
    """Exact verdict when both sides are plain decimal numbers (most math answers): no sympy needed.

    `27.0` equals `27` as in math-verify; anything else (fractions, LaTeX, units) returns None.
    """
    if pred is None:
        return None
    p, g = pred.strip(), gold.strip()
    if not (_PLAIN_NUMBER.fullmatch(p) and _PLAIN_NUMBER.fullmatch(g)):
        return None
    if Decimal(p) == Decimal(g):
        return Verdict.CORRECT, f"{p} equals {g}"
    return Verdict.INCORRECT, f"{p} differs from {g}"


class MathVerifier:
    """Mathematical equivalence through math-verify, with a per-call deadline and an LRU cache.

    The answer is the last `\\boxed{}` of the response, else a trailing `answer is X` / `#### X`, else whatever
    math-verify extracts from the whole response. Golds are normalized (`gold_answer`: GSM8K `#### N`, AMC
    `27.0`, OlympiadBench lists), stray `$` and a trailing unit after a number are dropped, and the result is
    parsed as `$...$`.

    The deadline: in the main thread a SIGALRM timer (math-verify's own timeouts are switched off, since they
    use `signal.alarm` too); in any other thread the check runs in a spawned worker process that is killed when
    the deadline passes (the first call in a thread pays the worker's start-up, outside the deadline).
    `mode="process"` uses the worker from the main thread too: a hard deadline even for a C-level hang that a
    signal cannot interrupt. A timed-out check is `UNPARSEABLE` with a reason starting "timed out", and cached.

    Args:
        timeout_s: deadline for one uncached check (both parses and the comparison), in seconds.
        cache_size: entries of the LRU cache keyed by `(extracted prediction, normalized gold)`; 0 disables it.
        mode: "auto" (signal in the main thread, worker process elsewhere), "signal" or "process".
    """

    name = "math"

    def __init__(
        self,
        timeout_s: float = 5.0,
        cache_size: int = 65536,
        *,
        mode: Literal["auto", "signal", "process"] = "auto",
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
        self._cache: OrderedDict[tuple[str, str], tuple[str, str, str | None]] = OrderedDict()
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
        main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if not main:
            if self.mode == "signal":
                raise RuntimeError(
                    "MathVerifier(mode='signal') works only in the main thread; use mode='auto'"
                )
            return False
        # A SIGALRM handler installed from C cannot be put back afterwards: use the worker process then.
        if signal.getsignal(signal.SIGALRM) is None or _SIGNAL_STATE["broken"]:
            if self.mode == "signal":
                raise RuntimeError("MathVerifier(mode='signal') cannot use SIGALRM in this process")
            return False
        return True

    def __call__(self, response: str, gold: Gold) -> VerifyResult:
        """Grade `response` (a solution or a whole trace) against `gold`."""
        if not isinstance(response, str):
            raise TypeError(f"response must be a str, got {type(response).__name__}")
        gold_text = gold_answer(gold)
        gold_latex = _math_latex(gold_text)
        if not gold_latex:
            return VerifyResult(
                Verdict.UNPARSEABLE, "gold answer is empty", extract_answer(response), gold_text
            )
        extracted = extract_answer(response)
        fast = _plain_number_verdict(extracted, gold_text)
        if fast is not None:
            return VerifyResult(fast[0], fast[1], extracted, gold_text)
        if extracted is not None:
            pred_latex: str | None = _math_latex(extracted)
            if not pred_latex:
                return VerifyResult(
                    Verdict.UNPARSEABLE, "the extracted answer is empty", extracted, gold_text
                )
            key = ("answer", pred_latex, gold_latex)
        else:
            pred_latex = None
            # a digest, not the text: 65536 whole traces would hold gigabytes
            key = ("response", hashlib.blake2b(response.encode(), digest_size=16).hexdigest(), gold_latex)
        with self._lock:
            cached = self._cache.get(key)  # type: ignore[arg-type]
            if cached is not None:
                self._cache.move_to_end(key)  # type: ignore[arg-type]
                self.hits += 1
        if cached is None:
            cached = self._check(pred_latex, response if pred_latex is None else None, gold_latex)
            with self._lock:
                self.misses += 1
                if self.cache_size:
                    self._cache[key] = cached  # type: ignore[index]
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
            if not _SIGNAL_STATE["warm"]:
                with _SIGNAL_LOCK:
                    if not _SIGNAL_STATE["warm"]:
                        _warm_up()
                        _SIGNAL_STATE["warm"] = True
            finished, value = _run_with_alarm(lambda: _grade(*args), self.timeout_s)
        else:
            finished, value = _POOL.run(args, self.timeout_s)
        if finished:
            return value
        with self._lock:
            self.timeouts += 1
        return (
            Verdict.UNPARSEABLE.value,
            f"timed out after {self.timeout_s:g} s parsing or comparing the answers",
            pred_latex.strip("$") if pred_latex else None,
        )


# ------------------------------------------------------------------------------------- exact and choice


def _exact_normalize(s: str) -> str:
    s = _strip_wrappers(s).replace("$", "")
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
        extracted = extract_answer(response)
        pred = extracted if extracted is not None else response.strip()
        p, g = (_exact_normalize(pred), _exact_normalize(gold_text)) if self.normalize else (pred, gold_text)
        if not g:
            return VerifyResult(Verdict.UNPARSEABLE, "gold answer is empty", pred, gold_text)
        if not p:
            return VerifyResult(Verdict.UNPARSEABLE, "no answer found in the response", None, gold_text)
        if p == g:
            return VerifyResult(Verdict.CORRECT, f"exact match {_short(p)!r}", pred, gold_text)
        return VerifyResult(Verdict.INCORRECT, f"{_short(p)!r} != {_short(g)!r}", pred, gold_text)


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
        stripped = _strip_wrappers(text)
        m = self._bare.match(stripped)
        if m and len(stripped) <= 4:
            return m.group(1).upper()
        parens = list(self._paren.finditer(text))
        return parens[-1].group(1) if parens else None

    def __call__(self, response: str, gold: Gold) -> VerifyResult:
        gold_text = gold_answer(gold)
        g = self.letter(gold_text) if len(_strip_wrappers(gold_text)) <= 4 else None
        if g is None:
            return VerifyResult(
                Verdict.UNPARSEABLE,
                f"gold {_short(gold_text)!r} is not one of the letters {self.choices}",
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


# ------------------------------------------------------------------------------------------ QA metrics

_PUNCT = re.compile("[" + re.escape(string.punctuation) + "‘’“”–—]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """QA normalization: lowercase, `_` and punctuation to spaces, drop a/an/the, collapse spaces, and map a
    whole answer of "true"/"false" to "yes"/"no"."""
    s = str(s).lower().replace("_", " ")
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
    """Some normalized gold appears in the normalized prediction as whole words (R1-Searcher's cover EM)."""
    p = f" {normalize_answer(pred)} "
    return any((g := normalize_answer(gold)) and f" {g} " in p for gold in parse_gold_list(golds))


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


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


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


# -------------------------------------------------------------------------------------------- callable


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


# -------------------------------------------------------------------------------------------- registry

#: Names accepted by `get_verifier`, each with a factory taking no arguments.
VERIFIERS: dict[str, Callable[[], Verifier]] = {
    "math": MathVerifier,
    "exact": ExactMatchVerifier,
    "choice": MultipleChoiceVerifier,
    "cover_em": CoverEMVerifier,
    "f1": F1Verifier,
}


def get_verifier(spec: str | Verifier | Callable[[str, str], Any]) -> Verifier:
    """A verifier from a name (`"math"`, `"exact"`, `"choice"`, `"cover_em"`, `"f1"`), a `Verifier` (returned
    as is) or a plain callable `fn(response, gold)` (wrapped in `CallableVerifier`).

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
