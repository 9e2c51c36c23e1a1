"""The resumable JSONL journal of a batch job: one durable line per row, read back on resume."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Journal", "read_journal"]


def _scan_journal(
    path: Path, keep: Callable[[dict[str, Any]], dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """(`keep(record)` for each record, byte length of the good part), reading line by line.

    A torn or unreadable *last* line (a run killed mid-write) is left out; an unreadable line before the last
    is an error naming it.
    """
    records: list[dict[str, Any]] = []
    good = 0
    bad: tuple[int, str] | None = None
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if bad is not None:
                raise ValueError(
                    f"journal {path}, line {bad[0]}: unreadable record ({bad[1]}); fix or remove the line"
                )
            try:
                rec = json.loads(line.decode("utf-8")) if line.strip() else None
                if rec is not None and not (isinstance(rec, dict) and "row_id" in rec):
                    raise ValueError("not a journal record (no 'row_id')")
                if rec is not None and not line.endswith(b"\n"):
                    raise ValueError("no newline at the end: the write was cut off")
            except ValueError as e:
                bad = (lineno, str(e))
                continue
            if rec is not None:
                records.append(keep(rec))
            good += len(line)
    return records, good


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    """What the summary needs of a record (the rows and trees of a long journal stay on disk)."""
    return {k: rec[k] for k in ("row_id", "seq", "status", "stats") if k in rec}


def read_journal(path: str | Path, *, trees: bool = True) -> list[dict[str, Any]]:
    """The records of a journal, first one per row id, a torn last line left out (the file is not changed).

    Args:
        path: The journal.
        trees: Keep the search trees (`--save-trees`); `False` drops them to save memory.
    """
    keep = (lambda r: r) if trees else (lambda r: {k: v for k, v in r.items() if k != "tree"})
    records, _ = _scan_journal(Path(path), keep)
    seen: set[str] = set()
    out = []
    for r in records:
        if r["row_id"] not in seen:
            seen.add(r["row_id"])
            out.append(r)
    return out


class Journal:
    """An append-only JSONL file of row records, durable line by line (write, flush, fsync).

    Opening it reads what a previous run wrote and cuts off a torn last line, so `done` holds exactly the rows
    that need no redoing.

    Args:
        path: The journal file (created with its folder when absent).
        overwrite: Start afresh instead of resuming.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict[str, Any]] = {}
        self.torn_bytes = 0
        if self.path.exists() and not overwrite:
            records, good = _scan_journal(self.path, _slim)
            size = self.path.stat().st_size
            if good < size:
                self.torn_bytes = size - good
                with self.path.open("r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
            for r in records:
                self.records.setdefault(r["row_id"], r)
        self._f = self.path.open("w" if overwrite else "a", encoding="utf-8")

    @property
    def done(self) -> set[str]:
        """Row ids already in the journal (`records` maps each to its status and stats)."""
        return set(self.records)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record durably (one `write` call per line, so a kill can only tear the last line)."""
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        self._f.write(line)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.records.setdefault(record["row_id"], _slim(record))

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
