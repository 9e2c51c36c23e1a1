"""Benchmarks: the math sets by name, the toy world's held-out problems, or any file of questions and answers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.verify import gold_answer

__all__ = ["BENCHMARKS", "TOY", "Benchmark", "EvalProblem", "load_benchmark"]


@dataclass(frozen=True)
class _Fields:
    """Where a benchmark file keeps its parts: the first key present wins."""

    file: str
    question: tuple[str, ...]
    gold: tuple[str, ...]
    id: tuple[str, ...] = ("id", "idx", "unique_id")


#: The math sets of ../shared/data/math (Qwen2.5-Math's evaluation suite) and their field names.
BENCHMARKS: dict[str, _Fields] = {
    "math500": _Fields("math500.jsonl", ("problem",), ("answer",), ("unique_id",)),
    "aime24": _Fields("aime24.jsonl", ("problem", "question"), ("answer",)),
    "aime25": _Fields("aime25.jsonl", ("problem", "question"), ("answer",)),
    "amc23": _Fields("amc23.jsonl", ("problem", "question"), ("answer",)),  # floats: 27.0 -> "27"
    "gsm8k": _Fields("gsm8k.jsonl", ("question",), ("answer",), ("idx",)),  # worked solution ending "#### N"
    "olympiadbench": _Fields("olympiadbench.jsonl", ("question",), ("final_answer",)),  # a list of answers
    "gaokao2023en": _Fields("gaokao2023en.jsonl", ("question",), ("answer",), ("id", "source")),
}
#: Any other JSONL file: the first of these keys present.
_GENERIC = _Fields(
    "", ("problem", "question", "prompt"), ("answer", "final_answer", "gold", "gold_answer", "ground_truth")
)
TOY = "toy"


@dataclass(frozen=True)
class EvalProblem:
    """One problem: its id in the benchmark, the question, and the gold answer as one string."""

    id: str
    question: str
    gold: str


@dataclass
class Benchmark:
    """A named list of problems, with where they came from."""

    name: str
    problems: list[EvalProblem]
    source: str = ""
    #: Rows of the source left out because their gold answer is empty.
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- loading
def _default_data_dirs() -> list[Path]:
    env = os.environ.get("RETROSEARCH_SHARED_DATA")
    if env:
        return [Path(env)]
    # The project layout keeps the shared data next to the checkout (../shared/data).
    here = Path(__file__).resolve().parents[2]
    return [Path.cwd() / ".." / "shared" / "data", here.parent / "shared" / "data", Path.cwd() / "data"]


def _find_file(file: str, data_dir: str | Path | None) -> Path:
    roots = [Path(data_dir)] if data_dir is not None else _default_data_dirs()
    tried = []
    for root in roots:
        for cand in (root / "math" / file, root / file):
            tried.append(str(cand))
            if cand.is_file():
                return cand
    raise FileNotFoundError(
        f"benchmark file {file} not found (looked in {', '.join(tried)}); set --data-dir (EvalConfig.data_dir) or "
        "$RETROSEARCH_SHARED_DATA to the folder holding math/, or pass the file's path"
    )


def _pick(row: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first of `keys` in `row` with a value (`"None"` and blank strings count as none); `(None, None)`."""
    for k in keys:
        v = row.get(k)
        if v is not None and not (isinstance(v, str) and v.strip() in ("", "None")):
            return k, v
    return None, None


def _read_problems(path: Path, fields: _Fields, limit: int | None) -> tuple[list[EvalProblem], list[str]]:
    """`(problems, ids of rows left out because their gold answer is empty)`."""
    from retrosearch.data.io import BadRow, read_rows

    out: list[EvalProblem] = []
    no_gold: list[str] = []
    for row_id, row in read_rows(path):
        if limit is not None and len(out) >= limit:
            break
        if isinstance(row, BadRow):
            raise ValueError(f"benchmark {path}: {row.reason}")
        if not isinstance(row, Mapping):
            raise ValueError(
                f"benchmark {path} row {row_id}: expected a JSON object, got {type(row).__name__}"
            )
        _, question = _pick(row, fields.question)
        if not isinstance(question, str):
            raise ValueError(
                f"benchmark {path} row {row_id}: expected the question in one of {list(fields.question)}, "
                f"got keys {sorted(row)}"
            )
        if not any(k in row for k in fields.gold):
            raise ValueError(
                f"benchmark {path} row {row_id}: expected the gold answer in one of {list(fields.gold)}, "
                f"got keys {sorted(row)}"
            )
        gk, gold = _pick(row, fields.gold)
        try:
            gold_text = gold_answer(gold) if gold is not None else ""
        except TypeError as e:
            raise ValueError(f"benchmark {path} row {row_id}: field {gk!r}: {e}") from e
        if not gold_text:
            # A few real rows have an empty answer (e.g. 2 of gaokao2023en): they cannot be graded.
            no_gold.append(row_id)
            continue
        _, pid = _pick(row, fields.id)
        out.append(EvalProblem(str(pid) if pid is not None else row_id, question, gold_text))
    return out, no_gold


def load_benchmark(
    name_or_path: str | Path,
    *,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    toy_problems: int = 200,
    toy_seed: int = 0,
) -> Benchmark:
    """A benchmark by name or path.

    Args:
        name_or_path: One of `BENCHMARKS` (math500, aime24, aime25, amc23, gsm8k, olympiadbench, gaokao2023en;
            read from `data_dir/math/<name>.jsonl`), `"toy"` (the toy world's held-out problems), or a
            `.jsonl`/`.parquet` file whose rows hold a question (`problem`/`question`/`prompt`) and a gold answer
            (`answer`/`final_answer`/`gold`/`gold_answer`/`ground_truth`).
        limit: Keep the first `limit` problems.
        data_dir: Folder holding `math/` (default: `$RETROSEARCH_SHARED_DATA`, else `../shared/data`).
        toy_problems: Number of toy problems when `limit` is not given.
        toy_seed: Seed of the toy problems.

    Raises:
        FileNotFoundError: the file is not there (the message says where it looked).
        ValueError: an unknown name, or a row without a question or a gold answer (naming the row).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    text = str(name_or_path)
    key = text.lower()
    if key == TOY:
        from retrosearch.toy import make_problems

        probs = make_problems(limit if limit is not None else toy_problems, seed=toy_seed, split="test")
        return Benchmark(
            TOY,
            [EvalProblem(p.expression, p.question, str(p.answer)) for p in probs],
            f"toy(seed={toy_seed})",
        )
    if key in BENCHMARKS:
        fields = BENCHMARKS[key]
        path = _find_file(fields.file, data_dir)
        problems, skipped = _read_problems(path, fields, limit)
        return Benchmark(key, problems, str(path), skipped)
    path = Path(text)
    if path.suffix in (".jsonl", ".parquet"):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark file {path} does not exist")
        problems, skipped = _read_problems(path, _GENERIC, limit)
        if not problems:
            raise ValueError(f"benchmark {path}: no row has a gold answer")
        return Benchmark(path.stem, problems, str(path), skipped)
    raise ValueError(
        f"unknown benchmark {text!r}; expected one of {sorted(BENCHMARKS) + [TOY]} or a .jsonl/.parquet file"
    )
