"""Toy problems: chains of 2-4 integer operations written as one expression, with their exact answers."""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass
from fractions import Fraction

from retrosearch.toy.config import TraceConfig

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


__all__ = ["Problem", "apply_op", "evaluate_expression", "make_drills", "make_problem", "make_problems"]
