"""Exact values of simple LaTeX scalars, read the way latex2sympy reads them (mixed numbers included)."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

#: The sympy classes a scalar can have that math-verify compares as plain numbers.
NUMBER_KINDS = ("int", "rat", "float")
_MAX_TERMS, _MAX_POWER, _MAX_RADICAND, _MAX_BITS = 64, 12, 10**10, 2048
# Not d (differentials), e (Euler's number), i (imaginary); capitals are read lower-case, but E, I and D not.
_LETTERS = frozenset("abcfghjklmnopqrstuvwxyzABCFGHJKLMNOPQRSTUVWXYZ")
_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d+)?|\.\d+)|\\text\{\s*(\(\s*[A-Za-z]+\s*\)|[A-Za-z ]+)\s*\}|(\\[A-Za-z]+)|([A-Za-z])|([-+*/^_(){}]))"
)
# Words latex2sympy would not read as a plain symbol (\text{pi} equals \pi for math-verify).
_NOT_A_NAME = frozenset(
    {"pi", "oo", "e", "i", "d", "nan", "zoo", "sqrt", "inf", "infty", "exp", "sin", "cos"}
)
_ATOM_START = frozenset({"num", "var", "\\frac", "\\sqrt", "\\pi", "("})
_ONE = (1, 0, ())


class Unsure(Exception):
    """The input is outside the grammar, or its verdict under math-verify is not certain."""


@lru_cache(maxsize=4096)
def _square_free(n: int) -> tuple[int, int]:
    """`(r, s)` with `n == r * r * s` and `s` square-free."""
    if n > _MAX_RADICAND:
        raise Unsure
    r, s, d = 1, 1, 2
    while d * d <= n:
        while n % (d * d) == 0:
            n //= d * d
            r *= d
        if n % d == 0:
            n //= d
            s *= d
        d += 1
    return r, s * n


class Num:
    """A value `sum(c * sqrt(m) * pi**k * vars)` with exact rational `c`, and the sympy class latex2sympy
    gives it: "int", "rat", "float" (a decimal), "sym" (a bare variable) or "other" (an unevaluated sum,
    product, power or root). `inexact` marks a decimal anywhere inside; `inf` is +1/-1 for +-infinity."""

    __slots__ = ("terms", "kind", "inexact", "inf")

    def __init__(self, terms: dict, kind: str = "other", inexact: bool = False, inf: int = 0) -> None:
        self.terms = {mono: c for mono, c in terms.items() if c}
        if len(self.terms) > _MAX_TERMS or any(
            c.numerator.bit_length() > _MAX_BITS or c.denominator.bit_length() > _MAX_BITS
            for c in self.terms.values()
        ):
            raise Unsure  # ((2^{12})^{12})^{12}...: not worth the arithmetic
        self.kind, self.inexact, self.inf = kind, inexact, inf

    @classmethod
    def rational(cls, q: Fraction, inexact: bool = False) -> Num:
        kind = "float" if inexact else ("int" if q.denominator == 1 else "rat")
        return cls({_ONE: q}, kind, inexact)

    @classmethod
    def symbol(cls, name: str) -> Num:
        """A bare sympy Symbol (a variable, or the word of `\\text{word}`)."""
        return cls({(1, 0, ((name, 1),)): Fraction(1)}, "sym")

    @classmethod
    def zero(cls) -> Num:
        return cls({}, "int")

    @property
    def constant(self) -> bool:
        return all(not mono[2] for mono in self.terms)

    def value(self) -> Fraction:
        """The rational value; `Unsure` for anything else."""
        if set(self.terms) - {_ONE}:
            raise Unsure
        return self.terms.get(_ONE, Fraction(0))

    def real(self) -> float:
        if not self.constant or self.inf:
            raise Unsure
        return sum(float(c) * math.sqrt(m) * math.pi**k for (m, k, _), c in self.terms.items())

    def _other(self, terms: dict, other: Num) -> Num:
        return Num(terms, "other", self.inexact or other.inexact)

    def plus(self, other: Num) -> Num:
        terms = dict(self.terms)
        for mono, c in other.terms.items():
            terms[mono] = terms.get(mono, 0) + c
        return self._other(terms, other)

    def negate(self) -> Num:
        kind = self.kind if self.kind in NUMBER_KINDS else "other"
        return Num({mono: -c for mono, c in self.terms.items()}, kind, self.inexact)

    def minus(self, other: Num) -> Num:
        return self.plus(other.negate())

    def times(self, other: Num) -> Num:
        terms: dict = {}
        for (m1, k1, v1), c1 in self.terms.items():
            for (m2, k2, v2), c2 in other.terms.items():
                g = math.gcd(m1, m2)  # sqrt(m1) * sqrt(m2) = g * sqrt(m1 m2 / g^2), both square-free
                powers = dict(v1)
                for name, e in v2:
                    powers[name] = powers.get(name, 0) + e
                if abs(k1 + k2) > _MAX_POWER or any(e > 2 * _MAX_POWER for e in powers.values()):
                    raise Unsure
                mono = ((m1 // g) * (m2 // g), k1 + k2, tuple(sorted(powers.items())))
                terms[mono] = terms.get(mono, 0) + c1 * c2 * g
        return self._other(terms, other)

    def divided(self, other: Num) -> Num:
        """`self / other` for a single-term constant `other` (a rational times a root and a power of pi)."""
        if len(other.terms) != 1 or not other.constant:
            raise Unsure
        ((m, k, _), c) = next(iter(other.terms.items()))
        return self.times(Num({(m, -k, ()): 1 / (c * m)}, inexact=other.inexact))

    def power(self, e: int) -> Num:
        if e < 0 and not (self.constant and self.terms):
            raise Unsure
        out = Num({_ONE: Fraction(1)})
        for _ in range(abs(e)):
            out = out.times(self)
        if e < 0:
            out = Num({_ONE: Fraction(1)}).divided(out)
        return Num(out.terms, "other", self.inexact)


#: +infinity and -infinity, indexed by "is negative".
INF = {False: Num({}, "other", inf=1), True: Num({}, "other", inf=-1)}


def _tokens(s: str, allow_i: bool) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            if s[pos:].strip():
                raise Unsure
            break
        pos = m.end()
        num, text, cmd, letter, op = m.groups()
        if num is not None:
            out.append(("num", num))
        elif text is not None:
            name = re.sub(r"[\s()]", "", text).lower()  # latex2sympy's name: \text{(New York)} is newyork
            if name in _NOT_A_NAME:
                raise Unsure
            out.append(("var", name))
        elif cmd is not None:
            out.append(("cmd", cmd))
        elif letter is not None:
            if letter not in _LETTERS and not (letter == "i" and allow_i):
                raise Unsure
            out.append(("var", letter.lower()))
        else:
            out.append(("op", op))
    return out


class _Parser:
    """Recursive descent over latex2sympy's precedence: sums, products (`\\cdot`, `/`), signs, implicit
    products (where an integer before a positive rational makes a mixed number), powers, atoms."""

    def __init__(self, s: str, allow_i: bool) -> None:
        self.toks = _tokens(s, allow_i)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str | None = None, text: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (text and tok[1] != text):
            raise Unsure
        self.i += 1
        return tok[1]

    def braced(self) -> Num:
        self.take("op", "{")
        x = self.expr()
        self.take("op", "}")
        return x

    def expr(self) -> Num:
        x = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            sign = self.take()
            y = self.term()
            x = x.plus(y if sign == "+" else y.negate())
        return x

    def term(self) -> Num:
        x = self.unary()
        while self.peek() in (
            ("op", "*"),
            ("cmd", "\\cdot"),
            ("cmd", "\\times"),
            ("op", "/"),
            ("cmd", "\\div"),
        ):
            op = self.take()
            y = self.unary()
            if op in ("/", "\\div") and x.kind == y.kind == "int":
                if not y.value():
                    raise Unsure
                x = Num.rational(x.value() / y.value())
            else:
                x = x.divided(y) if op in ("/", "\\div") else x.times(y)
                x.kind = "other"
        return x

    def unary(self) -> Num:
        tok = self.peek()
        if tok == ("op", "-"):
            self.take()
            return self.unary().negate()
        if tok == ("op", "+"):
            self.take()
            return self.unary()
        return self.chain()

    def _starts_atom(self) -> bool:
        tok = self.peek()
        return tok is not None and (tok[0] in ("num", "var") or tok[1] in _ATOM_START)

    def chain(self) -> Num:
        items = [self.postfix()]
        while self._starts_atom():
            if self.peek()[0] == "num" and self.toks[self.i - 1][0] == "num":  # type: ignore[index]
                raise Unsure  # "2 3": latex2sympy's reading is not obvious
            items.append(self.postfix())
        x = items[-1]
        for left in reversed(items[:-1]):
            x = _implicit_product(left, x)
        return x

    def postfix(self) -> Num:
        x = self.atom()
        if self.peek() != ("op", "^"):
            return x
        self.take()
        tok = self.peek()
        if tok == ("op", "{"):
            e = self.braced()
        elif tok is not None and tok[0] == "num" and len(tok[1]) == 1:
            e = Num.rational(Fraction(int(self.take())))
        else:
            raise Unsure
        if e.kind != "int" or abs(e.value()) > _MAX_POWER:
            raise Unsure
        return x.power(int(e.value()))

    def atom(self) -> Num:
        tok = self.peek()
        if tok is None:
            raise Unsure
        self.i += 1
        kind, text = tok
        if kind == "num":
            if len(text) > 1 and text[0] == "0" and text[1] != ".":
                raise Unsure  # leading zeros: "1, 000" and "01,000" read oddly
            x = Num.rational(Fraction(text), inexact="." in text)
            if self.peek() == ("op", "_"):  # a base subscript, 52_8: latex2sympy keeps the number
                self.take()
                if self.peek() == ("op", "{"):
                    self.take()
                    self.take("num")
                    self.take("op", "}")
                else:
                    self.take("num")
                if x.inexact:
                    raise Unsure
            return x
        if kind == "var":
            if self.peek() in (("op", "("), ("op", "_")) or (self.peek() or ("",))[0] == "var":
                raise Unsure  # a function call, an indexed name or a multi-letter name
            return Num.symbol(text)
        if text == "\\pi":
            return Num({(1, 1, ()): Fraction(1)})
        if text == "\\frac":
            top, bottom = self.braced(), self.braced()
            if top.kind == bottom.kind == "int":
                if not bottom.value():
                    raise Unsure
                return Num.rational(top.value() / bottom.value())
            return Num(top.divided(bottom).terms, "other", top.inexact or bottom.inexact)
        if text == "\\sqrt":
            arg = self.braced()
            q = arg.value()
            if arg.inexact or q < 0:
                raise Unsure
            r, s = _square_free(q.numerator * q.denominator)
            return Num({(s, 0, ()): Fraction(r, q.denominator)})
        if text == "(":
            x = self.expr()
            self.take("op", ")")
            return x
        raise Unsure


def _implicit_product(left: Num, right: Num) -> Num:
    """latex2sympy's `convert_postfix_list`: `2 \\frac{1}{2}` is 5/2, `2(3)` is 5; other neighbours multiply."""
    if left.kind == "int" and right.kind in ("int", "rat") and right.value() > 0:
        n, r = left.value(), right.value()
        return Num.rational(n - r if n < 0 else n + r)
    x = left.times(right)
    x.kind = "other"
    return x


def parse_scalar(s: str, allow_i: bool = False) -> Num:
    """The value of one scalar (no commas, brackets only as groups); `Unsure` outside the grammar.

    `allow_i`: read `i` as a plain variable, as math-verify does when the answer does not look complex.
    """
    parser = _Parser(s, allow_i)
    x = parser.expr()
    if parser.peek() is not None:
        raise Unsure
    return x
