"""The toy world: seeded arithmetic problems and R1-style traces with over-thinking, under-thinking and slips.

Pure Python (no torch). A problem is a chain of 2-4 operations on small integers, written as one expression,
e.g. `(17 + 8) * 3 - 15`; its answer is the unique integer value. A trace is R1's format::

    <think>
    I need to compute (17 + 8) * 3 - 15. Let me go step by step.

    First, 17 + 8 = 25.

    Then 25 * 3 = 75.

    Then 75 - 15 = 60.

    So the answer is 60.
    </think>

    The answer is \\boxed{60}.

Thought switches start a step with "Wait", "Alternatively" or "Hmm". The habits mixed in at `TraceConfig` rates:

- **redundant re-check** (over-thinking): after "So the answer is N." a new thought recomputes the chain and
  confirms the same answer;
- **abandoned line** (under-thinking): a line that was going well is dropped mid-way and the computation restarts
  from the beginning in a new thought;
- **slip**: one step has a wrong result and the next step ("Wait, 25 * 3 is 75, not 65.") corrects it;
- **wrong ending**: a slip that is never corrected, so the trace ends with a wrong answer.

`detect_habits` recognises the same habits in any text of this format (model-sampled traces included), judging
by the arithmetic, not by the wording.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field
from fractions import Fraction

from retrosearch.text import split_think as text_split_think

#: Words that open a thought switch in the toy traces (the Retro-Search transition keywords for this world).
SWITCH_WORDS: tuple[str, ...] = ("Wait", "Alternatively", "Hmm")

THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"
STEP_SEP = "\n\n"

_OPS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Problem:
    """One toy problem: `start` followed by a chain of `ops` applied left to right.

    Attributes:
        start: The first number.
        ops: `(operator, operand)` pairs, operator in `+ - * /`; every division is exact.
    """

    start: int
    ops: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if not self.ops:
            raise ValueError("Problem.ops must hold at least one (operator, operand) pair")
        for i, (op, _) in enumerate(self.ops):
            if op not in _OPS:
                raise ValueError(f"Problem.ops[{i}]: operator {op!r} is not one of {_OPS}")
        values = self.values
        for i, (op, b) in enumerate(self.ops):
            if op == "/" and (b == 0 or values[i] % b):
                raise ValueError(f"Problem.ops[{i}]: {values[i]} / {b} is not an exact division")

    @property
    def values(self) -> list[int]:
        """Running values `[start, v1, ..., vn]`; `values[-1]` is the answer."""
        vals = [self.start]
        for op, b in self.ops:
            vals.append(apply_op(vals[-1], op, b))
        return vals

    @property
    def answer(self) -> int:
        """The unique answer (the value of the expression)."""
        return self.values[-1]

    @property
    def expression(self) -> str:
        """The chain as an expression with standard precedence, e.g. `(17 + 8) * 3 - 15`."""
        expr, top = str(self.start), None  # `top`: the operator applied last, outside any parentheses
        for op, b in self.ops:
            if op in "*/" and top in ("+", "-"):
                expr = f"({expr})"
            expr = f"{expr} {op} {b}"
            top = op
        return expr

    @property
    def question(self) -> str:
        """The user turn: `Compute <expression>.`"""
        return f"Compute {self.expression}."

    def messages(self) -> list[dict[str, str]]:
        """The prompt as chat messages (one user turn)."""
        return [{"role": "user", "content": self.question}]

    @property
    def split(self) -> str:
        """`"test"` for about 10% of all problems (a stable hash of the expression), else `"train"`."""
        return "test" if zlib.crc32(self.expression.encode()) % 10 == 0 else "train"


def apply_op(a: int, op: str, b: int) -> int:
    """`a op b` for the toy operators; `/` must divide exactly."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0 or a % b:
            raise ValueError(f"{a} / {b} is not an exact division")
        return a // b
    raise ValueError(f"unknown operator {op!r}; expected one of {_OPS}")


def evaluate_expression(expr: str) -> Fraction:
    """Exact value of an expression of integers, `+ - * /` and parentheses (an independent check of `answer`)."""
    tokens = re.findall(r"\d+|[-+*/()]", expr)
    if "".join(tokens) != re.sub(r"\s+", "", expr):
        raise ValueError(f"expression {expr!r} has characters other than integers, + - * / and parentheses")
    pos = 0

    def atom() -> Fraction:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            val = expr_sum()
            pos += 1  # ")"
            return val
        return Fraction(int(tok))

    def term() -> Fraction:
        nonlocal pos
        val = atom()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            val = val * atom() if op == "*" else val / atom()
        return val

    def expr_sum() -> Fraction:
        nonlocal pos
        val = term()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            val = val + term() if op == "+" else val - term()
        return val

    return expr_sum()


@dataclass
class TraceConfig:
    """Problem ranges and habit rates of the toy world (all rates are per trace, in `[0, 1]`)."""

    min_ops: int = field(default=2, metadata={"help": "Fewest operations in a problem."})
    max_ops: int = field(default=4, metadata={"help": "Most operations in a problem."})
    max_value: int = field(
        default=100, metadata={"help": "Largest start and intermediate value (all values are >= 1)."}
    )
    max_operand: int = field(
        default=20,
        metadata={
            "help": "Largest operand of + and - (the operand of * and / is 2-9). Small operands keep the "
            "arithmetic learnable by a 2 M-parameter model in minutes of CPU; the habits do not depend on it."
        },
    )
    recheck_rate: float = field(
        default=0.4,
        metadata={
            "help": "Over-thinking: share of traces ending right that re-check the answer after it is found "
            "(a redundant re-check)."
        },
    )
    recheck_again_rate: float = field(
        default=0.25, metadata={"help": "Given one redundant re-check, chance of a second one."}
    )
    abandon_rate: float = field(
        default=0.3,
        metadata={
            "help": "Under-thinking: share of traces that abandon a correct, unfinished line and restart "
            "the computation in a new thought."
        },
    )
    abandon_again_rate: float = field(
        default=0.2,
        metadata={"help": "Given one abandoned line, chance that the restarted line is abandoned too."},
    )
    slip_rate: float = field(
        default=0.1,
        metadata={
            "help": "Share of traces with one arithmetic slip that the next step corrects ('Wait, ...')."
        },
    )
    wrong_rate: float = field(
        default=0.05,
        metadata={
            "help": "Share of traces with an uncorrected slip, which therefore end with a wrong answer "
            "(these never re-check)."
        },
    )

    def __post_init__(self) -> None:
        for name in (
            "recheck_rate",
            "recheck_again_rate",
            "abandon_rate",
            "abandon_again_rate",
            "slip_rate",
            "wrong_rate",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"TraceConfig.{name} must be in [0, 1], got {v}")
        if self.slip_rate + self.wrong_rate > 1.0:
            raise ValueError("TraceConfig.slip_rate + wrong_rate must be <= 1")
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"TraceConfig needs 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if self.max_value < 20:
            raise ValueError(f"TraceConfig.max_value must be >= 20, got {self.max_value}")
        if self.max_operand < 2:
            raise ValueError(f"TraceConfig.max_operand must be >= 2, got {self.max_operand}")


@dataclass
class Trace:
    """A generated trace and the habits it was built with (ground truth for `detect_habits`)."""

    problem: Problem
    text: str
    habits: dict

    @property
    def completion(self) -> str:
        """The trace without the leading `<think>\\n` that the chat template's generation prompt supplies."""
        return self.text[len(THINK_OPEN) :] if self.text.startswith(THINK_OPEN) else self.text

    def to_record(self) -> dict:
        """A JSON-ready row: conversational prompt/completion (TRL style) plus the answer and the habits."""
        return {
            "prompt": self.problem.messages(),
            "completion": [{"role": "assistant", "content": self.text}],
            "question": self.problem.question,
            "answer": str(self.problem.answer),
            "start": self.problem.start,
            "ops": [list(o) for o in self.problem.ops],
            "habits": dict(self.habits),
        }


# ---------------------------------------------------------------------------------------------------------------
# generation


def make_problem(rng: random.Random, cfg: TraceConfig | None = None, split: str | None = None) -> Problem:
    """A random problem; with `split` ("train"/"test"), only problems of that hash split are returned."""
    cfg = cfg or TraceConfig()
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    while True:
        p = _draw_problem(rng, cfg)
        if split is None or p.split == split:
            return p


def _draw_problem(rng: random.Random, cfg: TraceConfig) -> Problem:
    m = cfg.max_value
    n = rng.randint(cfg.min_ops, cfg.max_ops)
    v = rng.randint(2, min(99, m))
    start, ops = v, []
    for _ in range(n):
        choices = []
        if v <= m - 2:
            choices.append("+")
        if v >= 3:
            choices.append("-")
        if 2 * v <= m:
            choices.append("*")
        if any(v % d == 0 for d in range(2, 10)) and v >= 4:
            choices.append("/")
        op = rng.choice(choices)
        if op == "+":
            b = rng.randint(2, min(cfg.max_operand, m - v))
        elif op == "-":
            b = rng.randint(1, min(cfg.max_operand, v - 1))
        elif op == "*":
            b = rng.randint(2, min(9, m // v))
        else:
            b = rng.choice([d for d in range(2, 10) if v % d == 0])
        ops.append((op, b))
        v = apply_op(v, op, b)
    return Problem(start, tuple(ops))


_OPENINGS = (
    "I need to compute {e}. Let me go step by step.",
    "Let me work out {e} step by step.",
    "I need to find the value of {e}.",
)
_FIRST = ("First, {c}.", "Start with {c}.", "{c}.")
_NEXT = ("Then {c}.", "Next, {c}.", "Now {c}.")
_CONCLUDE = ("So the answer is {a}.", "So the result is {a}.")
_RECHECK = {
    "Wait": ("Wait, let me double-check the result.", "Wait, let me verify that once more."),
    "Hmm": ("Hmm, let me check this again.", "Hmm, let me make sure."),
    "Alternatively": ("Alternatively, let me recompute it to be sure.",),
}
_RECHECK_WORDS = (("Wait", 0.5), ("Hmm", 0.3), ("Alternatively", 0.2))
_RECHECK_DONE = ("Yes, the answer is {a}.", "Yes, the result is {a}.")
_ABANDON = {
    "Alternatively": (
        "Alternatively, let me start over and do it in one pass.",
        "Alternatively, let me start again.",
    ),
    "Hmm": ("Hmm, maybe I should redo this from the beginning.", "Hmm, let me start over."),
    "Wait": ("Wait, let me start again more carefully.",),
}
_ABANDON_WORDS = (("Alternatively", 0.5), ("Hmm", 0.3), ("Wait", 0.2))
_CORRECT = {
    "Wait": ("Wait, {a} {op} {b} is {c}, not {w}.", "Wait, that is wrong: {a} {op} {b} is {c}, not {w}."),
    "Hmm": ("Hmm, {a} {op} {b} is actually {c}, not {w}.",),
}
_CORRECT_WORDS = (("Wait", 0.7), ("Hmm", 0.3))
_SOLUTION = "The answer is \\boxed{{{a}}}."


def _pick_word(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w for w, _ in weights], [p for _, p in weights])[0]


def _slip_value(rng: random.Random, right: int) -> int:
    while True:
        wrong = right + rng.choice((-10, -2, -1, 1, 2, 10))
        if wrong >= 0:
            return wrong


def make_trace(problem: Problem, rng: random.Random, cfg: TraceConfig | None = None) -> Trace:
    """An R1-style trace for `problem`, with habits drawn at the rates of `cfg`.

    Returns:
        A `Trace` whose `habits` hold the ground truth: `recheck`, `abandoned`, `slip` (a slip that was corrected
        or not), `slip_corrected`, `wrong` (ends with a wrong answer), and the counts `n_rechecks`,
        `n_abandoned`, `n_switches`, `n_steps`.
    """
    cfg = cfg or TraceConfig()
    n = len(problem.ops)
    r = rng.random()
    wrong = r < cfg.wrong_rate
    slip = (not wrong) and r < cfg.wrong_rate + cfg.slip_rate
    n_abandon = 0
    if rng.random() < cfg.abandon_rate:
        n_abandon = 2 if rng.random() < cfg.abandon_again_rate else 1
    n_recheck = 0
    if rng.random() < cfg.recheck_rate and not wrong:
        n_recheck = 2 if rng.random() < cfg.recheck_again_rate else 1
    style = rng.randrange(len(_FIRST))
    next_style = rng.randrange(len(_NEXT))

    steps = [rng.choice(_OPENINGS).format(e=problem.expression)]
    n_switches = 0

    def chain_step(i: int, a: int, c: int) -> str:
        comp = f"{a} {problem.ops[i][0]} {problem.ops[i][1]} = {c}"
        return (_FIRST[style] if i == 0 else _NEXT[next_style]).format(c=comp)

    vals = problem.values
    for _ in range(n_abandon):  # lines dropped after k correct steps, although they would have finished
        if n < 2:
            break
        k = rng.randint(1, n - 1)
        steps.extend(chain_step(i, vals[i], vals[i + 1]) for i in range(k))
        steps.append(rng.choice(_ABANDON[_pick_word(rng, _ABANDON_WORDS)]))
        n_switches += 1
    if n < 2:
        n_abandon = 0

    # the line that finishes, possibly with one slip; an uncorrected slip goes only where no division follows,
    # so that the rest of the chain stays exact integer arithmetic on the wrong value
    slip_at = -1
    if wrong:
        slip_at = rng.choice([i for i in range(n) if all(op != "/" for op, _ in problem.ops[i + 1 :])])
    elif slip:
        slip_at = rng.randrange(n)
    v = problem.start
    for i, (op, b) in enumerate(problem.ops):
        right = apply_op(v, op, b)
        if i != slip_at:
            steps.append(chain_step(i, v, right))
            v = right
            continue
        w = _slip_value(rng, right)
        if wrong and w < right:
            # keep every later value >= 0: with only + - * after the slip, a larger value stays larger
            tail = w
            for j in range(i + 1, n):
                tail = apply_op(tail, *problem.ops[j])
                if tail < 0:
                    w = right + 1
                    break
        steps.append(chain_step(i, v, w))
        if wrong:
            v = w
            for j in range(i + 1, n):
                c = apply_op(v, *problem.ops[j])
                steps.append(chain_step(j, v, c))
                v = c
            break
        word = _pick_word(rng, _CORRECT_WORDS)
        steps.append(rng.choice(_CORRECT[word]).format(a=v, op=op, b=b, c=right, w=w))
        n_switches += 1
        v = right
    final = v
    steps.append(rng.choice(_CONCLUDE).format(a=final))

    for _ in range(n_recheck):
        steps.append(rng.choice(_RECHECK[_pick_word(rng, _RECHECK_WORDS)]))
        n_switches += 1
        steps.extend(f"{vals[i]} {op} {b} = {vals[i + 1]}." for i, (op, b) in enumerate(problem.ops))
        steps.append(rng.choice(_RECHECK_DONE).format(a=final))

    text = THINK_OPEN + STEP_SEP.join(steps) + THINK_CLOSE + _SOLUTION.format(e=problem.expression, a=final)
    habits = {
        "recheck": n_recheck > 0,
        "abandoned": n_abandon > 0,
        "slip": slip or wrong,
        "slip_corrected": slip,
        "wrong": wrong,
        "n_rechecks": n_recheck,
        "n_abandoned": n_abandon,
        "n_switches": n_switches,
        "n_steps": len(steps),
    }
    return Trace(problem, text, habits)


def make_dataset(
    n: int, seed: int = 0, cfg: TraceConfig | None = None, split: str | None = "train"
) -> list[Trace]:
    """`n` seeded traces, one per fresh problem of `split` ("train", "test" or None for both).

    The same `(n, seed, cfg, split)` always gives the same traces; the train and test splits never share a
    problem (`Problem.split` is a hash of the expression).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cfg = cfg or TraceConfig()
    rng = random.Random(seed)
    return [make_trace(make_problem(rng, cfg, split), rng, cfg) for _ in range(n)]


def make_problems(
    n: int, seed: int = 0, cfg: TraceConfig | None = None, split: str | None = "test"
) -> list[Problem]:
    """`n` seeded distinct problems of `split` (by default the held-out test split)."""
    cfg = cfg or TraceConfig()
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        p = make_problem(rng, cfg, split)
        if p.expression not in seen:
            seen.add(p.expression)
            out.append(p)
    return out


def make_drills(n: int, seed: int = 0, cfg: TraceConfig | None = None) -> list[tuple[int, str, int, int]]:
    """`n` seeded arithmetic facts `(a, op, b, a op b)`, drawn as the steps of random problems are.

    Drills (`"42 * 3 = 126"`) teach a small model the arithmetic with ~5x fewer tokens per fact than traces.
    """
    cfg = cfg or TraceConfig()
    rng = random.Random(seed)
    out: list[tuple[int, str, int, int]] = []
    while len(out) < n:
        p = _draw_problem(rng, cfg)
        vals = p.values
        out.extend((vals[i], op, b, vals[i + 1]) for i, (op, b) in enumerate(p.ops))
    return out[:n]


# ---------------------------------------------------------------------------------------------------------------
# detection

_SWITCH_RE = re.compile(r"^\s*(?:But\s+)?(?:" + "|".join(SWITCH_WORDS) + r")\b", re.IGNORECASE)
_COMP_RE = re.compile(r"(\d+)\s*([-+*/])\s*(\d+)\s*=\s*(-?\d+)")
_CORR_RE = re.compile(r"(\d+)\s*([-+*/])\s*(\d+)\s+is\s+(?:actually\s+)?(\d+),?\s+not\s+(\d+)")
_ANSWER_RE = re.compile(r"(?:answer|result)\s+is\s+(-?\d+)")
_BOXED_RE = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")


def _true_value(a: int, op: str, b: int) -> Fraction | None:
    if op == "/":
        return Fraction(a, b) if b else None
    return Fraction(apply_op(a, op, b))


def split_think(text: str) -> tuple[str, str | None]:
    """`(thinking, solution)` of a toy trace; `solution` is None when `</think>` never comes (a cut-off trace)."""
    think, sol = text_split_think(text)
    return think.strip("\n"), sol


def detect_habits(trace_text: str, problem: Problem) -> dict:
    """The habits in any trace of the toy format, judged by its arithmetic.

    The thinking is split into steps on blank lines; a step that starts with a switch word ("Wait",
    "Alternatively", "Hmm", optionally after "But") opens a new thought. Walking the steps:

    - a **slip** is a step `a op b = c` whose `c` is wrong; it is **corrected** when a later step either flags
      it (`a op b is c', not c` with the right `c'`) or computes `a op b` again, right (as a re-check may); a
      flag on a step that was right is a **false alarm** (models copy the form of a correction more easily
      than its function: compare `n_flags` with `slip_corrected`);
    - a switch that is not a correction, made after the line had at least one computation step, all right so
      far, and before the line stated an answer, is an **abandoned line**;
    - a switch made after an answer was stated ("the answer is N"), where the trace's final answer is still N,
      is a **redundant re-check**.

    Args:
        trace_text: The assistant text: `<think>\\n ... \\n</think>\\n\\n solution` (a leading `<think>` may be
            missing, as when the chat template's generation prompt supplied it).
        problem: The problem it answers.

    Returns:
        A dict with booleans `recheck`, `abandoned`, `slip`, `slip_corrected`, `false_alarm`, `correct`,
        `well_formed` (closed thinking and a `\\boxed{}` integer), counts `n_rechecks`, `n_abandoned`,
        `n_switches`, `n_flags` (steps in the correction form), `n_steps`, and `answer` (the last boxed
        integer, else the last stated answer, else None).
    """
    think, sol = split_think(trace_text)
    steps = [s.strip() for s in think.split(STEP_SEP) if s.strip()]

    boxed = _BOXED_RE.findall(sol) if sol is not None else []
    stated_all = [int(x) for s in steps for x in _ANSWER_RE.findall(s)]
    final = int(boxed[-1]) if boxed else (stated_all[-1] if stated_all else None)

    n_switches = n_rechecks = n_abandoned = n_flags = 0
    slips: list[tuple[int, str, int, int]] = []  # (a, op, b, wrong c) not yet corrected
    slip = slip_corrected = false_alarm = False
    line_steps = 0  # computation steps in the current line since the last switch or answer
    line_ok = True
    stated: int | None = None  # answer stated since the last switch (None: the line has not finished)
    for s in steps:
        is_switch = bool(_SWITCH_RE.match(s))
        corrections = _CORR_RE.findall(s)
        if is_switch:
            n_switches += 1
            if not corrections:
                if stated is not None:
                    if final is not None and stated == final:
                        n_rechecks += 1
                elif line_steps > 0 and line_ok:
                    n_abandoned += 1
                line_steps, line_ok, stated = 0, True, None
        for a, op, b, c, w in corrections:
            n_flags += 1
            key = (int(a), op, int(b))
            tv = _true_value(*key)
            match = [x for x in slips if x[:3] == key and x[3] == int(w)]
            if match and tv == int(c):
                slips.remove(match[0])
                slip_corrected = True
                line_ok = True
            elif not match:
                false_alarm = True
        comps = _COMP_RE.findall(s)
        for a, op, b, c in comps:
            key = (int(a), op, int(b))
            line_steps += 1
            if _true_value(*key) != int(c):
                slip = True
                line_ok = False
                slips.append((*key, int(c)))
            else:
                redone = [x for x in slips if x[:3] == key]
                if redone:
                    slips.remove(redone[0])
                    slip_corrected = True
        m = _ANSWER_RE.findall(s)
        if m:
            stated = int(m[-1])
    correct = final is not None and final == problem.answer
    return {
        "recheck": n_rechecks > 0,
        "abandoned": n_abandoned > 0,
        "slip": slip,
        "slip_corrected": slip_corrected,
        "false_alarm": false_alarm,
        "correct": correct,
        "well_formed": sol is not None and bool(boxed),
        "answer": final,
        "n_rechecks": n_rechecks,
        "n_abandoned": n_abandoned,
        "n_switches": n_switches,
        "n_flags": n_flags,
        "n_steps": len(steps),
    }


def habit_shares(rows: list[dict]) -> dict[str, float]:
    """Share of `detect_habits` results (or `Trace.habits`) with each boolean habit set."""
    if not rows:
        return {}
    keys = [k for k, v in rows[0].items() if isinstance(v, bool)]
    return {k: sum(bool(r.get(k)) for r in rows) / len(rows) for k in keys}


__all__ = [
    "SWITCH_WORDS",
    "Problem",
    "Trace",
    "TraceConfig",
    "apply_op",
    "detect_habits",
    "evaluate_expression",
    "habit_shares",
    "make_dataset",
    "make_drills",
    "make_problem",
    "make_problems",
    "make_trace",
    "split_think",
]
