"""Input formats of traces: raw strings (OpenThoughts, R1, chat, plain) and data rows, read and written back."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from retrosearch.text import last_boxed, split_steps, split_think

__all__ = [
    "RowParts",
    "TraceFormat",
    "TraceFormatError",
    "read_row",
    "split_string",
    "str_field",
    "write_row",
]

TraceFormat = Literal["openthoughts", "r1", "plain"]


class TraceFormatError(ValueError):
    """Input that cannot be read as a trace; the message names the field or row and what was expected."""


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
DEFAULT_HEAD = {"openthoughts": _BOT + "\n\n", "r1": _THINK_OPEN + "\n", "plain": ""}
DEFAULT_MID = {
    "openthoughts": "\n\n" + _EOT + "\n\n" + _BOS + "\n\n",
    "r1": "\n" + _THINK_CLOSE + "\n\n",
    "plain": "\n\n",
}
DEFAULT_TAIL = {"openthoughts": "\n\n" + _EOS, "r1": "", "plain": ""}
# Marker whose presence in a parsed wrapper means the original closed that part (so the wrapper is kept on edit).
CLOSE_MARK = {"openthoughts": _EOT, "r1": _THINK_CLOSE, "plain": None}
TAIL_MARK = {"openthoughts": _EOS, "r1": None, "plain": None}

_QUESTION_KEYS = ("question", "problem", "prompt")
_RESPONSE_KEYS = ("response", "full_response", "completion", "output", "trace", "generation")
_GOLD_KEYS = ("gold", "gold_answer", "answer", "ground_truth")
_CONV_KEYS = ("conversations", "messages")
_ASSISTANT_ROLES = ("assistant", "gpt", "model")
_USER_ROLES = ("user", "human")
# OpenThoughts-114k's `metadata` configuration: the thinking and the solution in fields of their own.
_META_FIELDS = ("problem", "deepseek_reasoning", "deepseek_solution")
_META_GOLD = "ground_truth_solution"

Path = tuple[Any, ...]


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


def split_string(s: str) -> dict[str, Any]:
    """Cut a raw assistant string into head / thinking / mid / solution / tail (concatenation == `s`).

    Returns:
        A dict with `format`, `head`, `thinking`, `mid`, `solution` (`None` when the thinking never closed),
        `tail`, `complete`, and `question` (the user turn of a chat-formatted head, else `None`).
    """
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
    parts: dict[str, Any] = dict(format=fmt, head=head, thinking=thinking, question=_question_from_chat(head))
    if close < 0:
        # Truncated (or plain): nothing closes the thinking; its trailing whitespace is the only wrapper left.
        # Plain text counts as complete when its last step gives a boxed answer: cut-off R1 traces often hold
        # a `\boxed{}` from an intermediate check, but not in their last (cut) paragraph.
        last_step = split_steps(thinking)[-1][0] if thinking else ""
        complete = fmt == "plain" and last_boxed(last_step) is not None
        return parts | dict(mid=trail, solution=None, tail="", complete=complete)
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
    return parts | dict(mid=mid, solution=solution, tail=tail, complete=fmt == "r1" or es >= 0)


def _question_from_chat(head: str) -> str | None:
    """The last user turn of a chat-formatted prompt, or `None`."""
    for rx in _USER_TURN:
        found = rx.findall(head)
        if found:
            return found[-1]
    return None


def str_field(value: Any, name: str, *, allow_none: bool = True, allow_number: bool = False) -> str | None:
    """`value` as a string, or a `TraceFormatError` naming the field `name` and what was expected."""
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


def _message(msg: Any, where: str) -> tuple[str, str, str]:
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
    return role.lower(), msg[text_key], text_key


@dataclass
class RowParts:
    """What `read_row` found in a data row: the response string and where each part lives, for `write_row`.

    Attributes:
        response: The assistant string (for a metadata row, assembled R1-style from its two fields).
        question: The row's question, if any.
        gold: The row's gold answer, if any.
        metadata: The fields not consumed, written back unchanged.
        row: A private deep copy of the row.
        paths: Where the response / question / gold live in `row` (`None`: not there).
        layout: `"conversation"`, `"flat"`, or `"metadata"` (OpenThoughts' `deepseek_reasoning` rows).
    """

    response: str
    question: str | None
    gold: str | None
    metadata: dict[str, Any]
    row: dict[str, Any]
    paths: tuple[Path | None, Path | None, Path | None] = (None, None, None)
    layout: str = "flat"
    extra: dict[str, Any] = field(default_factory=dict)


def _read_conversation(row: dict[str, Any], conv_key: str) -> tuple[str, str | None, Path, Path | None]:
    conv = row[conv_key]
    if not isinstance(conv, list):
        raise TraceFormatError(f"field {conv_key!r}: expected a list of messages, got {type(conv).__name__}")
    roles = [_message(msg, f"{conv_key}[{i}]")[0] for i, msg in enumerate(conv)]
    assistant_i = max((i for i, r in enumerate(roles) if r in _ASSISTANT_ROLES), default=None)
    if assistant_i is None:
        raise TraceFormatError(
            f"field {conv_key!r}: expected an assistant turn (from/role 'assistant' or 'gpt'), found none"
        )
    user_i = max((i for i in range(assistant_i) if roles[i] in _USER_ROLES), default=None)
    _, text, text_key = _message(conv[assistant_i], f"{conv_key}[{assistant_i}]")
    response = str_field(text, f"{conv_key}[{assistant_i}].{text_key}", allow_none=False)
    question, q_path = None, None
    if user_i is not None:
        _, utext, ukey = _message(conv[user_i], f"{conv_key}[{user_i}]")
        q_path = (conv_key, user_i, ukey)
        question = str_field(utext, f"{conv_key}[{user_i}].{ukey}")
    assert response is not None
    return response, question, (conv_key, assistant_i, text_key), q_path


def read_row(row: Mapping[str, Any]) -> RowParts:
    """Find the response, question and gold answer of a data row.

    Layouts: an OpenThoughts row `{"system", "conversations": [{"from", "value"}, ...]}` (or `role`/`content`
    messages, or a `messages` list); an OpenThoughts metadata row (`problem`, `deepseek_reasoning`,
    `deepseek_solution`, gold = the last `\\boxed{}` of `ground_truth_solution`); a flat row with the question in
    `question`/`problem`/`prompt`, the response in `response`/`full_response`/`completion`/`output`/`trace`/
    `generation` and the gold answer in `gold`/`gold_answer`/`answer`/`ground_truth`.

    Raises:
        TraceFormatError: the row has no response, or a field has the wrong type.
    """
    row = copy.deepcopy(dict(row))
    conv_key = _first_key(row, _CONV_KEYS)
    if conv_key is None and "deepseek_reasoning" in row:
        return _read_metadata_row(row)
    g_key = _first_key(row, _GOLD_KEYS)
    gold = str_field(row[g_key], g_key, allow_number=True) if g_key is not None else None
    if conv_key is not None:
        response, question, r_path, q_path = _read_conversation(row, conv_key)
        consumed, layout = {conv_key}, "conversation"
    else:
        r_key = _first_key(row, _RESPONSE_KEYS)
        if r_key is None:
            raise TraceFormatError(
                f"row: expected a response field (one of {', '.join(_RESPONSE_KEYS)}), a 'conversations' "
                f"list or OpenThoughts metadata fields ({', '.join(_META_FIELDS)}), got keys {sorted(row)}"
            )
        r_path = (r_key,)
        response = str_field(row[r_key], r_key, allow_none=False)
        q_key = _first_key(row, _QUESTION_KEYS)
        q_path = (q_key,) if q_key is not None else None
        question = str_field(row[q_key], q_key) if q_key is not None else None
        consumed, layout = {r_key} | ({q_key} if q_key else set()), "flat"
    if g_key is not None:
        consumed.add(g_key)
    assert response is not None
    metadata = {k: v for k, v in row.items() if k not in consumed}
    paths = (r_path, q_path, (g_key,) if g_key is not None else None)
    return RowParts(response, question, gold, metadata, row, paths, layout)


def _read_metadata_row(row: dict[str, Any]) -> RowParts:
    for f in _META_FIELDS:
        if not isinstance(row.get(f), str):
            got = "missing" if f not in row else type(row[f]).__name__
            raise TraceFormatError(f"field {f!r}: expected a string (OpenThoughts metadata row), got {got}")
    gt = str_field(row.get(_META_GOLD), _META_GOLD)
    # some dumps keep the tags inside `deepseek_reasoning`: take what is between them
    reasoning = split_think(row["deepseek_reasoning"].strip())[0].strip()
    response = f"{_THINK_OPEN}\n{reasoning}\n{_THINK_CLOSE}\n\n{row['deepseek_solution'].strip()}"
    consumed = {*_META_FIELDS, _META_GOLD}
    metadata = {k: v for k, v in row.items() if k not in consumed}
    gold = last_boxed(gt) if gt else None
    extra = {"thinking": reasoning, "solution": row["deepseek_solution"].strip()}
    return RowParts(
        response, row["problem"], gold, metadata, row, (None, ("problem",), None), "metadata", extra
    )


def _get(row: Any, path: Path) -> Any:
    for k in path:
        row = row[k]
    return row


def _set(row: Any, path: Path, value: Any) -> None:
    for k in path[:-1]:
        row = row[k]
    row[path[-1]] = value


def write_row(parts: RowParts, trace: Any) -> dict[str, Any]:
    """`parts.row` with `trace`'s response, question and gold written where they were read from.

    A metadata row gets `deepseek_reasoning` = the thinking and `deepseek_solution` = the solution (the row as it
    came when neither changed); `ground_truth_solution` is never rewritten.
    """
    row = copy.deepcopy(parts.row)
    row.update(copy.deepcopy(trace.metadata))
    r_path, q_path, g_path = parts.paths
    if parts.layout == "metadata":
        if (trace.thinking, trace.solution or "") != (parts.extra["thinking"], parts.extra["solution"]):
            row["deepseek_reasoning"] = trace.thinking
            row["deepseek_solution"] = trace.solution or ""
    else:
        assert r_path is not None
        _set(row, r_path, trace.render())
    for path, value in ((q_path, trace.question), (g_path, trace.gold)):
        if path is None:
            continue
        old = _get(row, path)
        if value != (old if old is None or isinstance(old, str) else str(old)):
            _set(row, path, value)
    return row
