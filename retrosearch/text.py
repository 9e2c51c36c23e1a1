"""Small text helpers shared by the core: `\\boxed{}` extraction and token counting."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Union

#: Anything that turns text into tokens: a callable `str -> list[int]`, or an object with `encode` (a
#: Hugging Face tokenizer) or `tokenize` (a `Backend`).
Tokenizer = Union[Callable[[str], list], Any]  # noqa: UP007 - a runtime alias, kept valid on 3.10

_FALLBACK_TOKEN = re.compile(r"\w+|[^\w\s]")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def approx_token_count(text: str) -> int:
    """Token count without a tokenizer (the documented fallback).

    Counts runs of word characters and single punctuation marks; whitespace is free. Close to a BPE count for
    English prose, an under-count for long numbers and dense LaTeX.
    """
    return sum(1 for _ in _FALLBACK_TOKEN.finditer(text))


def encode(text: str, tokenizer: Tokenizer) -> list[int]:
    """Token ids of `text` (no special tokens added) under a `Backend`, a Hugging Face tokenizer or a callable."""
    if hasattr(tokenizer, "tokenize") and hasattr(tokenizer, "generate"):  # a Backend
        return list(tokenizer.tokenize(text))
    if hasattr(tokenizer, "encode"):
        try:
            out = tokenizer.encode(text, add_special_tokens=False)
        except TypeError:
            out = tokenizer.encode(text)
        # A `tokenizers.Tokenizer` answers with an `Encoding`; its ids are in `.ids`.
        return list(getattr(out, "ids", out))
    return list(tokenizer(text))


def decode(ids: Sequence[int], tokenizer: Tokenizer) -> str:
    """Text of token `ids` (special tokens kept) under anything with a `decode` method.

    Raises:
        TypeError: `tokenizer` cannot decode (a plain callable).
    """
    if not hasattr(tokenizer, "decode"):
        raise TypeError(f"{type(tokenizer).__name__} has no decode method")
    try:
        return tokenizer.decode(list(ids), skip_special_tokens=False)
    except TypeError:
        return tokenizer.decode(list(ids))


def token_cut(ids: Sequence[int], text: str, offset: int, tokenizer: Tokenizer) -> int | None:
    """The index `k` at which `ids` (the tokens of `text`) split into `text[:offset]` and `text[offset:]`.

    Tries the halves' own tokenizations first, then (when `tokenizer` can decode, for non-canonical tokens a
    model may write) decoded prefixes. `None` when no token boundary falls at `offset`.
    """
    ids, head, tail = list(ids), text[:offset], text[offset:]
    h = encode(head, tokenizer)
    if ids[: len(h)] == h and encode(tail, tokenizer) == ids[len(h) :]:
        return len(h)
    try:
        if decode(ids, tokenizer) != text:
            return None
        lo, hi = 0, len(ids)
        while lo < hi:  # the shortest prefix that decodes to at least `offset` characters
            mid = (lo + hi) // 2
            if len(decode(ids[:mid], tokenizer)) < offset:
                lo = mid + 1
            else:
                hi = mid
        if decode(ids[:lo], tokenizer) == head and decode(ids[lo:], tokenizer) == tail:
            return lo
    except TypeError:  # the tokenizer cannot decode
        pass
    return None


def count_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    """Number of tokens in `text` under `tokenizer` (no special tokens added), or `approx_token_count`."""
    if tokenizer is None:
        return approx_token_count(text)
    return len(encode(text, tokenizer)) if text else 0


def find_boxed(text: str) -> list[tuple[int, int, str]]:
    """All `\\boxed{...}` spans of `text` with balanced braces: `(start, end, content)`, in order.

    An unbalanced `\\boxed{` (a cut-off trace) is skipped.
    """
    out = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                i += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth == 0:
            out.append((m.start(), i, text[m.end() : i - 1]))
    return out


def last_boxed(text: str | None) -> str | None:
    """Content of the last balanced `\\boxed{...}` in `text`, or `None`."""
    if not text:
        return None
    spans = find_boxed(text)
    return spans[-1][2] if spans else None


#: A step separator: a maximal whitespace run that holds at least two newlines (a blank line). Any Unicode
#: whitespace counts (`"a\n\xa0\nb"` is two steps), as in `Trace`.
STEP_SEPARATOR = re.compile(r"\s*\n\s*\n\s*")


def split_steps(text: str) -> list[tuple[str, str]]:
    """`text` as `(step, separator that follows it)` pairs; joined back they give `text` exactly.

    A separator at the very start belongs to the first step (hand-built text only); the last pair's separator is
    always `""` (its step is empty when `text` ends with a blank line).
    """
    out: list[tuple[str, str]] = []
    pos = 0
    for m in STEP_SEPARATOR.finditer(text):
        if m.start() == 0:
            continue
        out.append((text[pos : m.start()], m.group()))
        pos = m.end()
    out.append((text[pos:], ""))
    return out


def count_steps(text: str) -> int:
    """Number of steps in `text`: chunks with visible text between blank lines."""
    return sum(1 for step, _ in split_steps(text) if step.strip())


def split_think(text: str, close: str = "</think>", *, open: str = "<think>") -> tuple[str, str | None]:
    """`(thinking, solution)` of a model's output: the text before and after the first `close` tag.

    An `open` tag at the very start is dropped; nothing else is trimmed (callers strip what their format
    needs). `solution` is `None` when the thinking never closed (a cut-off output).
    """
    body = text[len(open) :] if open and text.startswith(open) else text
    thinking, found, solution = body.partition(close)
    return (thinking, solution) if found else (body, None)
