"""Read trace rows from JSONL, parquet, folders or `datasets`, with stable row ids, and adapt row layouts."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrosearch.trace import Trace

__all__ = [
    "BadRow",
    "RowAdapter",
    "check_source",
    "count_rows",
    "get_adapter",
    "input_identity",
    "locate_dataset",
    "read_rows",
    "row_key",
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


def row_key(row: Any) -> str:
    """A row's content key: 16 hex digits of the SHA-256 of its canonical JSON (key order does not matter).

    The same row has the same key in any file, at any line; a `BadRow` is keyed by its raw text.
    """
    if isinstance(row, BadRow):
        text = "bad:" + row.raw
    else:
        text = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --------------------------------------------------------------------------- sources
def _looks_like_path(text: str) -> bool:
    return Path(text).suffix in _FILE_SUFFIXES or text.startswith((".", "/", "~"))


def locate_dataset(name: str, *, timeout_s: float = 10.0) -> None:
    """Ask the hub once (no retries) whether dataset `name` exists, unless its cache has it.

    Raises:
        FileNotFoundError: the cache does not have `name` and the hub does not know it, is offline
            (`HF_HUB_OFFLINE`) or cannot be reached (loading it would retry for half a minute before failing).
    """
    offline = any(
        (os.environ.get(v) or "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    try:
        from huggingface_hub import constants, dataset_info
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    except ImportError:  # pragma: no cover - datasets depends on huggingface_hub
        return
    if (Path(constants.HF_HUB_CACHE) / ("datasets--" + name.replace("/", "--"))).is_dir():
        return
    if offline:
        raise FileNotFoundError(
            f"input {name!r} is not a local file or folder, nor in the hub cache (the hub is offline here)"
        )
    try:
        dataset_info(name, timeout=timeout_s)
    except RepositoryNotFoundError as e:
        raise FileNotFoundError(
            f"input {name!r} is not a local file or folder, nor a dataset on the hub"
        ) from e
    except HfHubHTTPError:  # gated, rate-limited, a server error: the loader may still succeed
        return
    except Exception as e:  # DNS failures, refused connections, timeouts
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise FileNotFoundError(
            f"input {name!r} is not a local file or folder, and the hub cannot be reached to fetch it ({reason})"
        ) from e


def check_source(source: str | Path) -> None:
    """Fail at once, in one line, on an input that `read_rows` cannot read: a missing path, a special file
    (`/dev/zero`, a pipe), or a hub name the hub does not have (asked once, without retries).

    Raises:
        FileNotFoundError: the input is nowhere to be found.
        ValueError: the input is a device, pipe or socket.
    """
    path = Path(source)
    if path.exists():
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ValueError(f"input {source}: not a regular file or a folder (a device, pipe or socket)")
        return
    text = str(source)
    if isinstance(source, Path) or _looks_like_path(text):
        raise FileNotFoundError(f"input {text!r}: no such file or folder")
    locate_dataset(text)


def input_identity(source: str | Path, *, split: str = "train", name: str | None = None) -> dict[str, Any]:
    """What names an input in a journal's fingerprint: its absolute path, or the hub name, config and split."""
    path = Path(source)
    if path.exists():
        out: dict[str, Any] = {"path": str(path.resolve())}
        if path.is_dir() and (path / "dataset_dict.json").is_file():
            out["split"] = split
        return out
    return {"dataset": str(source), "config": name, "split": split}


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

    Row ids say where a row is, for people and messages (a journal tells rows apart by `row_key`, their
    content): `"traces.jsonl:12"` (file name and 1-based line number), `"part-0.parquet:7"` (0-based row), the path
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
        FileNotFoundError: a folder without data files, a path-like source that does not exist, or a hub name
            the hub does not have (see `check_source`).
        ValueError: an unsupported file type, a special file or `limit < 0`.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if limit == 0:
        return
    check_source(source)
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
        ds, prefix = _load_dataset(str(source), split=split, name=name, from_disk=False)
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

    `Trace.parse` reads these rows and `Trace.to_row` writes them back (the reasoning and solution replaced,
    every other field as it came), so this adapter only names the layout.
    """

    name = "openthoughts-metadata"


_DEFAULT = RowAdapter()
_METADATA = OpenThoughtsMetadataAdapter()


def get_adapter(row: Any) -> RowAdapter:
    """The adapter for `row`'s layout: OpenThoughts metadata rows (they have `deepseek_reasoning`), else the
    default (`Trace.parse` layouts)."""
    if isinstance(row, Mapping) and "deepseek_reasoning" in row and "conversations" not in row:
        return _METADATA
    return _DEFAULT
