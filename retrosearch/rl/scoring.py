"""QA scores of predictions: per record (cover-EM, EM, F1, format) and per set; `rl score` and `rl evaluate`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from retrosearch.rl.judge import parse_verdict
from retrosearch.rl.protocols import TagProtocol, get_protocol
from retrosearch.rl.rewards import check_format, count_retrievals, cover_em, em, f1
from retrosearch.verify import parse_gold_list

#: Scores averaged by `summarize` (each a record field; a record without it is left out of that mean).
MEAN_FIELDS: tuple[str, ...] = ("cover_em", "em", "f1", "judge", "retrievals", "well_formed", "truncated")


def grade(
    prediction: str | None, golds: Any, text: str | None = None, protocol: str | TagProtocol = "r1-searcher"
) -> dict[str, Any]:
    """The scores of one prediction: `cover_em`, `em`, `f1`, and with the rollout's `text` its format check.

    Returns:
        A dict with `cover_em`, `em` (bools), `f1` (float) and, when `text` is given, `well_formed` (bool) and
        `format_reasons` (the broken rules' names).
    """
    golds = parse_gold_list(golds)
    out: dict[str, Any] = {
        "cover_em": cover_em(prediction, golds),
        "em": em(prediction, golds),
        "f1": f1(prediction, golds),
    }
    if text is not None:
        check = check_format(text, protocol)
        out["well_formed"] = check.ok
        out["format_reasons"] = list(check.reasons)
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Means of the `MEAN_FIELDS` over `records` (booleans as 0/1), their count, finish reasons and errors.

    `retrievals` becomes `retrievals_per_question` (a mean over rollouts: over questions when G = 1).
    """
    out: dict[str, Any] = {"n": len(records)}
    for name in MEAN_FIELDS:
        values = [float(r[name]) for r in records if r.get(name) is not None]
        key = "retrievals_per_question" if name == "retrievals" else name
        if values or name in ("cover_em", "em", "f1", "retrievals"):
            out[key] = _mean(values)
    reasons = Counter(r["finish_reason"] for r in records if r.get("finish_reason"))
    if reasons:
        out["finish_reasons"] = dict(sorted(reasons.items()))
    out["errors"] = sum(1 for r in records if r.get("error"))
    return out


def score_records(
    rows: Iterable[tuple[str, Any]],
    *,
    pred_field: str = "pred_ans",
    gold_field: str = "answer",
    text_field: str | None = "gen_text_store",
    judge_field: str | None = "gpt4o_output",
    protocol: str | TagProtocol = "r1-searcher",
) -> list[dict[str, Any]]:
    """Grade `(row_id, row)` pairs of a predictions file (R1-Searcher's published field names by default).

    A row without the gold field is an error naming the row; a missing or `None` prediction scores 0. With a
    text field, a record also gets its format check and its retrievals (documents blocks in the text); with a
    judge field, the recorded verdict (`True`/`False`, `yes`/`no`) as `judge`.

    Raises:
        ValueError: a row that is not a JSON object, or has no gold answer.
    """
    p = get_protocol(protocol)
    out = []
    for row_id, row in rows:
        if not isinstance(row, Mapping):
            raise ValueError(f"{row_id}: expected a JSON object, got {type(row).__name__}: {str(row)[:80]}")
        if row.get(gold_field) is None:
            raise ValueError(f"{row_id}: no gold answer field {gold_field!r} (fields: {sorted(row)})")
        pred = row.get(pred_field)
        text = row.get(text_field) if text_field else None
        rec: dict[str, Any] = {"id": row_id, "pred_ans": pred, "answer": row[gold_field]}
        rec.update(grade(None if pred is None else str(pred), row[gold_field], text, p))
        if text is not None:
            rec["retrievals"] = row.get("retrievals", count_retrievals(str(text), p))
        if judge_field and row.get(judge_field) is not None:
            rec["judge"] = parse_verdict(str(row[judge_field]))
        for key in ("finish_reason", "truncated", "error"):
            if key in row:
                rec[key] = row[key]
        out.append(rec)
    return out


def score_file(path: str | Path, **kwargs: Any) -> dict[str, Any]:
    """`score_records` over a JSONL file, summarized (`summarize`) with the file's name."""
    from retrosearch.data.io import BadRow, read_rows

    rows = []
    for row_id, row in read_rows(path):
        if isinstance(row, BadRow):
            raise ValueError(row.reason)
        rows.append((row_id, row))
    if not rows:
        raise ValueError(f"{path}: no predictions in the file")
    return {"file": str(path), **summarize(score_records(rows, **kwargs))}
