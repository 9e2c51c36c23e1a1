"""The toy world's traces: R1-style thinking over a toy problem, with over-thinking, under-thinking and slips.

Pure Python (no torch). A trace is R1's format::

    <think>
    I need to compute (17 + 8) * 3 - 15. Let me go step by step.

    First, 17 + 8 = 25.

    Then 25 * 3 = 75.

    Alternatively, let me start again.

    First, 17 + 8 = 25. ...

    So the answer is 60.

    Wait, let me double-check the result.

    17 + 8 = 25. ...

    Yes, the answer is 60.
    </think>

    The answer is \\boxed{60}.

A thought switch is a step that opens with one of `retrosearch.trace.DEFAULT_KEYWORDS` (the toy writes the subset
`SWITCH_WORDS`). The habits, mixed in at `TraceConfig` rates so that most traces switch, many several times (as
R1-distill traces do):

- **redundant re-check** (over-thinking): after "So the answer is N." a new thought recomputes the chain and
  confirms the same answer (up to `max_repeats` times);
- **abandoned line** (under-thinking): a line that was going well is dropped mid-way and the computation restarts
  from the beginning in a new thought (up to `max_repeats` times);
- **slip**: one step has a wrong result and the next step ("Wait, 25 * 3 is 75, not 65.") corrects it;
- **wrong ending**: a slip that is never corrected, so the trace ends with a wrong answer.

`retrosearch.toy.habits.detect_habits` recognises the same habits in any text of this format (model-sampled
traces included), judging by the arithmetic, not by the wording.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from retrosearch.toy.config import TraceConfig
from retrosearch.toy.problems import Problem, apply_op, make_problem
from retrosearch.trace import DEFAULT_KEYWORDS

THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"
STEP_SEP = "\n\n"


@dataclass
class ToyTrace:
    """A generated toy trace and the habits it was built with (ground truth for `detect_habits`)."""

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


# Phrases, keyed by the transition keyword they open with, and the weights of the keywords.
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
    "But wait": ("But wait, let me make sure that is right.",),
    "Hmm": ("Hmm, let me check this again.", "Hmm, let me make sure."),
    "Let me double-check": ("Let me double-check by going through it again.",),
    "Just to make sure": ("Just to make sure, let me redo the steps.",),
    "Alternatively": ("Alternatively, let me recompute it to be sure.",),
}
_RECHECK_WORDS = (
    ("Wait", 0.3),
    ("But wait", 0.15),
    ("Hmm", 0.15),
    ("Let me double-check", 0.15),
    ("Just to make sure", 0.1),
    ("Alternatively", 0.15),
)
_RECHECK_DONE = ("Yes, the answer is {a}.", "Yes, the result is {a}.")
_ABANDON = {
    "Alternatively": (
        "Alternatively, let me start over and do it in one pass.",
        "Alternatively, let me start again.",
    ),
    "Hmm": ("Hmm, maybe I should redo this from the beginning.", "Hmm, let me start over."),
    "Wait": ("Wait, let me start again more carefully.",),
    "Another way": ("Another way: go through the whole chain again from the start.",),
}
_ABANDON_WORDS = (("Alternatively", 0.4), ("Hmm", 0.25), ("Wait", 0.2), ("Another way", 0.15))
_CORRECT = {
    "Wait": ("Wait, {a} {op} {b} is {c}, not {w}.", "Wait, that is wrong: {a} {op} {b} is {c}, not {w}."),
    "Hmm": ("Hmm, {a} {op} {b} is actually {c}, not {w}.",),
    "But wait": ("But wait, {a} {op} {b} is {c}, not {w}.",),
}
_CORRECT_WORDS = (("Wait", 0.6), ("Hmm", 0.25), ("But wait", 0.15))
_SOLUTION = "The answer is \\boxed{{{a}}}."

#: The transition keywords the toy's traces switch with: a subset of `retrosearch.trace.DEFAULT_KEYWORDS`.
SWITCH_WORDS: tuple[str, ...] = tuple(
    k for k in DEFAULT_KEYWORDS if any(k in table for table in (_RECHECK, _ABANDON, _CORRECT))
)
if len(SWITCH_WORDS) != len({*_RECHECK, *_ABANDON, *_CORRECT}):
    raise ImportError("toy switch phrases must open with a keyword of retrosearch.trace.DEFAULT_KEYWORDS")


def _pick_word(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w for w, _ in weights], [p for _, p in weights])[0]


def _repeats(rng: random.Random, rate: float, again: float, cap: int) -> int:
    """How many times a habit occurs: 0 with `1 - rate`, else 1 plus a geometric run of `again`, at most `cap`."""
    if rng.random() >= rate:
        return 0
    n = 1
    while n < cap and rng.random() < again:
        n += 1
    return n


def _slip_value(rng: random.Random, right: int) -> int:
    while True:
        wrong = right + rng.choice((-10, -2, -1, 1, 2, 10))
        if wrong >= 0:
            return wrong


def make_trace(problem: Problem, rng: random.Random, cfg: TraceConfig | None = None) -> ToyTrace:
    """An R1-style trace for `problem`, with habits drawn at the rates of `cfg`.

    Returns:
        A `ToyTrace` whose `habits` hold the ground truth: `recheck`, `abandoned`, `slip` (a slip that was
        corrected or not), `slip_corrected`, `wrong` (ends with a wrong answer), and the counts `n_rechecks`,
        `n_abandoned`, `n_switches`, `n_steps`.
    """
    cfg = cfg or TraceConfig()
    n = len(problem.ops)
    r = rng.random()
    wrong = r < cfg.wrong_rate
    slip = (not wrong) and r < cfg.wrong_rate + cfg.slip_rate
    n_abandon = _repeats(rng, cfg.abandon_rate, cfg.abandon_again_rate, cfg.max_repeats) if n >= 2 else 0
    n_recheck = 0 if wrong else _repeats(rng, cfg.recheck_rate, cfg.recheck_again_rate, cfg.max_repeats)
    style = rng.randrange(len(_FIRST))
    next_style = rng.randrange(len(_NEXT))

    steps = [rng.choice(_OPENINGS).format(e=problem.expression)]
    n_switches = 0

    def chain_step(i: int, a: int, c: int) -> str:
        comp = f"{a} {problem.ops[i][0]} {problem.ops[i][1]} = {c}"
        return (_FIRST[style] if i == 0 else _NEXT[next_style]).format(c=comp)

    vals = problem.values
    for _ in range(n_abandon):  # lines dropped after k correct steps, although they would have finished
        k = rng.randint(1, n - 1)
        steps.extend(chain_step(i, vals[i], vals[i + 1]) for i in range(k))
        steps.append(rng.choice(_ABANDON[_pick_word(rng, _ABANDON_WORDS)]))
        n_switches += 1

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

    text = THINK_OPEN + STEP_SEP.join(steps) + THINK_CLOSE + _SOLUTION.format(a=final)
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
    return ToyTrace(problem, text, habits)


def make_dataset(
    n: int, seed: int = 0, cfg: TraceConfig | None = None, split: str | None = "train"
) -> list[ToyTrace]:
    """`n` seeded traces, one per fresh problem of `split` ("train", "test" or None for both).

    The same `(n, seed, cfg, split)` always gives the same traces; the train and test splits never share a
    problem (`Problem.split` is a hash of the expression).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cfg = cfg or TraceConfig()
    rng = random.Random(seed)
    return [make_trace(make_problem(rng, cfg, split), rng, cfg) for _ in range(n)]


__all__ = ["STEP_SEP", "SWITCH_WORDS", "THINK_CLOSE", "THINK_OPEN", "ToyTrace", "make_dataset", "make_trace"]
