"""A batch journal as a dataset in the input's row layout, in input order (parquet on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retrosearch.data.journal import read_journal

__all__ = ["ERROR_COLUMN", "export_journal"]

#: The column that holds an error row's reason (present only when the export has error rows).
ERROR_COLUMN = "revise_error"


def _as_text(value: Any) -> Any:
    return (
        value
        if value is None or isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, default=str)
    )


def _column(name: str, values: list[Any]) -> Any:
    """One Arrow column; values of mixed types (`27.0` beside `"11"`) become strings (JSON for non-strings)."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([_as_text(v) for v in values], type=pa.string())


def _rows(journal: str | Path, include_errors: bool) -> list[dict[str, Any]]:
    # A stable sort: rows of a resumed run over a changed input keep the order they were written in on ties.
    records = sorted(read_journal(journal, trees=False), key=lambda r: r.get("seq", 0))
    rows = []
    for r in records:
        error = r.get("status") == "error"
        if error and not include_errors:
            continue
        row = r.get("row")
        if row is None:  # a line that was not valid JSON: nothing but the reason is left of it
            row = {}
        elif not isinstance(row, dict):
            row = {"response": row}
        if error:
            row = {**row, ERROR_COLUMN: str(r.get("reason") or "error")}
        rows.append(row)
    return rows


def export_journal(
    journal: str | Path, out_parquet: str | Path | None = None, *, include_errors: bool = True
) -> Any:
    """The journal as a `datasets.Dataset` in the input layout, in input order; saved as parquet when asked.

    Revised rows carry the revised trace; unchanged and skipped rows are as they came. Error rows are kept
    (as they came, or empty for a line that was not valid JSON) with their reason in the `revise_error` column,
    unless `include_errors` is False. Columns are the union of the rows' keys (a row lacking one gets `None`);
    a column whose values have different types (a gold of `27.0` beside `"11"`) is written as strings.

    Args:
        journal: A journal written by `run_batch` / `retrosearch revise`.
        out_parquet: Where to write the parquet file (its folder is created).
        include_errors: Keep rows whose status is `error`.

    Returns:
        The `datasets.Dataset`.

    Raises:
        ValueError: not a journal, a damaged journal, or no rows to export (one line each).
    """
    import datasets
    import pyarrow as pa

    rows = _rows(journal, include_errors)
    if not rows:
        what = "no rows" if include_errors else "no rows other than errors"
        raise ValueError(f"journal {journal}: {what} to export")
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    table = pa.table({k: _column(k, [row.get(k) for row in rows]) for k in keys})
    ds = datasets.Dataset(table)
    if out_parquet is not None:
        out = Path(out_parquet)
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(out))
    return ds
