"""Small text helpers shared by the core: `\\boxed{}` extraction and token counting."""

from __future__ import annotations

import re
from collections.abc import Callable
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
            return list(tokenizer.encode(text, add_special_tokens=False))
        except TypeError:
            return list(tokenizer.encode(text))
    return list(tokenizer(text))


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
