"""Reasoning traces: parse OpenThoughts / R1 / plain strings and rows, segment into thoughts and steps, edit."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from retrosearch.text import Tokenizer, count_tokens, last_boxed, split_steps

__all__ = [
    "DEFAULT_KEYWORDS",
    "Step",
    "Thought",
    "Trace",
    "TraceFormat",
    "TraceFormatError",
]

TraceFormat = Literal["openthoughts", "r1", "plain"]


class TraceFormatError(ValueError):
    """Input that cannot be read as a trace; the message names the field or row and what was expected."""


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

_BOT, _EOT = "<|begin_of_thought|>", "<|end_of_thought|>"
_BOS, _EOS = "<|begin_of_solution|>", "<|end_of_solution|>"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
# Chat-template markers after which the assistant's text starts (DeepSeek-R1 distills, Qwen/ChatML).
_ASSISTANT_MARKERS = ("<｜Assistant｜>", "<|im_start|>assistant\n")
_USER_TURN = (
    re.compile(r"<｜User｜>(.*?)<｜Assistant｜>", re.S),
    re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.S),
)

# Default wrappers per format, used when a trace is built by hand or when an edit closes a truncated trace.
_DEFAULT_HEAD = {"openthoughts": _BOT + "\n\n", "r1": _THINK_OPEN + "\n", "plain": ""}
_DEFAULT_MID = {
    "openthoughts": "\n\n" + _EOT + "\n\n" + _BOS + "\n\n",
    "r1": "\n" + _THINK_CLOSE + "\n\n",
    "plain": "\n\n",
}
_DEFAULT_TAIL = {"openthoughts": "\n\n" + _EOS, "r1": "", "plain": ""}
# Marker whose presence in a parsed wrapper means the original closed that part (so the wrapper is kept on edit).
_CLOSE_MARK = {"openthoughts": _EOT, "r1": _THINK_CLOSE, "plain": None}
_TAIL_MARK = {"openthoughts": _EOS, "r1": None, "plain": None}

_QUESTION_KEYS = ("question", "problem", "prompt")
_RESPONSE_KEYS = ("response", "full_response", "completion", "output", "trace", "generation")
_GOLD_KEYS = ("gold", "gold_answer", "answer", "ground_truth")
_CONV_KEYS = ("conversations", "messages")
_ASSISTANT_ROLES = ("assistant", "gpt", "model")
_USER_ROLES = ("user", "human")

Path = tuple[Any, ...]


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


def _check_keywords(keywords: Any) -> tuple[str, ...]:
    if isinstance(keywords, str) or not all(isinstance(k, str) and k for k in keywords):
        raise TraceFormatError(f"keywords: expected a sequence of non-empty strings, got {keywords!r}")
    return tuple(keywords)


def _segment(thinking: str, keywords: tuple[str, ...]) -> tuple[Thought, ...]:
    if not thinking:
        return ()
    steps = [Step(text, sep) for text, sep in split_steps(thinking)]
    rx = _keyword_regex(keywords)
    thoughts: list[Thought] = []
    current: list[Step] = []
    keyword: str | None = None
    for step in steps:
        m = rx.match(step.text) if rx is not None else None
        if m is not None and current:
            thoughts.append(Thought(tuple(current), keyword))
            current, keyword = [], m.group()
        current.append(step)
    thoughts.append(Thought(tuple(current), keyword))
    return tuple(thoughts)


def _strip_split(body: str) -> tuple[str, str, str]:
    """`body` as (leading whitespace, stripped text, trailing whitespace)."""
    core = body.strip()
    if not core:
        return body, "", ""
    lead = len(body) - len(body.lstrip())
    return body[:lead], core, body[lead + len(core) :]


def _assistant_start(s: str, end: int) -> int:
    """Offset just after the last chat-template assistant marker before `end`, or 0."""
    best = 0
    for marker in _ASSISTANT_MARKERS:
        i = s.rfind(marker, 0, end)
        if i >= 0:
            best = max(best, i + len(marker))
    return best


def _split_string(s: str) -> dict[str, Any]:
    """Cut a raw assistant string into head / thinking / mid / solution / tail (concatenation == `s`)."""
    if _BOT in s or _EOT in s:
        fmt: TraceFormat = "openthoughts"
        b = s.find(_BOT)
        body_start = b + len(_BOT) if b >= 0 else _assistant_start(s, s.find(_EOT))
        close = s.find(_EOT, body_start)
    elif _THINK_OPEN in s or _THINK_CLOSE in s:
        fmt = "r1"
        o = s.find(_THINK_OPEN)
        if o >= 0:
            body_start = o + len(_THINK_OPEN)
            close = s.find(_THINK_CLOSE, body_start)
        else:
            close = s.find(_THINK_CLOSE)
            body_start = _assistant_start(s, close)
    else:
        fmt = "plain"
        body_start, close = _assistant_start(s, len(s)), -1
    body_end = close if close >= 0 else len(s)
    lead, thinking, trail = _strip_split(s[body_start:body_end])
    head = s[:body_start] + lead
    if close < 0:
        # Truncated (or plain): nothing closes the thinking; its trailing whitespace is the only wrapper left.
        # Plain text counts as complete when its last step gives a boxed answer: cut-off R1 traces often hold
        # a `\boxed{}` from an intermediate check, but not in their last (cut) paragraph.
        complete = fmt == "plain" and last_boxed(_last_step(thinking)) is not None
        return dict(
            format=fmt, head=head, thinking=thinking, mid=trail, solution=None, tail="", complete=complete
        )
    if fmt == "openthoughts":
        rest_start = close + len(_EOT)
        bs = s.find(_BOS, rest_start)
        sol_start = bs + len(_BOS) if bs >= 0 else rest_start
        es = s.find(_EOS, sol_start)
    else:
        sol_start = close + len(_THINK_CLOSE)
        es = -1
    sol_end = es if es >= 0 else len(s)
    slead, solution, strail = _strip_split(s[sol_start:sol_end])
    mid = trail + s[close:sol_start] + slead
    tail = strail + (s[es:] if es >= 0 else "")
    complete = fmt == "r1" or es >= 0
    return dict(
        format=fmt, head=head, thinking=thinking, mid=mid, solution=solution, tail=tail, complete=complete
    )


def _last_step(thinking: str) -> str:
    return split_steps(thinking)[-1][0] if thinking else ""


def _question_from_chat(head: str) -> str | None:
    for rx in _USER_TURN:
        found = rx.findall(head)
        if found:
            return found[-1]
    return None


def _get(row: Any, path: Path) -> Any:
    for k in path:
        row = row[k]
    return row


def _set(row: Any, path: Path, value: Any) -> None:
    for k in path[:-1]:
        row = row[k]
    row[path[-1]] = value


def _str_field(value: Any, name: str, *, allow_none: bool = True, allow_number: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        return value
    if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    expected = "a string" + (" or a number" if allow_number else "") + (" or null" if allow_none else "")
    raise TraceFormatError(f"field {name!r}: expected {expected}, got {type(value).__name__}")


def _first_key(row: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in row), None)


def _message_role_and_text(msg: Any, where: str) -> tuple[str, str, str]:
    """(role, text, text key) of one chat message in either ShareGPT or role/content style."""
    if not isinstance(msg, Mapping):
        raise TraceFormatError(
            f"{where}: expected an object with 'from'/'value' or 'role'/'content', got {type(msg).__name__}"
        )
    if "from" in msg and "value" in msg:
        role_key, text_key = "from", "value"
    elif "role" in msg and "content" in msg:
        role_key, text_key = "role", "content"
    else:
        raise TraceFormatError(
            f"{where}: expected keys 'from'/'value' or 'role'/'content', got {sorted(msg)}"
        )
    role = msg[role_key]
    if not isinstance(role, str):
        raise TraceFormatError(f"{where}.{role_key}: expected a string, got {type(role).__name__}")
    text = msg[text_key]
    return role.lower(), text, text_key


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
    # The input row (a private copy) and where its response / question / gold live, for `to_row`.
    _row: dict[str, Any] | None = field(default=None, repr=False, compare=False, hash=False)
    _paths: tuple[Path | None, Path | None, Path | None] = field(
        default=(None, None, None), repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.format not in _DEFAULT_MID:
            raise TraceFormatError(f"format: expected 'openthoughts', 'r1' or 'plain', got {self.format!r}")
        if not isinstance(self.thinking, str):
            raise TraceFormatError(f"thinking: expected a string, got {type(self.thinking).__name__}")
        _str_field(self.solution, "solution")
        _str_field(self.question, "question")
        _str_field(self.gold, "gold")
        object.__setattr__(self, "keywords", _check_keywords(self.keywords))
        closed = self.complete or self.solution is not None
        if self._head is None:
            object.__setattr__(self, "_head", _DEFAULT_HEAD[self.format])
        if self._mid is None:
            object.__setattr__(self, "_mid", _DEFAULT_MID[self.format] if closed else "")
        if self._tail is None:
            object.__setattr__(self, "_tail", _DEFAULT_TAIL[self.format] if self.complete else "")

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
                chat-formatted text whose prompt part is kept verbatim, or plain text); an OpenThoughts row
                `{"system", "conversations": [{"from", "value"}, ...]}` (or `role`/`content` messages, or a
                `messages` list); or a flat row with the question in `question`/`problem`/`prompt`, the
                response in `response`/`full_response`/`completion`/`output`/`trace`/`generation` and the gold
                answer in `gold`/`gold_answer`/`answer`/`ground_truth`.
            question: Overrides the question found in `obj`.
            gold: Overrides the gold answer found in `obj`.
            keywords: Transition keywords for the thought segmentation.

        Raises:
            TraceFormatError: `obj` is of another type, or a row lacks a response / has a non-string value.
        """
        keywords = _check_keywords(keywords)
        question = _str_field(question, "question")
        gold = _str_field(gold, "gold", allow_number=True)
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
            parts = _split_string(obj)
            if question is None:
                question = _question_from_chat(parts["head"])
            return cls._from_parts(parts, question=question, gold=gold, keywords=keywords)
        if isinstance(obj, Mapping):
            return cls._from_row(obj, question=question, gold=gold, keywords=keywords)
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

    @classmethod
    def _from_row(
        cls, row: Mapping[str, Any], *, question: str | None, gold: str | None, keywords: tuple[str, ...]
    ) -> Trace:
        row = copy.deepcopy(dict(row))
        q_path: Path | None = None
        g_path: Path | None = None
        conv_key = _first_key(row, _CONV_KEYS)
        if conv_key is not None:
            conv = row[conv_key]
            if not isinstance(conv, list):
                raise TraceFormatError(
                    f"field {conv_key!r}: expected a list of messages, got {type(conv).__name__}"
                )
            assistant_i = user_i = None
            for i, msg in enumerate(conv):
                role, _, _ = _message_role_and_text(msg, f"{conv_key}[{i}]")
                if role in _ASSISTANT_ROLES:
                    assistant_i = i
            if assistant_i is None:
                raise TraceFormatError(
                    f"field {conv_key!r}: expected an assistant turn (from/role 'assistant' or 'gpt'), found none"
                )
            for i in range(assistant_i - 1, -1, -1):
                if _message_role_and_text(conv[i], f"{conv_key}[{i}]")[0] in _USER_ROLES:
                    user_i = i
                    break
            _, text, text_key = _message_role_and_text(conv[assistant_i], f"{conv_key}[{assistant_i}]")
            r_path: Path = (conv_key, assistant_i, text_key)
            response = _str_field(text, f"{conv_key}[{assistant_i}].{text_key}", allow_none=False)
            if user_i is not None:
                _, utext, ukey = _message_role_and_text(conv[user_i], f"{conv_key}[{user_i}]")
                q_path = (conv_key, user_i, ukey)
                row_question = _str_field(utext, f"{conv_key}[{user_i}].{ukey}")
            else:
                row_question = None
            consumed = {conv_key}
        else:
            r_key = _first_key(row, _RESPONSE_KEYS)
            if r_key is None:
                raise TraceFormatError(
                    f"row: expected a response field (one of {', '.join(_RESPONSE_KEYS)}) or a 'conversations' "
                    f"list, got keys {sorted(row)}"
                )
            r_path = (r_key,)
            response = _str_field(row[r_key], r_key, allow_none=False)
            q_key = _first_key(row, _QUESTION_KEYS)
            q_path = (q_key,) if q_key is not None else None
            row_question = _str_field(row[q_key], q_key) if q_key is not None else None
            consumed = {r_key} | ({q_key} if q_key else set())
        g_key = _first_key(row, _GOLD_KEYS)
        if g_key is not None:
            g_path = (g_key,)
            row_gold = _str_field(row[g_key], g_key, allow_number=True)
            consumed.add(g_key)
        else:
            row_gold = None
        assert isinstance(response, str)
        parts = _split_string(response)
        if question is None:
            question = row_question if row_question is not None else _question_from_chat(parts["head"])
        metadata = {k: v for k, v in row.items() if k not in consumed}
        return cls._from_parts(
            parts,
            question=question,
            gold=gold if gold is not None else row_gold,
            keywords=keywords,
            metadata=metadata,
            _row=row,
            _paths=(r_path, q_path, g_path),
        )

    # ---------------------------------------------------------------- rendering
    def render(self) -> str:
        """The assistant string: for a parsed, unedited trace exactly the string it was parsed from."""
        return f"{self._head}{self.thinking}{self._mid}{self.solution or ''}{self._tail}"

    def to_row(self) -> dict[str, Any]:
        """A data row in the shape the trace came in, with the response replaced by `render()`.

        An OpenThoughts row stays one (same keys, the assistant value replaced); a flat row keeps its keys with the
        response field replaced; the question and gold fields are rewritten only where they changed; `metadata` is
        written back as is. A trace parsed from a string gives an OpenThoughts row for the OpenThoughts format
        (`conversations`, plus `gold` when known) and `{"question", "response", "gold"}` otherwise.
        """
        if self._row is None:
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
        row = copy.deepcopy(self._row)
        row.update(copy.deepcopy(self.metadata))
        r_path, q_path, g_path = self._paths
        assert r_path is not None
        _set(row, r_path, self.render())
        for path, value in ((q_path, self.question), (g_path, self.gold)):
            if path is None:
                continue
            old = _get(row, path)
            if value != (old if old is None or isinstance(old, str) else str(old)):
                _set(row, path, value)
        return row

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
        """Number of thoughts (0 for an empty thinking)."""
        return len(self.thoughts)

    @property
    def num_steps(self) -> int:
        """Number of steps in the thinking."""
        return sum(len(t.steps) for t in self.thoughts)

    @property
    def num_switches(self) -> int:
        """Number of thought switches, `num_thoughts - 1` (0 for an empty thinking)."""
        return max(self.num_thoughts - 1, 0)

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
    def boundary_offset(self, i: int) -> int:
        """Offset in `render()` at the end of thought `i`'s last step, before the blank-line separator.

        Args:
            i: 0-based thought index, `0 <= i < num_thoughts`.
        """
        return len(self._head or "") + self._check_index(i)

    def prefix(self, i: int) -> str:
        """`render()` up to the end of thought `i` (the text a rollout continues from)."""
        return self.render()[: self.boundary_offset(i)]

    def remainder(self, i: int) -> str:
        """`render()` after the end of thought `i` (starts with the separator, if any)."""
        return self.render()[self.boundary_offset(i) :]

    def thinking_before(self, i: int) -> str:
        """The thinking up to the end of thought `i`'s last step."""
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
        if not isinstance(thinking_continuation, str):
            raise TraceFormatError(
                f"thinking_continuation: expected a string, got {type(thinking_continuation).__name__}"
            )
        _str_field(solution, "solution")
        thinking = (self.thinking_before(i) + thinking_continuation).rstrip()
        if solution is not None:
            solution = solution.strip()
        closed = complete or solution is not None
        fmt = self.format
        mark = _CLOSE_MARK[fmt]
        if not closed:
            mid = ""
        elif self.solution is not None and (mark is None or mark in (self._mid or "")):
            mid = self._mid
        else:
            mid = _DEFAULT_MID[fmt]
        tmark = _TAIL_MARK[fmt]
        if not complete:
            tail = ""
        elif self.complete and (tmark is None or tmark in (self._tail or "")):
            tail = self._tail
        else:
            tail = _DEFAULT_TAIL[fmt]
        return replace(self, thinking=thinking, solution=solution, complete=complete, _mid=mid, _tail=tail)

    def num_tokens(
        self, part: Literal["thinking", "solution", "all"] = "thinking", tokenizer: Tokenizer | None = None
    ) -> int:
        """Token count of the thinking, the solution or the whole rendered string.

        Args:
            part: Which text to count.
            tokenizer: A tokenizer (`encode`), a `Backend` or a callable; `None` uses `text.approx_token_count`.
        """
        if part == "thinking":
            text = self.thinking
        elif part == "solution":
            text = self.solution or ""
        elif part == "all":
            text = self.render()
        else:
            raise ValueError(f"part: expected 'thinking', 'solution' or 'all', got {part!r}")
        return count_tokens(text, tokenizer)
