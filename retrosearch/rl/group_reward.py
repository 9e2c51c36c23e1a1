"""R1-Searcher++'s rewards: R_answer (cover-EM, short answer), R_format (0 / -2) and R_group (fewest retrievals)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

from retrosearch.rl.protocols import get_protocol
from retrosearch.rl.rewards import check_format, completion_texts, count_retrievals, cover_em

__all__ = [
    "AnswerReward",
    "FormatReward",
    "GroupReward",
    "answer_reward",
    "format_reward",
    "group_bonus",
    "group_ids",
]


def answer_reward(answer: str | None, golds: Any, *, max_answer_words: int = 10) -> float:
    """R_answer: 1 when the answer covers a gold answer (cover-EM) and has at most `max_answer_words` words."""
    if answer is None or len(answer.split()) > max_answer_words:
        return 0.0
    return 1.0 if cover_em(answer, golds) else 0.0


def format_reward(completion: str, protocol: str = "r1-searcher++", *, penalty: float = -2.0) -> float:
    """R_format: 0 when R1-Searcher's format check passes on the completion, else `penalty` (-2)."""
    return 0.0 if check_format(completion, protocol).ok else penalty


def group_bonus(retrievals: Sequence[int], correct: Sequence[bool], *, eta: float = 2.0) -> list[float]:
    """R_group of one question's rollouts: a bonus for the correct ones that retrieved least.

    With `C` the correct rollouts of the group and `n_i` their retrieval counts,

        sigma = population standard deviation of {n_i : i in C}
        R_group_i = min(sigma, eta)   if i in C and n_i == min{n_j : j in C}
                  = 0                 otherwise.

    So the bonus goes to every correct rollout tied for the fewest retrievals, and grows with how much the
    correct rollouts disagree about how many retrievals the question needs: nothing when they all retrieved
    equally often (or only one is correct: nothing to compare), up to `eta` (2) when they spread widely. With
    two correct rollouts retrieving 0 and 2 times, sigma = 1 and the one that did not retrieve gets +1.

    Args:
        retrievals: `[G]` retrieval counts of the group's rollouts.
        correct: `[G]` whether each rollout is correct (R1-Searcher++: cover-EM, short answer, well-formed).
        eta: The clip of the bonus (R1-Searcher++: 2).

    Returns:
        `[G]` bonuses, each in `[0, eta]`.
    """
    if len(retrievals) != len(correct):
        raise ValueError(f"group_bonus: {len(retrievals)} retrieval counts for {len(correct)} verdicts")
    if eta < 0:
        raise ValueError(f"group_bonus: eta must be >= 0, got {eta}")
    counts = [int(n) for n, ok in zip(retrievals, correct) if ok]
    if len(counts) < 2:
        return [0.0] * len(retrievals)
    mean = sum(counts) / len(counts)
    sigma = math.sqrt(sum((n - mean) ** 2 for n in counts) / len(counts))
    bonus = min(sigma, eta)
    fewest = min(counts)
    return [bonus if ok and int(n) == fewest and bonus > 0 else 0.0 for n, ok in zip(retrievals, correct)]


def group_ids(kwargs: dict[str, Any], n: int) -> list[Hashable]:
    """Which group each completion belongs to: the rollout's `group_id` field, else runs of equal prompts."""
    given = kwargs.get("group_id")
    if given is not None:
        if len(given) != n:
            raise ValueError(f"group_id has {len(given)} values for {n} completions")
        return list(given)
    prompts = kwargs.get("prompts")
    if prompts is None:
        raise KeyError("R_group needs a group_id field (from the rollout function) or the prompts")
    out: list[Hashable] = []
    run = -1
    for i, p in enumerate(prompts):
        if i == 0 or str(p) != str(prompts[i - 1]):
            run += 1
        out.append(run)
    return out


class _PPReward:
    """Shared reading of the rollout's fields by the three R1-Searcher++ reward functions."""

    name = "r1pp"

    def __init__(
        self,
        protocol: str = "r1-searcher++",
        *,
        gold_field: str = "answer",
        max_answer_words: int = 10,
        format_penalty: float = -2.0,
        eta: float = 2.0,
    ) -> None:
        self.protocol = get_protocol(protocol).name
        self.gold_field, self.max_answer_words = gold_field, max_answer_words
        self.format_penalty, self.eta = format_penalty, eta
        self.__name__ = self.name

    def answers(self, texts: list[str], kwargs: dict[str, Any]) -> list[float]:
        golds = kwargs.get(self.gold_field)
        if golds is None:
            raise KeyError(
                f"{self.name}: no {self.gold_field!r} field among the reward inputs ({sorted(kwargs)})"
            )
        p = get_protocol(self.protocol)
        preds = kwargs.get("final_answer") or [p.extract_answer(t) for t in texts]
        return [answer_reward(a, g, max_answer_words=self.max_answer_words) for a, g in zip(preds, golds)]

    def formats(self, texts: list[str]) -> list[float]:
        return [format_reward(t, self.protocol, penalty=self.format_penalty) for t in texts]


class AnswerReward(_PPReward):
    """R_answer as a TRL reward function (reads `final_answer` and the gold column `gold_field`)."""

    name = "r1pp_answer"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return self.answers(completion_texts(completions, kwargs), kwargs)


class FormatReward(_PPReward):
    """R_format as a TRL reward function: 0 or `format_penalty`."""

    name = "r1pp_format"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return self.formats(completion_texts(completions, kwargs))


class GroupReward(_PPReward):
    """R_group as a TRL reward function (`group_bonus` per group; a rollout is correct when its R_answer is 1
    and its format is intact).

    It sees one process's completions: every group must lie whole on one process, which the training config
    checks (`per_device_train_batch_size * steps_per_generation` a multiple of `num_generations`).
    """

    name = "r1pp_group"

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        texts = completion_texts(completions, kwargs)
        ok = [a == 1.0 and f == 0.0 for a, f in zip(self.answers(texts, kwargs), self.formats(texts))]
        counts = kwargs.get("retrievals") or [count_retrievals(t, self.protocol) for t in texts]
        ids = group_ids(kwargs, len(texts))
        out = [0.0] * len(texts)
        members: dict[Hashable, list[int]] = {}
        for i, g in enumerate(ids):
            members.setdefault(g, []).append(i)
        for rows in members.values():
            bonus = group_bonus([counts[i] for i in rows], [ok[i] for i in rows], eta=self.eta)
            for i, b in zip(rows, bonus):
                out[i] = b
        return out
