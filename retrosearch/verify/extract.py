"""Finding the final answer in a response (boxes, "the answer is", `####`) and the gold answer in a data row."""

from __future__ import annotations

import re

from retrosearch.text import find_boxed
from retrosearch.verify.base import Gold
from retrosearch.verify.normalize import normalize_unicode, strip_wrappers

# What may stand between two boxes of one multi-part answer (`\boxed{1} and \boxed{-2}`,
# `x = \boxed{1}, y = \boxed{2}`, `(a) \boxed{3} (b) \boxed{5}`): anything else, such as "Wait, no:", means
# the later box replaces the earlier one.
_JOINER = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;&.]|\\\\|\\q?quad\b|\\[,;:! ]|\band\b|\bor\b"
    r"|\\(?:text|mathrm)\s*\{\s*(?:and|or|,)?\s*\}|\((?:[a-h]|i{1,3}|iv|v)\)"
    r"|[A-Za-z](?:_\{?\w+\}?)?\s*=)*"
)
_JOINER_MAX = 60
# A box opening; `find_boxed` lists only the balanced ones, so an opening after the last of them is unclosed.
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")

_MARKER = re.compile(r"\b(?:final\s+answer|answer)\s*(?:is\b|:|=)|####", re.IGNORECASE)
_MATH_START = re.compile(r"\$\$(?P<a>.+?)\$\$|\$(?P<b>[^$]+)\$|\\\((?P<c>.+?)\\\)|\\\[(?P<d>.+?)\\\]")
# The end of the answer's sentence: a period, `;`, `!` or `?` before a space or the end (not a decimal point).
_CLAUSE_END = re.compile(r"[.;!?](?=\s|$)")
# Reasons and remarks after the answer: "34, because ...", "12 since ...", "7 (as computed above)".
_REMARK = re.compile(
    r",?\s+(?:because|since|as|so|which|where|when|hence|thus|therefore)\b|\s+\((?:as|see|since|because)\b",
    re.IGNORECASE,
)
# "The largest n is 34": the answer is what follows the verb.
_COPULA = re.compile(r"\s(?:is|are|equals|was|be)\s+", re.IGNORECASE)
_MATHY_START = re.compile(r"[-+(\d\\$]")
_PROSE_WORD = re.compile(r"\s(?!(?:and|or)\b)[A-Za-z]{3,}\b")
_TRAILING_JOIN = re.compile(r"[\s,]+(?:and|or)?\s*$")
_LONG_CLAUSE = 80


def _box_runs(text: str) -> list[list[str]]:
    """The balanced boxes of `text`, grouped into runs of boxes joined only by commas, "and", labels."""
    runs: list[list[str]] = []
    end = None
    for start, stop, content in find_boxed(text):
        if end is not None and start < end:
            continue  # a box inside the previous one: \boxed{\boxed{5}}
        gap = text[end:start] if end is not None else None
        if gap is not None and len(gap) <= _JOINER_MAX and _JOINER.fullmatch(gap):
            runs[-1].append(content.strip())
        else:
            runs.append([content.strip()])
        end = stop
    return runs


def _join(parts: list[str]) -> str:
    return ", ".join(dict.fromkeys(p for p in parts if p))


def final_box(text: str | None) -> str | None:
    """The final boxed answer: the last run of adjacent boxes (one box, or a multi-part answer written as
    `\\boxed{1} and \\boxed{-2}`, joined as `"1, -2"`), or `None` without a balanced box.

    A box followed by prose and another box is a guess and its correction: the later box wins.
    """
    if not text:
        return None
    runs = _box_runs(text)
    return _join(runs[-1]) if runs else None


def unclosed_box(text: str | None) -> bool:
    """Whether the last `\\boxed{` of `text` is never closed (a cut-off answer)."""
    if not text:
        return False
    spans = find_boxed(text)
    tail = text[spans[-1][1] :] if spans else text
    return _BOX_OPEN.search(tail) is not None


def _math_segment(s: str) -> str | None:
    m = _MATH_START.match(s)
    return next(g for g in m.groups() if g is not None).strip() if m else None


def _expression(rest: str) -> str:
    """The answer expression at the start of `rest` (the text after an answer marker, up to the line end):
    a leading `$...$`, else the clause up to the sentence end or a remark ("because ..."), the part after the
    verb of "the largest n is 34", and of a long clause only what comes before the first prose word."""
    s = rest.lstrip(" \t*:")
    math = _math_segment(s)
    if math is not None:
        return math
    s = _REMARK.split(_CLAUSE_END.split(s, 1)[0], 1)[0]
    verb = _COPULA.search(s)
    if verb and verb.start() <= 60 and re.search(r"[A-Za-z]", s[: verb.start()]):
        after = s[verb.end() :]
        if _MATHY_START.match(after):
            math = _math_segment(after)
            if math is not None:
                return math
            s = after
    if len(s) > _LONG_CLAUSE:
        for m in _PROSE_WORD.finditer(s):
            head = s[: m.start()]
            if head.count("{") == head.count("}"):  # not inside \text{...}
                s = _TRAILING_JOIN.sub("", head)
                break
    return strip_wrappers(s)


def marked_answer(text: str) -> str | None:
    """The answer after the last `answer is X` / `Answer: X` / `#### X` marker of `text`, or `None`."""
    for m in reversed(list(_MARKER.finditer(text))):
        line_end = text.find("\n", m.end())
        expr = _expression(text[m.end() : line_end if line_end >= 0 else len(text)])
        if expr and not _BOX_OPEN.search(expr):
            return expr
    return None


def extract_answer(response: str | None) -> str | None:
    """The final answer in a response: the last run of `\\boxed{}` (`final_box`), else the expression after the
    last `answer is X` / `Answer: X` / `#### X`, else `None`. Unicode math (`½`, `√2`) comes back as LaTeX."""
    if not response:
        return None
    response = normalize_unicode(response)
    boxed = final_box(response)
    if boxed is not None:
        return boxed
    return marked_answer(response)


def gold_answer(gold: Gold) -> str:
    """The gold answer as one string, whatever the data set stores.

    A list gives its elements joined with `", "` (one answer per element, boxed or not); an integral float
    gives the integer (`27.0` -> `"27"`); a GSM8K worked solution gives the text after its last `####`; a gold
    with `\\boxed{}` gives the box contents, all boxes as one multi-part answer (a reference does not correct
    itself); Unicode math comes back as LaTeX.

    Raises:
        TypeError: `gold` is `None` or of another type.
    """
    if isinstance(gold, (list, tuple)):
        return ", ".join(gold_answer(g) for g in gold)
    if isinstance(gold, bool) or gold is None or not isinstance(gold, (str, int, float)):
        raise TypeError(f"gold answer must be a str, a number or a list of them, got {type(gold).__name__}")
    if isinstance(gold, float):
        return str(int(gold)) if gold.is_integer() else repr(gold)
    text = normalize_unicode(str(gold)).strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip()
    boxes = [content.strip() for _, _, content in find_boxed(text)]
    return _join(boxes) if boxes else text
