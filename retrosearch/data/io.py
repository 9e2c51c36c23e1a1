"""Read trace rows from JSONL, parquet, folders or `datasets`, with stable row ids, and adapt row layouts."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrosearch.text import last_boxed, split_think
from retrosearch.trace import Trace, TraceFormatError

__all__ = [
    "BadRow",
    "RowAdapter",
    "count_rows",
    "get_adapter",
    "read_rows",
]

_FILE_SUFFIXES = (".jsonl", ".parquet")


@dataclass(frozen=True)
class BadRow:
    """Stands in for an input row that could not be read at all (e.g. a JSONL line that is not valid JSON).

    Attributes:
        reason: What is wrong, naming the file and line.
        raw: The raw text of the line (for the error record).
    """

    reason: str
    raw: str = ""


# --------------------------------------------------------------------------- sources
def _is_saved_dataset(folder: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _data_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _FILE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"input folder {folder}: no *.jsonl or *.parquet files inside")
    return files


def _read_jsonl(path: Path, label: str) -> Iterator[tuple[str, Any]]:
    # Binary read + manual decode: a line with broken UTF-8 becomes one BadRow instead of ending the file.
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            row_id = f"{label}:{lineno}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    row_id,
                    BadRow(f"{row_id}: line is not valid UTF-8 ({e})", raw.decode("utf-8", "replace")),
                )
                continue
            if not text.strip():
                continue  # blank lines are not rows
            try:
                yield row_id, json.loads(text)
            except json.JSONDecodeError as e:
                yield (
                    row_id,
                    BadRow(f"{row_id}: invalid JSON ({e.msg} at column {e.colno})", text.rstrip("\n")),
                )


def _read_parquet(path: Path, label: str) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    k = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
        for row in batch.to_pylist():
            yield f"{label}:{k}", row
            k += 1


def _read_file(path: Path, label: str) -> Iterator[tuple[str, Any]]:
    if path.suffix == ".jsonl":
        return _read_jsonl(path, label)
    if path.suffix == ".parquet":
        return _read_parquet(path, label)
    raise ValueError(f"input file {path}: expected a .jsonl or .parquet file")


def _load_dataset(source: str | Path, *, split: str, name: str | None, from_disk: bool) -> tuple[Any, str]:
    """(a `datasets.Dataset`, the id prefix of its rows)."""
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading {source!r} needs the `datasets` package (pip install 'retrosearch[data]')"
        ) from e
    if from_disk:
        ds = datasets.load_from_disk(str(source))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"input {source}: no split {split!r}; it has {sorted(ds)}")
            return ds[split], split
        return ds, "row"
    ds = datasets.load_dataset(str(source), name=name, split=split)
    return ds, split


def read_rows(
    source: str | Path, *, split: str = "train", name: str | None = None, limit: int | None = None
) -> Iterator[tuple[str, Any]]:
    """Yield `(row_id, row)` for every input row, in a fixed order.

    Row ids are stable across runs over the same input, so that a journal can tell which rows are done:
    `"traces.jsonl:12"` (file name and 1-based line number), `"part-0.parquet:7"` (0-based row), the path
    relative to the folder for a folder of files, `"train:41"` for a `datasets` split (hub or saved with
    `DatasetDict.save_to_disk`) and `"row:41"` for a saved `Dataset`.

    Args:
        source: A `.jsonl` file, a `.parquet` file, a folder (every `*.jsonl` / `*.parquet` inside, recursively,
            in sorted order), a folder written by `datasets`' `save_to_disk`, or a `datasets` hub name such as
            `open-thoughts/OpenThoughts-114k`.
        split: Split to read from a hub dataset or a saved `DatasetDict`.
        name: Configuration of a hub dataset (e.g. `"metadata"` for OpenThoughts-114k's rows with ground-truth
            solutions).
        limit: Stop after this many rows (malformed lines count as rows).

    Yields:
        `(row_id, row)`; `row` is the decoded JSON value / dataset row, or a `BadRow` for a line that could not
        be decoded (the caller records an error for it and goes on).

    Raises:
        FileNotFoundError: a folder without data files, or a path-like source that does not exist.
        ValueError: an unsupported file type or `limit < 0`.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if limit == 0:
        return
    path = Path(source)
    if path.is_file():
        rows = _read_file(path, path.name)
    elif path.is_dir():
        if _is_saved_dataset(path):
            ds, prefix = _load_dataset(path, split=split, name=name, from_disk=True)
            rows = ((f"{prefix}:{i}", row) for i, row in enumerate(ds))
        else:
            rows = (item for f in _data_files(path) for item in _read_file(f, f.relative_to(path).as_posix()))
    else:
        text = str(source)
        if path.suffix in _FILE_SUFFIXES or text.startswith((".", "/", "~")):
            raise FileNotFoundError(f"input {text!r} does not exist")
        ds, prefix = _load_dataset(text, split=split, name=name, from_disk=False)
        rows = ((f"{prefix}:{i}", row) for i, row in enumerate(ds))
    for k, item in enumerate(rows):
        if limit is not None and k >= limit:
            break
        yield item


def count_rows(source: str | Path, *, split: str = "train", name: str | None = None) -> int | None:
    """Number of rows `read_rows` will yield (for a progress bar), or `None` when it is not cheap to know."""
    path = Path(source)
    try:
        if path.is_file() and path.suffix == ".jsonl":
            with path.open("rb") as f:
                return sum(1 for line in f if line.strip())
        if path.is_file() and path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if path.is_dir() and not _is_saved_dataset(path):
            return sum(count_rows(f) or 0 for f in _data_files(path))
        if path.is_dir():
            ds, _ = _load_dataset(path, split=split, name=name, from_disk=True)
            return len(ds)
    except (OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------- row layouts
class RowAdapter:
    """How one row layout becomes a trace input for `revise`, and how a revised trace goes back into a row.

    The default handles whatever `Trace.parse` reads (OpenThoughts `conversations` rows, flat rows, raw strings)
    and writes back with `Trace.to_row` (or `Trace.render` for a string), so a row keeps its layout and keys.
    """

    name = "trace"

    def to_trace_input(self, row: Any) -> Any:
        """What to hand to `revise` for `row` (a `str`, a `dict` or a `Trace`)."""
        return row

    def to_row(self, row: Any, revised: Trace) -> Any:
        """`row` with its response replaced by `revised`, in the row's own layout."""
        return revised.render() if isinstance(row, str) else revised.to_row()


class OpenThoughtsMetadataAdapter(RowAdapter):
    """OpenThoughts-114k's `metadata` configuration: `problem`, `deepseek_reasoning`, `deepseek_solution`, and
    `ground_truth_solution` (whose last `\\boxed{}` is the gold answer; none for e.g. code problems).

    The reasoning and the solution are joined into an R1-style response (`<think>\\n…\\n</think>\\n\\n…`); the
    revised row is the input row with `deepseek_reasoning` and `deepseek_solution` replaced and every other field
    (domain, source, test cases, …) as it came.
    """

    name = "openthoughts-metadata"
    fields = ("problem", "deepseek_reasoning", "deepseek_solution")

    def to_trace_input(self, row: Any) -> Any:
        for f in self.fields:
            if not isinstance(row.get(f), str):
                got = "missing" if f not in row else type(row[f]).__name__
                raise TraceFormatError(
                    f"field {f!r}: expected a string (OpenThoughts metadata row), got {got}"
                )
        gt = row.get("ground_truth_solution")
        if gt is not None and not isinstance(gt, str):
            raise TraceFormatError(
                f"field 'ground_truth_solution': expected a string or null, got {type(gt).__name__}"
            )
        reasoning = split_think(row["deepseek_reasoning"].strip())[0].strip()
        response = f"<think>\n{reasoning}\n</think>\n\n{row['deepseek_solution'].strip()}"
        return Trace.parse(response, question=row["problem"], gold=last_boxed(gt) if gt else None)

    def to_row(self, row: Any, revised: Trace) -> Any:
        out = copy.deepcopy(dict(row))
        out["deepseek_reasoning"] = revised.thinking
        out["deepseek_solution"] = revised.solution or ""
        return out


_DEFAULT = RowAdapter()
_METADATA = OpenThoughtsMetadataAdapter()


def get_adapter(row: Any) -> RowAdapter:
    """The adapter for `row`'s layout: OpenThoughts metadata rows (they have `deepseek_reasoning`), else the
    default (`Trace.parse` layouts)."""
    if isinstance(row, Mapping) and "deepseek_reasoning" in row and "conversations" not in row:
        return _METADATA
    return _DEFAULT
