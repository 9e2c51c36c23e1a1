"""Answer text cleanup before grading: Unicode math forms, wrappers, and the data sets' gold-answer quirks."""

from __future__ import annotations

import re

# ------------------------------------------------------------------------------------------------ Unicode

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_SPACES = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
# LaTeX for the math characters models write; a trailing space keeps a following letter out of the command.
_SYMBOLS = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash, written for a minus
    "\u2012": "-",
    "\ufe63": "-",
    "\u00d7": "\\times ",
    "\u00f7": "\\div ",
    "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ",
    "\u2219": "\\cdot ",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\neq ",
    "\u00b1": "\\pm ",
    "\u2213": "\\mp ",
    "\u222a": "\\cup ",
    "\u2229": "\\cap ",
    "\u2208": "\\in ",
    "\u00b0": "^{\\circ}",
    "\u2044": "/",  # fraction slash
}
_VULGAR = {
    "\u00bd": (1, 2), "\u2153": (1, 3), "\u2154": (2, 3), "\u00bc": (1, 4), "\u00be": (3, 4),
    "\u2155": (1, 5), "\u2156": (2, 5), "\u2157": (3, 5), "\u2158": (4, 5), "\u2159": (1, 6),
    "\u215a": (5, 6), "\u2150": (1, 7), "\u215b": (1, 8), "\u215c": (3, 8), "\u215d": (5, 8),
    "\u215e": (7, 8), "\u2151": (1, 9), "\u2152": (1, 10),
}  # fmt: skip
_TABLE: dict[int, str | None] = {ord(c): None for c in _INVISIBLE}
_TABLE.update({ord(c): " " for c in _SPACES})
_TABLE.update({ord(c): s for c, s in _SYMBOLS.items()})
# `1½` is a mixed number in LaTeX too (`1\frac{1}{2}`), as math-verify reads it.
_TABLE.update({ord(c): f"\\frac{{{a}}}{{{b}}}" for c, (a, b) in _VULGAR.items()})
_TABLE.update({c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})  # full-width ASCII
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ⁿ", "0123456789+-()n")
_SUBSCRIPT = str.maketrans("₀₁₂₃₄₅₆₇₈₉₊₋₍₎", "0123456789+-()")
_SUPERSCRIPTS = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ⁿ]+")
_SUBSCRIPTS = re.compile("[₀₁₂₃₄₅₆₇₈₉₊₋₍₎]+")
_ROOT = re.compile(r"([√∛∜])\s*(\{[^{}]*\}|\([^()]*\)|\d+(?:\.\d+)?|\\[A-Za-z]+|[A-Za-z])?")
_ROOT_INDEX = {"√": "", "∛": "[3]", "∜": "[4]"}


def _root(m: re.Match) -> str:
    arg = m.group(2)
    if arg is None:
        return "\\sqrt" + _ROOT_INDEX[m.group(1)]
    if arg[0] in "({":
        arg = arg[1:-1]
    return f"\\sqrt{_ROOT_INDEX[m.group(1)]}{{{arg}}}"


def normalize_unicode(text: str) -> str:
    """`text` with Unicode math written as LaTeX: `½` -> `\\frac{1}{2}`, `√2` -> `\\sqrt{2}`, `x²` -> `x^{2}`,
    `π` -> `\\pi`, `−` -> `-`, full-width digits to ASCII; zero-width characters dropped, odd spaces made plain."""
    if text.isascii():
        return text
    text = text.translate(_TABLE)
    if not text.isascii():
        text = _SUPERSCRIPTS.sub(lambda m: "^{" + m.group().translate(_SUPERSCRIPT) + "}", text)
        text = _SUBSCRIPTS.sub(lambda m: "_{" + m.group().translate(_SUBSCRIPT) + "}", text)
        text = _ROOT.sub(_root, text)
    return text


# ------------------------------------------------------------------------------------------------ wrappers


def strip_wrappers(s: str) -> str:
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


# ------------------------------------------------------------------------------------ math answers as LaTeX

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


def math_latex(answer: str) -> str:
    """A short answer (gold or box content) as one `$...$` math string for math-verify.

    Data sets write golds like `20 $cm^{2}$`, `$2$ or $-2$`, `$221,$8$` or `\\$18.90`: a currency `\\$` is
    dropped, a list of `$...$` answers becomes one comma-separated list, one `$...$` among plain words is
    taken alone, any other `$` is dropped; then a trailing unit after a number and an integral `.0` go.
    Returns `""` for an empty answer.
    """
    s = answer.strip().replace("\\$", "")
    if _SEGMENT_LIST.match(s):
        s = ", ".join(seg.strip() for seg in re.findall(r"\$([^$]*)\$", s))
    else:
        s = strip_wrappers(s)
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
