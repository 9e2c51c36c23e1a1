"""Reasoning traces: the `Trace` type, its segmentation into thoughts and steps, and editing."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from retrosearch.formats import (
    CLOSE_MARK,
    DEFAULT_HEAD,
    DEFAULT_MID,
    DEFAULT_TAIL,
    TAIL_MARK,
    RowParts,
    TraceFormat,
    TraceFormatError,
    read_row,
    split_string,
    str_field,
    write_row,
)
from retrosearch.text import last_boxed, split_steps

__all__ = [
    "DEFAULT_KEYWORDS",
    "Step",
    "Thought",
    "Trace",
    "TraceFormat",
    "TraceFormatError",
    "opening_keyword",
]

#: Transition keywords that open a new thought when they start a step (case-sensitive, followed by a
#: non-letter). Chosen with `scripts/keyword_stats.py` over the 2,698 real R1-distill traces in
#: ../shared/data/traces (48,917 steps); number of steps each opens there (longest match wins):
#:   "Wait" 4,382 (+ "Wait a second" 97; mostly "Wait, but" / "Wait, let me" / "Wait, maybe"), "Alternatively" 2,860,
#:   "Hmm" 1,008, "But wait" 405, "But just to" 176 ("... make sure / be thorough"), "Another way" 122,
#:   "But hold on" 112, "Another thought" 101, "Another angle" 83, "Just to make sure" 65, "Hold on" 56,
#:   "Let me double-check" 33, "Let me check" 30, "Let me verify" 11, "Another approach" 10,
#:   "Just to double-check" 6, "On second thought" 0 (kept: a classic switch phrase of larger R1 models).
#: Each marks a *switch*: doubting the current line ("Wait", "Hmm", "Hold on"), trying another route
#: ("Alternatively", "Another way") or going back to verify ("Let me double-check", "Just to make sure").
#: Left out on purpose, because they carry the current line on: "So" 4,397, "First" 3,017, "Therefore" 1,697,
#: "Now" 1,646, "Let me" 1,465 (mostly "Let me compute/write/try"), "Next" 1,143, "Then" 857, and plain "But"
#: 1,248 ("But the ...", "But since ..."; its switching uses are "But wait" / "But hold on" / "But just to").
#: Rare or mostly non-switching: "No," 41 (confirms: "No, that's correct"), "Oh" 37, "However" 23, "Actually" 11.
#: With this list: 4.54 thoughts per trace on average (median 3, max 60), 3.99 steps per thought.
DEFAULT_KEYWORDS: tuple[str, ...] = (
    "Wait",
    "But wait",
    "Alternatively",
    "Hmm",
    "Hold on",
    "But hold on",
    "On second thought",
    "Another way",
    "Another thought",
    "Another angle",
    "Another approach",
    "But just to",
    "Just to make sure",
    "Just to double-check",
    "Let me double-check",
    "Let me check",
    "Let me verify",
)


@dataclass(frozen=True)
class Step:
    """One step of the thinking: a paragraph, with the blank-line whitespace that follows it.

    Attributes:
        text: The step's text (no leading or trailing separator).
        sep: The whitespace run (with >= 2 newlines) after the step, verbatim; `""` for the last step.
    """

    text: str
    sep: str


@dataclass(frozen=True)
class Thought:
    """A run of steps between two transition keywords.

    Attributes:
        steps: The steps, in order (at least one).
        keyword: The keyword that opened this thought; `None` for the first thought.
    """

    steps: tuple[Step, ...]
    keyword: str | None

    @property
    def text(self) -> str:
        """The thought's text, without the separator after its last step."""
        parts = [s.text + s.sep for s in self.steps[:-1]]
        parts.append(self.steps[-1].text)
        return "".join(parts)


@functools.lru_cache(maxsize=64)
def _keyword_regex(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    # Longest first so that "But wait" wins over "But"; the lookahead refuses a following letter ("Waiting").
    alts = "|".join(re.escape(k) for k in sorted(set(keywords), key=len, reverse=True))
    return re.compile(rf"(?:{alts})(?![^\W\d_])")


def opening_keyword(step: str, keywords: tuple[str, ...] = DEFAULT_KEYWORDS) -> str | None:
    """The transition keyword that `step` starts with (the longest one), or `None`: the one rule for a switch.

    Args:
        step: A step's text (no leading whitespace).
        keywords: The transition keywords (case-sensitive; a keyword must not be followed by a letter).
    """
    rx = _keyword_regex(tuple(keywords))
    m = rx.match(step) if rx is not None else None
    return m.group() if m is not None else None


def _check_keywords(keywords: Any) -> tuple[str, ...]:
    if isinstance(keywords, str) or not all(isinstance(k, str) and k for k in keywords):
        raise TraceFormatError(f"keywords: expected a sequence of non-empty strings, got {keywords!r}")
    return tuple(keywords)


def _segment(thinking: str, keywords: tuple[str, ...]) -> tuple[Thought, ...]:
    if not thinking:
        return ()
    steps = [Step(text, sep) for text, sep in split_steps(thinking)]
    thoughts: list[Thought] = []
    current: list[Step] = []
    keyword: str | None = None
    for step in steps:
        opener = opening_keyword(step.text, keywords)
        if opener is not None and current:
            thoughts.append(Thought(tuple(current), keyword))
            current, keyword = [], opener
        current.append(step)
    thoughts.append(Thought(tuple(current), keyword))
    return tuple(thoughts)


@dataclass(frozen=True)
class Trace:
    """A reasoning trace: question, thinking, solution, answers, and the wrapper text needed to render it exactly.

    Build one with `Trace.parse`. Traces are immutable: editing (`replace_remainder`) returns a new one.
    `render()` gives back the parsed string byte for byte: `head + thinking + mid + (solution or "") + tail`,
    where the private wrappers hold the tags and the whitespace around the thinking and the solution.

    Attributes:
        question: The prompt, when known (given, read from a row, or found in a chat-formatted string).
        thinking: The reasoning text without tags and without leading/trailing whitespace.
        solution: The text after the thinking (`None` when the thinking was never closed, or for plain text).
        gold: The reference answer, when given.
        format: `"openthoughts"`, `"r1"` or `"plain"`: how `render` wraps the parts.
        complete: `False` for a truncated trace: no closing tag; for plain text, no `\\boxed{}` answer in the
            last step.
        keywords: Transition keywords used to segment the thinking into thoughts.
        metadata: Extra fields of the input row, written back unchanged by `to_row`.
    """

    question: str | None = None
    thinking: str = ""
    solution: str | None = None
    gold: str | None = None
    format: TraceFormat = "r1"
    complete: bool = True
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    _head: str | None = field(default=None, repr=False)
    _mid: str | None = field(default=None, repr=False)
    _tail: str | None = field(default=None, repr=False)
    # The input row (a private copy) and where its parts live, for `to_row`.
    _source: RowParts | None = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.format not in DEFAULT_MID:
            raise TraceFormatError(f"format: expected 'openthoughts', 'r1' or 'plain', got {self.format!r}")
        if not isinstance(self.thinking, str):
            raise TraceFormatError(f"thinking: expected a string, got {type(self.thinking).__name__}")
        str_field(self.solution, "solution")
        str_field(self.question, "question")
        str_field(self.gold, "gold")
        object.__setattr__(self, "keywords", _check_keywords(self.keywords))
        closed = self.complete or self.solution is not None
        if self._head is None:
            object.__setattr__(self, "_head", DEFAULT_HEAD[self.format])
        if self._mid is None:
            object.__setattr__(self, "_mid", DEFAULT_MID[self.format] if closed else "")
        if self._tail is None:
            object.__setattr__(self, "_tail", DEFAULT_TAIL[self.format] if self.complete else "")

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(
        cls,
        obj: str | Mapping[str, Any] | Trace,
        *,
        question: str | None = None,
        gold: str | None = None,
        keywords: tuple[str, ...] = DEFAULT_KEYWORDS,
    ) -> Trace:
        """Read a trace from a raw assistant string, a data row, or a `Trace` (re-segmented with `keywords`).

        Args:
            obj: A raw string (OpenThoughts markers, R1 `<think>...</think>` with or without the opening tag,
                chat-formatted text whose prompt part is kept verbatim, or plain text), or a data row in one of
                the layouts of `retrosearch.formats.read_row`: OpenThoughts `conversations` (or `messages`),
                OpenThoughts metadata (`problem` / `deepseek_reasoning` / `deepseek_solution` /
                `ground_truth_solution`), or a flat row (`question` / `response` / `gold` and their synonyms).
            question: Overrides the question found in `obj`.
            gold: Overrides the gold answer found in `obj`.
            keywords: Transition keywords for the thought segmentation.

        Raises:
            TraceFormatError: `obj` is of another type, or a row lacks a response / has a non-string value.
        """
        keywords = _check_keywords(keywords)
        question = str_field(question, "question")
        gold = str_field(gold, "gold", allow_number=True)
        if isinstance(obj, Trace):
            if keywords == obj.keywords and question is None and gold is None:
                return obj  # keeps its cached segmentation
            changes: dict[str, Any] = {"keywords": keywords}
            if question is not None:
                changes["question"] = question
            if gold is not None:
                changes["gold"] = gold
            return replace(obj, **changes)
        if isinstance(obj, str):
            parts = split_string(obj)
            return cls._from_parts(
                parts, question=question or parts["question"], gold=gold, keywords=keywords
            )
        if isinstance(obj, Mapping):
            src = read_row(obj)
            parts = split_string(src.response)
            if question is None:
                question = src.question if src.question is not None else parts["question"]
            return cls._from_parts(
                parts,
                question=question,
                gold=gold if gold is not None else src.gold,
                keywords=keywords,
                metadata=src.metadata,
                _source=src,
            )
        raise TraceFormatError(f"trace: expected a str, a dict row or a Trace, got {type(obj).__name__}")

    @classmethod
    def _from_parts(cls, parts: dict[str, Any], **kw: Any) -> Trace:
        return cls(
            thinking=parts["thinking"],
            solution=parts["solution"],
            format=parts["format"],
            complete=parts["complete"],
            _head=parts["head"],
            _mid=parts["mid"],
            _tail=parts["tail"],
            **kw,
        )

    # ---------------------------------------------------------------- rendering
    def render(self) -> str:
        """The assistant string: for a parsed, unedited trace exactly the string it was parsed from."""
        return f"{self._head}{self.thinking}{self._mid}{self.solution or ''}{self._tail}"

    def to_row(self) -> dict[str, Any]:
        """A data row in the shape the trace came in, with the response replaced by `render()`.

        An OpenThoughts row stays one (same keys, the assistant value replaced); a metadata row gets its
        `deepseek_reasoning` / `deepseek_solution` replaced; a flat row keeps its keys with the response field
        replaced; the question and gold fields are rewritten only where they changed; `metadata` is written back
        as is. A trace parsed from a string gives an OpenThoughts row for the OpenThoughts format
        (`conversations`, plus `gold` when known) and `{"question", "response", "gold"}` otherwise.
        """
        if self._source is not None:
            return write_row(self._source, self)
        if self.format == "openthoughts":
            row: dict[str, Any] = {
                **self.metadata,
                "conversations": [
                    {"from": "user", "value": self.question or ""},
                    {"from": "assistant", "value": self.render()},
                ],
            }
            if self.gold is not None:
                row["gold"] = self.gold
            return row
        return {"question": self.question, "response": self.render(), "gold": self.gold, **self.metadata}

    # ------------------------------------------------------------- segmentation
    @cached_property
    def thoughts(self) -> tuple[Thought, ...]:
        """The thinking split into thoughts at transition keywords that start a step."""
        return _segment(self.thinking, self.keywords)

    @property
    def steps(self) -> tuple[Step, ...]:
        """All steps of the thinking, in order."""
        return tuple(s for t in self.thoughts for s in t.steps)

    @property
    def num_thoughts(self) -> int:
        """Number of thoughts (0 for an empty thinking); the thought switches are one fewer."""
        return len(self.thoughts)

    @property
    def num_steps(self) -> int:
        """Number of steps in the thinking."""
        return sum(len(t.steps) for t in self.thoughts)

    @property
    def answer(self) -> str | None:
        """Content of the last `\\boxed{}` of the solution, else of the thinking; `None` when there is none."""
        found = last_boxed(self.solution)
        return found if found is not None else last_boxed(self.thinking)

    @cached_property
    def _thought_ends(self) -> tuple[int, ...]:
        ends, pos = [], 0
        for t in self.thoughts:
            for s in t.steps:
                pos += len(s.text) + len(s.sep)
            ends.append(pos - len(t.steps[-1].sep))
        return tuple(ends)

    def _check_index(self, i: int) -> int:
        n = self.num_thoughts
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
            raise IndexError(f"thought index: expected an int in [0, {n}), got {i!r}")
        return self._thought_ends[i]

    # ------------------------------------------------------------------ editing
    def thinking_before(self, i: int) -> str:
        """The thinking up to the end of thought `i`'s last step, before the blank-line separator (where a
        rollout continues from).

        Args:
            i: 0-based thought index, `0 <= i < num_thoughts`.
        """
        return self.thinking[: self._check_index(i)]

    def thinking_after(self, i: int) -> str:
        """The thinking after the end of thought `i`'s last step (starts with the separator, if any)."""
        return self.thinking[self._check_index(i) :]

    def replace_remainder(
        self, i: int, thinking_continuation: str, solution: str | None, *, complete: bool = True
    ) -> Trace:
        """A new trace, same format and wrappers, that keeps thoughts `0..i` and continues with a rollout.

        The new thinking is `thinking_before(i) + thinking_continuation` (whitespace at its end goes, as in
        `parse`, to the wrapper: the original closing tag and its whitespace are kept) and the solution is
        `solution` (stripped likewise). Wrappers the original lacked because it was truncated get the format's
        defaults (e.g. `"\\n</think>\\n\\n"`).

        Args:
            i: 0-based index of the last kept thought.
            thinking_continuation: The rollout's thinking text after the prefix, usually starting with a separator.
            solution: The rollout's text after the thinking, or `None` if it never closed the thinking.
            complete: `False` when the rollout was cut off.
        """
        return self.replace_at(self._check_index(i), thinking_continuation, solution, complete=complete)

    def replace_at(
        self, offset: int, thinking_continuation: str, solution: str | None, *, complete: bool = True
    ) -> Trace:
        """Like `replace_remainder`, but keeps the thinking up to character `offset` (e.g. just before a query).

        Args:
            offset: Characters of the thinking kept, `0 <= offset <= len(thinking)`.
            thinking_continuation, solution, complete: As in `replace_remainder`.
        """
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= len(self.thinking):
            raise IndexError(f"thinking offset: expected an int in [0, {len(self.thinking)}], got {offset!r}")
        if not isinstance(thinking_continuation, str):
            raise TraceFormatError(
                f"thinking_continuation: expected a string, got {type(thinking_continuation).__name__}"
            )
        str_field(solution, "solution")
        thinking = (self.thinking[:offset] + thinking_continuation).rstrip()
        if solution is not None:
            solution = solution.strip()
        closed = complete or solution is not None
        fmt = self.format
        mark = CLOSE_MARK[fmt]
        if not closed:
            mid = ""
        elif self.solution is not None and (mark is None or mark in (self._mid or "")):
            mid = self._mid
        else:
            mid = DEFAULT_MID[fmt]
        tmark = TAIL_MARK[fmt]
        if not complete:
            tail = ""
        elif self.complete and (tmark is None or tmark in (self._tail or "")):
            tail = self._tail
        else:
            tail = DEFAULT_TAIL[fmt]
        return replace(self, thinking=thinking, solution=solution, complete=complete, _mid=mid, _tail=tail)
