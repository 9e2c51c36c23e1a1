"""QA benchmarks: R1-Searcher's four evaluation sets by name, or any JSONL/parquet file of questions and answers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.verify import parse_gold_list

#: R1-Searcher's evaluation sets, by name, relative to the data folder.
QA_BENCHMARKS: dict[str, str] = {
    "hotpotqa": "qa/r1searcher/eval_set/hotpotqa_500.jsonl",
    "2wiki": "qa/r1searcher/eval_set/2wiki_500.jsonl",
    "musique": "qa/r1searcher/eval_set/musique_500.jsonl",
    "bamboogle": "qa/r1searcher/eval_set/bamboogle.jsonl",
}


@dataclass(frozen=True)
class QAExample:
    """One question: its id (`file:line`, or the row's `idx`), text and gold aliases."""

    id: str
    question: str
    golds: tuple[str, ...]


@dataclass
class QABenchmark:
    """A named list of questions read from `path`."""

    name: str
    path: str
    examples: list[QAExample] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Where named benchmarks are looked for: `data_dir`, else `$RETROSEARCH_SHARED_DATA`, else `../shared/data`
    next to the working folder or to the checkout."""
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get("RETROSEARCH_SHARED_DATA")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parents[3]
    return [Path.cwd() / ".." / "shared" / "data", here / "shared" / "data"]


def benchmark_path(name: str, data_dir: str | Path | None = None) -> Path:
    """The file of benchmark `name` (one of `QA_BENCHMARKS`, or a file path)."""
    if name not in QA_BENCHMARKS:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"benchmark {name!r} is neither a file nor one of {sorted(QA_BENCHMARKS)}"
            )
        return path
    tried = []
    for root in data_dirs(data_dir):
        cand = root / QA_BENCHMARKS[name]
        tried.append(str(cand))
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"benchmark {name!r}: not found (looked in {', '.join(tried)}); give --data-dir (the folder holding qa/) "
        "or set $RETROSEARCH_SHARED_DATA"
    )


def load_qa_benchmark(
    name: str,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    question_field: str = "question",
    answer_field: str = "answer",
) -> QABenchmark:
    """Read a QA benchmark: rows with a question and gold answer(s) (a string, a list, or a list in a string).

    Raises:
        FileNotFoundError: no such benchmark or file.
        ValueError: a row that is not an object, or lacks the question or the answer (the message names it).
    """
    from retrosearch.data.io import BadRow, read_rows

    path = benchmark_path(name, data_dir)
    label = name if name in QA_BENCHMARKS else path.stem
    bench = QABenchmark(label, str(path))
    for row_id, row in read_rows(path, limit=limit):
        if isinstance(row, BadRow):
            raise ValueError(row.reason)
        bench.examples.append(_example(row_id, row, question_field, answer_field))
    if not bench.examples:
        raise ValueError(f"benchmark {name!r}: {path} holds no questions")
    return bench


def _example(row_id: str, row: Any, question_field: str, answer_field: str) -> QAExample:
    if not isinstance(row, dict):
        raise ValueError(f"{row_id}: expected a JSON object, got {type(row).__name__}")
    question, gold = row.get(question_field), row.get(answer_field)
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{row_id}: no question in field {question_field!r} (fields: {sorted(row)})")
    golds = tuple(g for g in parse_gold_list(gold) if g.strip()) if gold is not None else ()
    if not golds:
        raise ValueError(f"{row_id}: no gold answer in field {answer_field!r} (fields: {sorted(row)})")
    idx = row.get("idx", row.get("id"))
    return QAExample(row_id if idx is None else str(idx), question.strip(), golds)
