"""The student's training examples: journals and trace files read as conversational prompt/completion rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrosearch.data.io import BadRow, get_adapter, read_rows
from retrosearch.data.journal import is_header, is_journal, read_journal
from retrosearch.distill.config import DistillConfig
from retrosearch.trace import Trace, TraceFormatError
from retrosearch.verify import get_verifier

__all__ = ["load_examples"]


def _iter_source(source: str) -> Iterator[tuple[str, Any, str | None]]:
    """`(row_id, row, journal status or None)` for every row of one training source."""
    path = Path(source)
    if path.is_file() and path.suffix == ".jsonl" and is_journal(path):
        # A journal: one record per row (the first, should a resumed run have repeated one), in input order.
        records = sorted(read_journal(path, trees=False), key=lambda r: r.get("seq", 0))
        for r in records:
            yield f"{path.name}:{r['row_id']}", r.get("row"), str(r.get("status"))
        return
    for row_id, row in read_rows(source):
        if is_header(row):  # the first line of a journal inside a folder of files
            continue
        if isinstance(row, dict) and {"row_id", "status", "row"} <= set(row):  # a journal's row record
            yield f"{source}:{row_id}", row.get("row"), str(row.get("status"))
        else:
            yield f"{source}:{row_id}", row, None


def load_examples(config: DistillConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read the training traces of `config.train_files` as a conversational prompt/completion dataset.

    Each example is `{"prompt": [{"role": "user", "content": question}], "completion": [{"role":
    "assistant", "content": completion_template.format(thinking=..., solution=...)}]}` (a system turn first
    when `system_prompt` is set): with such rows TRL's `SFTTrainer` puts the loss on the completion only,
    whatever the chat template.

    Returns:
        `(examples, stats)`; `stats` counts the rows read, used and skipped (by reason).

    Raises:
        ValueError: a row that cannot be used, naming it (unless `on_bad_row == "skip"`).
    """
    verifier = get_verifier(config.verifier) if config.only_correct else None
    examples: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    rows = 0

    def bad(row_id: str, reason: str) -> None:
        if config.on_bad_row == "error":
            raise ValueError(
                f"train_files row {row_id}: {reason} (set on_bad_row: skip to leave such rows out)"
            )
        skipped["bad row"] += 1

    for source in config.train_files:
        for row_id, row, status in _iter_source(source):
            if config.max_examples is not None and len(examples) >= config.max_examples:
                break
            rows += 1
            if status is not None and status not in config.statuses:
                skipped[f"journal status {status}"] += 1
                continue
            if row is None:
                skipped["journal row without data"] += 1
                continue
            if isinstance(row, BadRow):
                bad(row_id, row.reason)
                continue
            try:
                trace = Trace.parse(get_adapter(row).to_trace_input(row))
            except (TraceFormatError, TypeError, KeyError) as e:
                bad(row_id, str(e))
                continue
            if not trace.question:
                bad(row_id, "no question (expected a question/problem/prompt field or a user turn)")
                continue
            if config.drop_incomplete and (not trace.complete or trace.solution is None):
                skipped["incomplete (thinking not closed or no solution)"] += 1
                continue
            if verifier is not None:
                if trace.gold is None:
                    skipped["no gold answer (only_correct)"] += 1
                    continue
                response = trace.solution if trace.solution is not None else trace.render()
                if not verifier(response, trace.gold).correct:
                    skipped["incorrect answer (only_correct)"] += 1
                    continue
            examples.append(_example(trace.question, trace.thinking, trace.solution or "", config))
    stats = {"rows": rows, "examples": len(examples), "skipped": dict(sorted(skipped.items()))}
    return examples, stats


def _example(question: str, thinking: str, solution: str, config: DistillConfig) -> dict[str, Any]:
    prompt = [{"role": "user", "content": config.question_template.format(question=question)}]
    if config.system_prompt:
        prompt.insert(0, {"role": "system", "content": config.system_prompt})
    completion = config.completion_template.format(thinking=thinking, solution=solution)
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}]}
