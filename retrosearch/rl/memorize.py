"""Training targets from rollouts: retrieval rewritten into internal reasoning (R1-Searcher++), and SFT rows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from retrosearch.rl.protocols import TagProtocol, get_protocol
from retrosearch.rl.rewards import check_format, cover_em
from retrosearch.verify import normalize_answer

__all__ = ["best_sentence", "memorization_targets", "rewrite_internal", "sft_examples"]

# A passage header as the protocols write them: "(1)Title: T Text: " (R1-Searcher, R1-Searcher++) or
# "Doc 1(Title: T) " (Search-R1); the header is dropped, the title kept as a sentence of its own.
_HEADERS = (re.compile(r"\(\d+\)Title:\s*(.*?)\s+Text:\s*"), re.compile(r"Doc \d+\(Title:\s*(.*?)\)\s*"))
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _sentences(documents: str) -> list[str]:
    text = documents
    for h in _HEADERS:
        text = h.sub("\n", text)
    out = []
    for line in text.splitlines():
        out += [s.strip() for s in _SENTENCE.split(line) if s.strip()]
    return out


def best_sentence(documents: str, query: str, golds: Any = None) -> str | None:
    """The sentence of a documents block the rewrite keeps: the first that covers a gold answer, else the one
    sharing the most normalized words with the query (the first among ties); `None` for an empty block."""
    sentences = _sentences(documents)
    if not sentences:
        return None
    if golds is not None:
        for s in sentences:
            if cover_em(s, golds):
                return s
    q = set(normalize_answer(query).split())
    scores = [len(q & set(normalize_answer(s).split())) for s in sentences]
    return sentences[scores.index(max(scores))]


def rewrite_internal(
    completion: str,
    protocol: str | TagProtocol = "r1-searcher++",
    golds: Any = None,
    *,
    internal: tuple[str, str] | None = None,
) -> str | None:
    """A retrieving rollout rewritten as if the model had known what it looked up (R1-Searcher++'s memorization).

    Each retrieval, from the query's opening tag to the end of its documents block, is replaced by one recalled
    fact: the sentence of the returned documents that `best_sentence` picks (a gold-covering one first, else the
    one closest to the query), wrapped in the protocol's internal-knowledge tags (R1-Searcher++:
    `<internal> fact </internal>`) or, for a protocol without them, written as `I recall that fact.`. The rest of
    the rollout (its reasoning and answer) is kept word for word, so the rewrite holds no query and no documents.

    Args:
        completion: The rollout's completion text (documents included).
        protocol: Its tag protocol.
        golds: The gold answer(s), to prefer the sentence that holds the answer.
        internal: The tag pair of recalled knowledge (default: the protocol's first `other_tags` pair).

    Returns:
        The rewritten completion, or `None` when the rollout made no retrieval (nothing to rewrite).
    """
    p = get_protocol(protocol)
    tags = internal if internal is not None else (p.other_tags[0] if p.other_tags else None)
    out, pos, rewrote = [], 0, False
    while True:
        starts = [(i, q) for q in p.queries if (i := completion.find(q.open, pos)) >= 0]
        if not starts:
            break
        start, q = min(starts, key=lambda t: t[0])
        close = completion.find(q.close, start)
        docs_end = completion.find(p.docs_close, close) if close >= 0 else -1
        if close < 0 or docs_end < 0:
            break  # an unanswered query (the rollout's last words): kept as written
        query = completion[start + len(q.open) : close].strip()
        docs_start = completion.find(p.docs_open, close)
        fact = best_sentence(completion[docs_start + len(p.docs_open) : docs_end], query, golds)
        fact = fact or query
        recalled = f"{tags[0]} {fact} {tags[1]}" if tags else f"I recall that {fact.rstrip('.')}."
        out += [completion[pos:start].rstrip(" "), " " if out or start else "", recalled]
        pos, rewrote = docs_end + len(p.docs_close), True
        if not completion.startswith("\n", pos):
            out.append(" ")
    if not rewrote:
        return None
    out.append(completion[pos:])
    return "".join(out)


def sft_examples(
    rollouts: Iterable[tuple[Any, Any]],
    *,
    protocol: str | TagProtocol = "r1-searcher++",
    eos_token_id: int | None = None,
    only_correct: bool = True,
    only_well_formed: bool = True,
) -> tuple[list[dict[str, list[int]]], dict[str, int]]:
    """SFT rows for a cold start from rejection-sampled rollouts, documents masked, for `retrosearch.distill`.

    Each kept rollout becomes a pre-tokenized row `{"input_ids": prompt_ids + completion_ids (+ eos),
    "completion_mask": [0] * len(prompt_ids) + env_mask (+ [1])}`: TRL's `SFTTrainer` (with
    `completion_only_loss`, as `distill` sets it) puts the loss on the model's own tokens only, so the prompt and
    every documents block get no gradient. The ids are the rollout's exact ids (never re-tokenized). The rows go
    through the project's one SFT path: `retrosearch.distill.build_trainer(DistillConfig(model=..., ...),
    examples=rows)`, then `trainer.train()`.

    Args:
        rollouts: `(SearchRollout, gold answer(s))` pairs, e.g. from the groups of a sampling run.
        protocol: The tag protocol of the rollouts (for the format check).
        eos_token_id: Appended (trained) to rollouts that did not end on it, so the student learns to stop.
        only_correct: Keep rollouts whose answer covers the gold (cover-EM).
        only_well_formed: Keep rollouts that pass R1-Searcher's format check.

    Returns:
        `(rows, counts)`: counts of rollouts `seen`, `kept`, `incorrect`, `malformed`.
    """
    rows: list[dict[str, list[int]]] = []
    counts = {"seen": 0, "kept": 0, "incorrect": 0, "malformed": 0}
    for rollout, golds in rollouts:
        counts["seen"] += 1
        if only_correct and not cover_em(rollout.answer, golds):
            counts["incorrect"] += 1
            continue
        if only_well_formed and not check_format(rollout.text, protocol).ok:
            counts["malformed"] += 1
            continue
        ids, mask = list(rollout.completion_ids), list(rollout.env_mask)
        if eos_token_id is not None and (not ids or ids[-1] != eos_token_id):
            ids, mask = ids + [eos_token_id], mask + [1]
        rows.append(
            {
                "input_ids": list(rollout.prompt_ids) + ids,
                "completion_mask": [0] * len(rollout.prompt_ids) + mask,
            }
        )
        counts["kept"] += 1
    return rows, counts


def memorization_targets(
    prompt_ids: Sequence[int],
    completion: str,
    tokenize: Any,
    *,
    protocol: str | TagProtocol = "r1-searcher++",
    golds: Any = None,
    eos_token_id: int | None = None,
) -> tuple[list[int], list[int]] | None:
    """`(input_ids, loss_mask)` of the memorization NLL for one rollout, or `None` when it did not retrieve.

    The rewrite (`rewrite_internal`) is new text, not sampled: it is tokenized as a whole after the rollout's
    exact prompt ids; the loss mask is 1 on the rewritten completion's tokens (and the EOS) and 0 on the prompt.
    """
    rewritten = rewrite_internal(completion, protocol, golds)
    if rewritten is None:
        return None
    ids = list(tokenize(rewritten))
    if eos_token_id is not None:
        ids.append(eos_token_id)
    return list(prompt_ids) + ids, [0] * len(prompt_ids) + [1] * len(ids)
