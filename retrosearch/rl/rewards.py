"""Rewards of search-augmented RL: QA metrics, R1-Searcher's format check and its two stages' rewards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrosearch.rl.protocols import TagProtocol, get_protocol
from retrosearch.verify import cover_em as _cover_em
from retrosearch.verify import exact_match as _exact_match
from retrosearch.verify import f1_score as _f1_score

#: The format rules, each a named reason a completion can break (R1-Searcher's stage-2 check, per protocol).
FORMAT_RULES: dict[str, str] = {
    "tag_balance": "query, documents and other tags come in balanced pairs, one documents block per query",
    "one_answer": "exactly one answer tag pair, opened before it is closed",
    "tags_in_answer": "no protocol tag inside the answer",
    "answer_too_long": "the answer has at most `max_answer_words` words",
    "think_structure": "reasoning blocks open and close in turn (one block where the protocol says so), and "
    "the last one closes before the answer",
}


# ------------------------------------------------------------------------------------------ QA metrics
def cover_em(prediction: str | None, golds: Any) -> bool:
    """Whether the prediction covers some gold answer (`retrosearch.verify.cover_em`; `None` covers nothing)."""
    return prediction is not None and bool(_cover_em(prediction, golds))


def em(prediction: str | None, golds: Any) -> bool:
    """Whether the normalized prediction equals some normalized gold (`retrosearch.verify.exact_match`)."""
    return prediction is not None and bool(_exact_match(prediction, golds))


def f1(prediction: str | None, golds: Any) -> float:
    """Token F1 against the best gold (`retrosearch.verify.f1_score`; `None` scores 0)."""
    return 0.0 if prediction is None else float(_f1_score(prediction, golds))


# -------------------------------------------------------------------------------------- format check
@dataclass(frozen=True)
class FormatCheck:
    """The verdict of `check_format`: `ok` when no rule is broken; `reasons` names the broken ones."""

    ok: bool
    reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok


def _think_ok(text: str, p: TagProtocol) -> bool:
    events = sorted(
        [(i, 1) for i in _find_all(text, p.think_open)] + [(i, -1) for i in _find_all(text, p.think_close)]
    )
    depth, blocks = (1 if p.think_in_prompt else 0), 0
    for _, step in events:
        if (step == 1 and depth != 0) or (step == -1 and depth != 1):
            return False
        depth += step
        blocks += step == -1
    if depth != 0 or blocks == 0 or (p.single_think and blocks != 1):
        return False
    answer_at = text.find(p.answer_open)
    return answer_at < 0 or text.rfind(p.think_close) < answer_at


def _find_all(text: str, tag: str) -> list[int]:
    out, i = [], text.find(tag)
    while i >= 0:
        out.append(i)
        i = text.find(tag, i + len(tag))
    return out


def check_format(
    completion: str, protocol: str | TagProtocol = "r1-searcher", *, max_answer_words: int = 10
) -> FormatCheck:
    """R1-Searcher's format check of a completion (documents included), each rule a named reason.

    Args:
        completion: The completion's text, from after the prompt to its end (the documents blocks included).
        protocol: The tag protocol (its tags and think rules).
        max_answer_words: The longest answer allowed, in whitespace-separated words (R1-Searcher: 10).

    Returns:
        A `FormatCheck`; its `reasons` are keys of `FORMAT_RULES`, in that order.
    """
    p = get_protocol(protocol)
    broken = []
    opens = sum(completion.count(q.open) for q in p.queries)
    closes = sum(completion.count(q.close) for q in p.queries)
    counts = {opens, closes, completion.count(p.docs_open), completion.count(p.docs_close)}
    pairs_ok = all(completion.count(a) == completion.count(b) for a, b in p.other_tags)
    if len(counts) != 1 or not pairs_ok:
        broken.append("tag_balance")
    answers = p.answers(completion)
    n_open, n_close = completion.count(p.answer_open), completion.count(p.answer_close)
    if not (len(answers) == 1 and n_open == 1 and n_close == 1):
        broken.append("one_answer")
    if answers:
        answer = answers[-1]
        if any(t in answer for t in p.tags):
            broken.append("tags_in_answer")
        if len(answer.split()) > max_answer_words:
            broken.append("answer_too_long")
    if not _think_ok(completion, p):
        broken.append("think_structure")
    return FormatCheck(not broken, tuple(broken))


def count_retrievals(completion: str, protocol: str | TagProtocol = "r1-searcher") -> int:
    """Documents blocks in a completion's text (the retrievals of a rollout known only by its text)."""
    return completion.count(get_protocol(protocol).docs_open)


# ---------------------------------------------------------------------------------- stage rewards
def stage1_reward(
    completion: str,
    retrievals: int,
    protocol: str | TagProtocol = "r1-searcher",
    *,
    retrieval_reward: float = 0.5,
    format_reward: float = 0.5,
) -> float:
    """R1-Searcher's stage 1: `retrieval_reward` when it retrieved at least once, plus `format_reward` when the
    format check passes (answer correctness plays no part)."""
    ok = check_format(completion, protocol).ok
    return (retrieval_reward if retrievals >= 1 else 0.0) + (format_reward if ok else 0.0)


def stage2_reward(
    completion: str,
    golds: Any,
    protocol: str | TagProtocol = "r1-searcher",
    *,
    format_penalty: float = -2.0,
    prediction: str | None = None,
) -> float:
    """R1-Searcher's stage 2: F1 of the answer against the gold(s), plus `format_penalty` for a broken format.

    `prediction` overrides the answer read from the completion (e.g. a rollout's fallback answer).
    """
    p = get_protocol(protocol)
    answer = prediction if prediction is not None else p.extract_answer(completion)
    ok = check_format(completion, p).ok
    return f1(answer, golds) + (0.0 if ok else format_penalty)


# ---------------------------------------------------------------------------- TRL reward functions
def completion_texts(completions: Sequence[Any], kwargs: dict[str, Any]) -> list[str]:
    """The completions as plain text: the rollout's `completion_text` field when given, else TRL's completions."""
    given = kwargs.get("completion_text")
    if given is not None:
        return [str(t) for t in given]
    out = []
    for c in completions:
        if isinstance(c, list):  # conversational: [{"role": "assistant", "content": ...}, ...]
            out.append("".join(str(m.get("content", "")) for m in c if isinstance(m, dict)))
        else:
            out.append(str(c))
    return out


def _column(kwargs: dict[str, Any], name: str, n: int, owner: str) -> list[Any]:
    values = kwargs.get(name)
    if values is None:
        raise KeyError(f"{owner}: no {name!r} field among the reward function's inputs ({sorted(kwargs)})")
    if len(values) != n:
        raise ValueError(f"{owner}: field {name!r} has {len(values)} values for {n} completions")
    return list(values)


class Stage1Reward:
    """R1-Searcher's stage-1 reward as a TRL reward function: `(completions, **kwargs) -> list[float]`.

    Reads `retrievals` from the rollout's extra fields when present, else counts documents blocks in the text;
    the text is `completion_text` when present, else the completions TRL decoded.
    """

    def __init__(
        self, protocol: str = "r1-searcher", *, retrieval_reward: float = 0.5, format_reward: float = 0.5
    ) -> None:
        self.protocol = get_protocol(protocol)
        self.retrieval_reward, self.format_reward = retrieval_reward, format_reward
        self.__name__ = "r1searcher_stage1"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        texts = completion_texts(completions, kwargs)
        counts = kwargs.get("retrievals") or [count_retrievals(t, self.protocol) for t in texts]
        return [
            stage1_reward(
                t,
                int(n),
                self.protocol,
                retrieval_reward=self.retrieval_reward,
                format_reward=self.format_reward,
            )
            for t, n in zip(texts, counts)
        ]


class Stage2Reward:
    """R1-Searcher's stage-2 reward as a TRL reward function: F1 plus the format penalty.

    Args:
        protocol: The tag protocol.
        format_penalty: Added when the format check fails (R1-Searcher's Qwen setting: -2).
        gold_field: The dataset column with the gold answer(s) (a string or a list of aliases).
    """

    def __init__(
        self, protocol: str = "r1-searcher", *, format_penalty: float = -2.0, gold_field: str = "answer"
    ) -> None:
        self.protocol = get_protocol(protocol)
        self.format_penalty, self.gold_field = format_penalty, gold_field
        self.__name__ = "r1searcher_stage2"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        texts = completion_texts(completions, kwargs)
        golds = _column(kwargs, self.gold_field, len(texts), self.__name__)
        preds = kwargs.get("final_answer") or [None] * len(texts)
        return [
            stage2_reward(t, g, self.protocol, format_penalty=self.format_penalty, prediction=p)
            for t, g, p in zip(texts, golds, preds)
        ]
