"""Habit detection for the toy world: re-checks, abandoned lines and slips, judged from a trace's arithmetic."""

from __future__ import annotations

import re
from fractions import Fraction

from retrosearch.text import split_think as text_split_think
from retrosearch.toy.problems import Problem, apply_op
from retrosearch.toy.world import STEP_SEP
from retrosearch.trace import DEFAULT_KEYWORDS, opening_keyword

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

    The thinking is split into steps on blank lines; a step that starts with a transition keyword
    (`retrosearch.trace.DEFAULT_KEYWORDS`, the one rule of `Trace`'s segmentation) opens a new thought. Walking the steps:

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
        is_switch = opening_keyword(s, DEFAULT_KEYWORDS) is not None
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
    """Share of `detect_habits` results (or `ToyTrace.habits`) with each boolean habit set."""
    if not rows:
        return {}
    keys = [k for k, v in rows[0].items() if isinstance(v, bool)]
    return {k: sum(bool(r.get(k)) for r in rows) / len(rows) for k in keys}


__all__ = ["detect_habits", "habit_shares", "split_think"]
