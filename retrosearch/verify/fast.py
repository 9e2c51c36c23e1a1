"""Exact verdicts without sympy for the common answer forms, given only where math-verify's verdict is certain.

Both answers are first normalized by math-verify's own `normalize_latex` (so units, `\\dfrac`, `\\left(` ... are
read as math-verify reads them), then parsed by a small grammar into exact values: sums of products of
rationals, square roots, powers of pi and variables. Sets, tuples, intervals, unions, matrices follow
latex2sympy's construction rules and math-verify's comparison rules (`grader.sympy_expr_eq`). Where a
decimal (a sympy Float) is involved, math-verify compares rounded values, so "equal" needs exactly equal
numbers and "unequal" a clear gap; anything else - and any form outside the grammar - returns `None` and
math-verify decides.
"""

from __future__ import annotations

import re
from typing import Any

from retrosearch.verify.fast_forms import Seq, less, parse_answer
from retrosearch.verify.fast_values import NUMBER_KINDS, Num, Unsure

#: What the comparisons return: `True` (math-verify says equal), `False` (it says different), `None` (ask it).
Certain = bool | None

_INT = re.compile(r"-?\d+")
_NORMALIZE: list[Any] = []  # (normalize_latex, its config, should_treat_as_complex) once imported


def _normalized(content: str) -> str:
    if not _NORMALIZE:
        from latex2sympy2_extended.latex2sympy2 import normalize_latex
        from math_verify.grader import should_treat_as_complex
        from math_verify.parser import LatexExtractionConfig

        _NORMALIZE.append(
            (normalize_latex, LatexExtractionConfig().normalization_config, should_treat_as_complex)
        )
    fn, config, _ = _NORMALIZE[0]
    return fn(content, config)


def _read(normalized: str) -> Seq | Num:
    return parse_answer(normalized, allow_i=not _NORMALIZE[0][2](normalized))


# ------------------------------------------------------------------------------------------------ comparing


def _all(results: list[Certain]) -> Certain:
    if any(r is False for r in results):
        return False
    return True if all(r is True for r in results) else None


def scalar_equal(g: Num, p: Num) -> Certain:
    """math-verify's `sympy_expr_eq` on two scalars: symbols by name, numbers numerically (rounded to 6
    decimals where a Float is involved), then symbolic equality."""
    if g.inf or p.inf:
        if g.inf and p.inf:
            return g.inf == p.inf
        return False if (g if p.inf else p).constant else None
    if g.kind == "sym" or p.kind == "sym":  # sympy_compare_symbols: names, else str(gold) == str(pred)
        if g.kind == p.kind:
            return g.terms == p.terms
        other = p if g.kind == "sym" else g
        ((m, k, names), c), *more = other.terms.items() or [((1, 0, ()), 0)]
        if not more and c == 1 and (m, k) == (1, 0) and all(e == 1 for _, e in names):
            return None  # a product of symbols: compared by its concatenated name
        return False
    if g.terms == p.terms:
        if not (g.inexact or p.inexact):
            return True
        # A Float against an equal number: both round to the same 6 decimals unless on a rounding tie.
        if g.kind in NUMBER_KINDS and p.kind in NUMBER_KINDS and (g.value() * 10**6).denominator == 1:
            return True
        return None
    if g.kind == p.kind == "int":
        return False
    diff = g.minus(p)
    if not diff.constant:  # a nonzero polynomial: neither numerically nor symbolically zero
        return None if g.inexact or p.inexact else False
    if (g.inexact or p.inexact) and not (g.constant and p.constant):
        return None
    d = abs(diff.real())
    sizes = [abs(float(c)) for c in (*g.terms.values(), *p.terms.values())]
    if g.constant and p.constant:
        sizes += [abs(g.real()), abs(p.real())]
    scale = max([1.0, *sizes])
    if scale > 1e12 or d <= 1e-9 * scale:
        return None  # too close to call: evalf's precision, chop
    if (g.inexact or p.inexact) and d <= 2e-6:
        return None  # math-verify rounds Floats to 6 decimals
    return False


def _sorted(items: list[Num]) -> list[Num]:
    if any(x.inf or not x.constant for x in items):
        raise Unsure
    out = sorted(items, key=lambda x: x.real())
    for a, b in zip(out, out[1:]):
        less(a, b)  # Unsure when two elements are too close to order as sympy would
    return out


def _deep(g: Seq, p: Seq) -> Certain:
    """`sympy_deep_compare_set_and_tuple`: same size, then element by element (sets sorted by value)."""
    g_items = g.unique() if g.kind in ("set", "sset") else g.items
    p_items = p.unique() if p.kind in ("set", "sset") else p.items
    if len(g_items) != len(p_items):
        return False
    if g.kind in ("set", "sset"):
        g_items, p_items = _sorted(g_items), _sorted(p_items)
    elif p.kind == "set":  # a tuple against latex2sympy's set: the set as written, duplicates kept
        if len(p.items) != len(p_items) or not p.written:
            raise Unsure
        p_items = p.items
    elif p.kind == "sset":
        p_items = _sorted(p_items)
    return _all([scalar_equal(a, b) for a, b in zip(g_items, p_items)])


def _canonical(x: Seq) -> list[tuple]:
    """A union of intervals as disjoint sorted intervals `(lo, hi, lo_open, hi_open)`."""
    parts = x.items if x.kind == "union" else [x]
    ends = [e for part in parts for e in part.items]
    if any(e.inexact or not e.constant for e in ends):
        raise Unsure  # sympy's set algebra on Floats is not ours to predict
    spans = [(part.items[0], part.items[1], part.lo_open, part.hi_open) for part in parts]
    spans.sort(key=lambda t: (-1e300 if t[0].inf < 0 else t[0].real(), t[2]))
    for a, b in zip(spans, spans[1:]):
        if not less(a[0], b[0]) and not (a[0].terms == b[0].terms and a[0].inf == b[0].inf):
            raise Unsure
    out: list[list] = []
    for lo, hi, lo_open, hi_open in spans:
        if out:
            last = out[-1]
            touching = not less(last[1], lo) and not less(lo, last[1])
            if less(lo, last[1]) or (touching and not (last[3] and lo_open)):
                if less(last[1], hi):
                    last[1], last[3] = hi, hi_open
                elif not less(hi, last[1]):
                    last[3] = last[3] and hi_open
                continue
        out.append([lo, hi, lo_open, hi_open])
    return [
        (lo.inf, tuple(sorted(lo.terms.items())), hi.inf, tuple(sorted(hi.terms.items())), a, b)
        for lo, hi, a, b in out
    ]


def _mentions(x: Num, var: Num) -> bool:
    ((name, _),) = next(iter(var.terms))[2]
    return any(name in dict(mono[2]) for mono in x.terms)


def _assignments_equal(g: Seq, p: Seq) -> Certain:
    """`sympy_compare_relational` on `x = a` against `y = b`: `x - a` against `y - b`, then flipped, then the
    solutions; `x \\in S` against `x \\in S'` only as the same relation written alike."""
    (gv, a, g_text), (pv, b, p_text) = g.items, p.items
    if g.lo_open or p.lo_open:
        if (
            g.lo_open
            and p.lo_open
            and gv.terms == pv.terms
            and g_text.replace(" ", "") == p_text.replace(" ", "")
        ):
            return True
        raise Unsure
    if a.inexact or b.inexact:
        raise Unsure
    for other in (pv.minus(b), b.minus(pv)):
        same = scalar_equal(gv.minus(a), other)
        if same is not False:
            return same
    # Solving x = a and x = b for the same variable gives different values; x = 5 and y = 5 different keys.
    if (gv.terms == pv.terms and not (_mentions(a, gv) or _mentions(b, gv))) or (a.constant and b.constant):
        return False
    raise Unsure


def answer_equal(g: Seq | Num, p: Seq | Num) -> Certain:
    """math-verify's `sympy_expr_eq(gold, pred)` on parsed answers."""
    g_kind = g.kind if isinstance(g, Seq) else "num"
    p_kind = p.kind if isinstance(p, Seq) else "num"
    if g_kind == "assign" or p_kind == "assign":  # x = 5 against 5 compares the value
        if g_kind == p_kind:
            return _assignments_equal(g, p)  # type: ignore[arg-type]
        gold = g.items[1] if isinstance(g, Seq) and g_kind == "assign" else g
        pred = p.items[1] if isinstance(p, Seq) and p_kind == "assign" else p
        return answer_equal(gold, pred)
    if g_kind == "matrix" or p_kind == "matrix":
        if g_kind == p_kind:
            rows_g, rows_p = g.items, p.items  # type: ignore[union-attr]
            if (len(rows_g), len(rows_g[0])) != (len(rows_p), len(rows_p[0])):
                return False
            return _all([scalar_equal(x, y) for rg, rp in zip(rows_g, rows_p) for x, y in zip(rg, rp)])
        return False  # a matrix against anything else: sympy cannot subtract them
    if isinstance(g, Num) and isinstance(p, Num):
        return scalar_equal(g, p)
    a = g if isinstance(g, Seq) else Seq("sset", [g])
    b = p if isinstance(p, Seq) else Seq("sset", [p])
    if "union" in (a.kind, b.kind):  # compared as sets of points
        if {a.kind, b.kind} <= {"union", "ivl"}:
            return _canonical(a) == _canonical(b)
        single = b if a.kind == "union" else a
        if single.kind == "sset" and all(x.constant and not x.inf for x in single.items):
            return False
        return None
    if a.kind == "empty" or b.kind == "empty":
        return a.kind == b.kind
    if a.kind == "ivl" and b.kind == "ivl":
        if (a.lo_open, a.hi_open) != (b.lo_open, b.hi_open):
            return False
        return _all([scalar_equal(a.items[0], b.items[0]), scalar_equal(a.items[1], b.items[1])])
    # An open interval (a, b) also equals the pair (a, b): latex2sympy cannot tell them apart.
    if a.kind == "ivl":
        return _deep(_as_pair(a), b) if a.lo_open and a.hi_open and b.size() == 2 else False
    if b.kind == "ivl":
        return _deep(a, _as_pair(b)) if b.lo_open and b.hi_open and a.size() == 2 else False
    return _deep(a, b)


def _as_pair(ivl: Seq) -> Seq:
    return Seq("tuple", list(ivl.items))


# ------------------------------------------------------------------------------------------------ verdict


def _plain(latex: str) -> str | None:
    """The content of a `$...$` string that math-verify's parse reads as one inline-math match, else `None`."""
    s = latex[1:-1] if latex.startswith("$") and latex.endswith("$") and len(latex) > 2 else None
    if s is None or "$" in s or "\n" in s or s.endswith("\\") or len(s) > 500:
        return None
    low = s.lower()
    return None if "answer" in low or "boxed" in low else s


def fast_verdict(pred_latex: str, gold_latex: str) -> tuple[bool, str] | None:
    """`(equal, reason)` where math-verify's `verify(parse(gold_latex), parse(pred_latex))` is certain to say
    `equal`, else `None`. Both arguments are `$...$` strings as `math_latex` makes them."""
    p, g = _plain(pred_latex), _plain(gold_latex)
    if p is None or g is None:
        return None
    try:
        if _INT.fullmatch(p) and _INT.fullmatch(g):
            same = int(p) == int(g)  # Integers: exact; normalization leaves them alone
            return same, f"{p} {'equals' if same else 'differs from'} {g}"
        pn, gn = _normalized(p), _normalized(g)
        if pn and pn == gn:
            return True, f"{p!r} equals {g!r} as written"
        if not pn or not gn:
            return None
        same = answer_equal(_read(gn), _read(pn))
    except Exception:  # Unsure, or anything unexpected: math-verify decides
        return None
    if same is None:
        return None
    return same, f"{p!r} {'equals' if same else 'differs from'} {g!r}"
