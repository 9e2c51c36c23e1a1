"""The shapes of simple answers as latex2sympy builds them: sets, tuples, intervals, unions, matrices, `a \\pm b`,
assignments `x = 5` / `x \\in [1, 2]`, `\\text{word}` symbols; scalars come from `fast_values`."""

from __future__ import annotations

import re

from retrosearch.verify.fast_values import INF, Num, Unsure, parse_scalar

_INT = re.compile(r"-?\d+")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DEGREES = re.compile(r"(-?\d+(?:\.\d+)?)\^(?:\{\\circ\}|\\circ)")
_INFINITY = re.compile(r"([-+]?)\\infty")
_ASSIGN = re.compile(r"([a-z])\s*(=|\\in\b)(.*)", re.DOTALL)
_PM = re.compile(r"\\pm(?![A-Za-z])")
_CUP = re.compile(r"\\cup(?![A-Za-z])")
_MATRIX = re.compile(r"\\begin\{([pb]matrix)\}(.*)\\end\{\1\}", re.DOTALL)
_OPEN = {"(": True, "[": False}
_CLOSE = {")": True, "]": False}


class Seq:
    """A collection answer. `kind`: "set" (latex2sympy's set; `written` says whether its elements are in the
    written order, which a comparison with a tuple uses), "sset" (sympy's own set: a wrapped scalar, a one-point
    interval), "tuple", "ivl" (items = ends), "empty", "union" (items = intervals), "matrix" (items = rows),
    "assign" (items = [variable, value, value as written], `lo_open` marks `\\in`)."""

    __slots__ = ("kind", "items", "lo_open", "hi_open", "written")

    def __init__(self, kind: str, items: list, lo_open: bool = False, hi_open: bool = False) -> None:
        self.kind, self.items, self.lo_open, self.hi_open, self.written = kind, items, lo_open, hi_open, True

    def unique(self) -> list[Num]:
        """Distinct elements, as sympy keeps them (equal Integers / Rationals / Floats merge)."""
        out: list[Num] = []
        for x in self.items:
            same = [y for y in out if y.terms == x.terms and y.inf == x.inf]
            if not same:
                out.append(x)
            elif not (same[0].kind == x.kind and x.kind in ("int", "rat", "float")):
                raise Unsure  # equal values in different forms: sympy may keep both
        return out

    def size(self) -> int:
        return len(self.items) if self.kind == "tuple" else len(self.unique())


def _split(s: str, sep: str = ",") -> list[str]:
    """`s` cut at its top-level `sep`s (a character or a regex)."""
    parts, depth, start, i = [], 0, 0, 0
    pattern = re.compile(sep if len(sep) > 1 else re.escape(sep))
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = pattern.match(s, i)
            if m:
                parts.append(s[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(s[start:])
    if any(not p.strip() for p in parts):
        raise Unsure
    return parts


def _closes_at_end(s: str) -> bool:
    """Whether the bracket opening `s` is closed by its last character."""
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def less(a: Num, b: Num) -> bool:
    """`a < b`, certain, else `Unsure`."""
    if a.terms == b.terms and a.inf == b.inf:
        return False
    if a.inf or b.inf:
        if not (a.inf and b.inf) and not (b if a.inf else a).constant:
            raise Unsure
        return a.inf != b.inf and (a.inf < 0 or b.inf > 0)  # -oo < x < +oo
    x, y = a.real(), b.real()
    if abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y)):
        raise Unsure
    return x < y


class _Reader:
    def __init__(self, allow_i: bool) -> None:
        self.allow_i = allow_i

    def scalar(self, s: str) -> Num:
        s = s.strip()
        m = _INFINITY.fullmatch(s)
        if m:
            return INF[m.group(1) == "-"]
        return parse_scalar(s, self.allow_i)

    def interval(self, left: str, right: str, lo_open: bool, hi_open: bool) -> Seq:
        """latex2sympy's `convert_interval`, then sympy's `Interval` (which turns `[a, a]` into `{a}`)."""
        a, b = self.scalar(left), self.scalar(right)
        if a.inf > 0 or b.inf < 0:
            raise Unsure
        equal = not less(a, b) and not less(b, a)
        if (lo_open and hi_open and not less(a, b)) or (not lo_open and not hi_open and less(b, a)):
            return Seq("tuple", [a, b])
        if less(b, a) or (equal and (lo_open or hi_open)):
            return Seq("empty", [])
        if equal:
            return Seq("sset", [a])
        return Seq("ivl", [a, b], lo_open or a.inf < 0, hi_open or b.inf > 0)

    def bracketed(self, s: str) -> Seq | Num | None:
        if s.startswith("\\{") and s.endswith("\\}") and _closes_at_end(s[1:]):
            return Seq("set", [self.scalar(p) for p in _split(s[2:-2])])
        if s[:1] in _OPEN and s[-1:] in _CLOSE and _closes_at_end(s):
            parts = _split(s[1:-1])
            if len(parts) == 2:
                return self.interval(parts[0], parts[1], _OPEN[s[0]], _CLOSE[s[-1]])
            if len(parts) > 2 and _OPEN[s[0]] == _CLOSE[s[-1]]:
                return Seq("tuple", [self.scalar(p) for p in parts])
            raise Unsure
        return None

    def matrix(self, body: str) -> Seq:
        rows = [[self.scalar(c) for c in _split(row, "&")] for row in _split(body.strip(), r"\\\\")]
        if len({len(r) for r in rows}) != 1:
            raise Unsure
        return Seq("matrix", rows)

    def answer(self, s: str) -> Seq | Num:
        s = s.strip()
        if _INT.fullmatch(s):
            return parse_scalar(s)
        m = _DEGREES.fullmatch(s)
        if m:
            return parse_scalar(m.group(1))  # convert_degrees is off: 90^\circ is 90
        if "\\circ" in s or ";" in s:
            raise Unsure
        if _THOUSANDS.fullmatch(s):
            return parse_scalar(s.replace(",", ""))
        m = _MATRIX.fullmatch(s)
        if m:
            return self.matrix(m.group(2))
        m = _ASSIGN.fullmatch(s)
        if m and m.group(1) not in "dei":
            value = self.answer(m.group(3))
            if m.group(2) == "=" and not (isinstance(value, Num) and not value.inf):
                raise Unsure
            return Seq(
                "assign", [Num.symbol(m.group(1)), value, m.group(3).strip()], lo_open=m.group(2) != "="
            )
        found = self.bracketed(s)
        if found is not None:
            return found
        if _CUP.search(s):
            parts = [self.bracketed(p.strip()) for p in _split(s, r"\\cup(?![A-Za-z])")]
            if not all(isinstance(p, Seq) and p.kind == "ivl" for p in parts):
                raise Unsure
            return Seq("union", parts)
        parts = _split(s)
        if len(parts) > 1:
            return Seq("set", [self.scalar(p) for p in parts])
        pm = _PM.search(s)
        if pm:  # a \pm b is the set {a + b, a - b}
            if pm.start() == 0:
                base, delta = Num.zero(), self.scalar(s[pm.end() :])
            else:
                left, right = _split(s, _PM.pattern)
                base, delta = self.scalar(left), self.scalar(right)
            if not delta.terms or base.inf or delta.inf:
                raise Unsure
            out = Seq("set", [base.plus(delta), base.minus(delta)])
            out.written = False  # the order latex2sympy keeps them in is not needed
            return out
        return self.scalar(s)


def parse_answer(s: str, allow_i: bool = False) -> Seq | Num:
    """latex2sympy's reading of a normalized answer as exact values; `Unsure` outside the grammar.

    Args:
        s: the answer after math-verify's `normalize_latex`.
        allow_i: read `i` as a plain variable (math-verify does unless the answer looks complex).
    """
    return _Reader(allow_i).answer(s)
