"""Judging the rollouts of one cut: each one's grade and value, and the acceptance rule that keeps at most one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retrosearch.retro.config import RetroSearchConfig
from retrosearch.retro.results import NO_BETTER_VALUE, NO_CORRECT, NO_SHORTER, RolloutRecord
from retrosearch.retro.rollout import Rollout, split_output
from retrosearch.text import count_steps
from retrosearch.verify import Verifier

_VERDICTS = {True: "correct", False: "incorrect"}

#: Sizes of a trace under the revision model's tokenizer: `thinking_tokens` and `total_tokens` (model-written),
#: `steps`, `thoughts`, and for search traces `retrievals` and `document_tokens`.
Size = dict[str, int]


def grade(
    r: Rollout,
    sample: int,
    cfg: RetroSearchConfig,
    verifier: Verifier,
    gold: str,
    close: str,
    retrievals: int | None = None,
) -> tuple[RolloutRecord, tuple[str, str] | None]:
    """The rollout's record (verdict, value, a note when it cannot win) and its (thinking, solution) split.

    Args:
        close: The tag that closes the thinking.
        retrievals: For a search trace, the retrievals of the trace this rollout would make (kept in the record).
    """
    split = split_output(r.text, close) if r.finish in ("stop", "eos") else None
    rec = RolloutRecord(
        sample=sample,
        nodes=[n.id for n in r.nodes],
        tokens=r.tokens,
        steps=None,
        finish_reason=r.finish,
        closed=split is not None,
        verdict=None,
        correct=False,
        value=0.0,
        retrievals=retrievals,
    )
    if r.finish not in ("stop", "eos"):
        rec.note = "cut by the token budget or cap" if r.finish == "length" else f"finished by {r.finish}"
    elif split is None:
        rec.note = "never closed its thinking"
    else:
        verdict = verifier(split[1], gold)
        rec.steps = count_steps(split[0])
        rec.correct = bool(verdict.correct)
        label = getattr(verdict, "verdict", None)
        rec.verdict = str(getattr(label, "value", label)) if label is not None else _VERDICTS[rec.correct]
        rec.value = cfg.gamma**rec.steps * float(rec.correct)
        if not rec.correct:
            rec.note = f"wrong answer ({rec.verdict})"
    for n in r.nodes:
        if n.origin != "environment":
            n.correct, n.value = rec.correct, rec.value
    return rec, split


def choose(
    records: Sequence[RolloutRecord],
    remainder_value: float,
    current: Size,
    size_of: Callable[[int], Size],
    gamma: float,
) -> tuple[int | None, str]:
    """The acceptance rule of one cut: `(index of the kept rollout or None, why)`.

    A rollout passes when it is correct, its revised trace (`size_of(k)`, measured only for rollouts that get
    this far) is no longer than `current` in thinking tokens and in total tokens and makes no more retrievals,
    and it improves on the remainder: it makes fewer retrievals, or its value beats `remainder_value`. At
    `gamma == 1` values always tie: a tie then beats the remainder when the revised thinking is strictly shorter
    in tokens. Of those that pass, the one with the fewest retrievals wins, then the highest value, then the
    fewest tokens, then the first sampled. Each record that cannot win gets a note saying why. (Sizes without
    `retrievals` count none: a reasoning trace is judged exactly as in the paper.)
    """
    passed: list[int] = []
    better = 0
    now = current.get("retrievals", 0)
    sizes: dict[int, Size] = {}
    for k, rec in enumerate(records):
        if not rec.correct:
            continue
        fewer = rec.retrievals is not None and rec.retrievals < now
        tie = gamma == 1.0 and rec.value == remainder_value
        size = size_of(k) if fewer or rec.value > remainder_value or tie else None
        if size is not None:
            sizes[k] = size
        if size is None or (not fewer and tie and size["thinking_tokens"] >= current["thinking_tokens"]):
            rec.note = (
                "its value ties the remainder's and its thinking is not shorter"
                if tie
                else f"value {rec.value:.4g} does not beat the remainder's {remainder_value:.4g}"
            )
            continue
        better += 1
        if (
            size["thinking_tokens"] > current["thinking_tokens"]
            or size["total_tokens"] > current["total_tokens"]
        ):
            rec.note = "its revised trace would be longer in tokens"
            continue
        if size.get("retrievals", 0) > now:
            rec.note = "its revised trace would make more retrievals"
            continue
        passed.append(k)
    if not passed:
        if not any(r.correct for r in records):
            return None, NO_CORRECT
        return None, NO_BETTER_VALUE if not better else NO_SHORTER
    best = min(
        passed,
        key=lambda k: (sizes[k].get("retrievals", 0), -records[k].value, records[k].tokens, k),
    )
    lost = "passed; another rollout had " + ("fewer retrievals, " if "retrievals" in current else "")
    for k in passed:
        if k != best:
            records[k].note = lost + "a higher value or fewer tokens"
    rec = records[best]
    rec.accepted, rec.note = True, "accepted"
    after = sizes[best].get("retrievals", 0)
    if after < now:
        reason = f"rollout {rec.sample} kept: {after} retrieval(s) instead of {now}"
    else:
        how = "ties" if rec.value == remainder_value else "beats"
        reason = (
            f"rollout {rec.sample} kept: value {rec.value:.4g} {how} the remainder's {remainder_value:.4g}"
        )
    return best, f"{reason} ({len(passed)} of {len(records)} passed)"
