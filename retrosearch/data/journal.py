"""The resumable JSONL journal of a batch job: a fingerprint header, then one durable line per row."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "HEADER_KEY",
    "Journal",
    "JournalError",
    "fingerprint_changes",
    "is_header",
    "is_journal",
    "read_header",
    "read_journal",
]

#: The key that marks a journal's first line (its value is the format version).
HEADER_KEY = "retrosearch_journal"
VERSION = 2
# Records are written with `row_id` first, so a line cut off mid-write starts with this.
_RECORD_START = b'{"row_id"'
_HEADER_START = b'{"' + HEADER_KEY.encode() + b'"'


class JournalError(ValueError):
    """A journal that cannot be resumed or a file that is not a journal (the message is one line)."""


def is_header(rec: Any) -> bool:
    """Whether `rec` is a journal's header record (its first line)."""
    return isinstance(rec, dict) and HEADER_KEY in rec


def _is_record(rec: Any) -> bool:
    return isinstance(rec, dict) and "row_id" in rec and "status" in rec


def _key(rec: dict[str, Any]) -> str:
    """What identifies a record's row: its content key (journals before version 2: its row id)."""
    return str(rec.get("row_key") or rec["row_id"])


def _starts_like(line: bytes, start: bytes) -> bool:
    """Whether `line` begins with `start`, or is a beginning of it (cut off even earlier)."""
    return line.startswith(start) or start.startswith(line)


def _check_regular(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
        raise JournalError(f"journal {path} is {kind}; give the journal's file name (e.g. runs/x.jsonl)")


#: Bytes of a first line read to tell what a file is (a header is far shorter; a longer line is judged by
#: its start).
_PEEK = 1 << 20


def _first_line(path: Path) -> bytes:
    """The first non-blank line, or its first `_PEEK` bytes (a huge file without newlines is not read)."""
    with path.open("rb") as f:
        while True:
            line = f.readline(_PEEK)
            if not line or line.strip():
                return line


def _classify(line: bytes) -> str:
    """`"header"`, `"record"` (a journal of version 1, no header), `"torn-header"` or `"other"`."""
    if len(line) >= _PEEK and not line.endswith(b"\n"):
        return "record" if line.startswith(_RECORD_START) else "other"
    try:
        rec = json.loads(line.decode("utf-8"))
    except ValueError:
        if not line.endswith(b"\n") and _starts_like(line, _HEADER_START):
            return "torn-header"
        return "other"
    if is_header(rec) and line.endswith(b"\n"):
        return "header"
    if is_header(rec):
        return "torn-header"
    return "record" if _is_record(rec) else "other"


def is_journal(path: str | Path) -> bool:
    """Whether `path` is a regular file whose first line is a journal header or a journal record."""
    p = Path(path)
    try:
        if not p.is_file():
            return False
        return _classify(_first_line(p)) in ("header", "record")
    except OSError:
        return False


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The header record of a journal (`None` for a journal of version 1, which has none)."""
    line = _first_line(Path(path))
    return json.loads(line) if _classify(line) == "header" else None


def _scan(
    path: Path, keep: Callable[[dict[str, Any]], dict[str, Any]], *, lenient: bool = False
) -> tuple[list[dict[str, Any]], int, str]:
    """(`keep(record)` for each row record, byte length of the good part, why the rest is not good).

    Only a last line without its newline that is a journal record or the start of one (a run killed mid-write;
    with `lenient`, any last line without its newline) is left out; any other line that is not a record is an
    error naming it.
    """
    records: list[dict[str, Any]] = []
    good = 0
    torn = ""
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                good += len(line)
                continue
            complete = line.endswith(b"\n")
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:
                rec = None
            if complete and is_header(rec) and lineno == 1:
                good += len(line)
                continue
            if complete and _is_record(rec):
                records.append(keep(rec))
                good += len(line)
                continue
            if not complete and lineno == 1 and _starts_like(line, _HEADER_START):
                torn = "its header was cut off mid-write"
                break
            if not complete and (lenient or _is_record(rec) or _starts_like(line, _RECORD_START)):
                torn = f"line {lineno} was cut off mid-write ({len(line)} bytes without a newline)"
                break
            raise JournalError(
                f"journal {path}, line {lineno}: not a journal record; fix or remove the line (nothing was changed)"
            )
    return records, good, torn


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    """What the summary needs of a record (the rows and trees of a long journal stay on disk)."""
    return {k: rec[k] for k in ("row_id", "row_key", "seq", "status", "stats") if k in rec}


def read_journal(path: str | Path, *, trees: bool = True) -> list[dict[str, Any]]:
    """The row records of a journal (its header left out), first one per row, a torn last line left out.

    The file is not changed.

    Args:
        path: The journal.
        trees: Keep the search trees (`--save-trees`); `False` drops them to save memory.

    Raises:
        JournalError: a line before the last that is not a record, or a file that is not a journal.
    """
    p = Path(path)
    _check_regular(p)
    if p.stat().st_size and _classify(_first_line(p)) == "other":
        raise JournalError(f"{p} is not a retrosearch journal (its first line is not a journal record)")
    keep = (lambda r: r) if trees else (lambda r: {k: v for k, v in r.items() if k != "tree"})
    records, _, _ = _scan(p, keep, lenient=True)
    seen: set[str] = set()
    out = []
    for r in records:
        if _key(r) not in seen:
            seen.add(_key(r))
            out.append(r)
    return out


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """`"key: old -> new"` for each leaf that differs between two fingerprints (nested keys joined by dots)."""
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, "(absent)"), new.get(k, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += fingerprint_changes(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, so that an interrupt never tears the line being written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


class Journal:
    """An append-only JSONL file: a header with the job's fingerprint, then one row record per line.

    Each line is durable once written (write, flush, fsync, with Ctrl-C held meanwhile). Nothing is created,
    cut or truncated until the first record is written (or `finish` is called), so a run that fails to start
    leaves no file behind and an old journal as it was.

    Resuming refuses a journal whose fingerprint differs from this run's, a journal of version 1 (no
    fingerprint) and any file that is not a journal; `overwrite` starts a journal anew, but never overwrites a
    file that is not one. A last line cut off mid-write is reported in `notes` and cut when writing resumes.

    Args:
        path: The journal file (created with its folder on the first write).
        fingerprint: What the rows depend on (settings, models, input); `None` skips the check.
        overwrite: Start anew instead of resuming.

    Raises:
        JournalError: the path is a folder or a special file, is not a journal, or a journal of another job.
    """

    def __init__(
        self, path: str | Path, fingerprint: dict[str, Any] | None = None, *, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        # JSON round trip: tuples become lists, as they will read back.
        self.fingerprint = json.loads(json.dumps(fingerprint or {}, default=str))
        self.records: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.torn_bytes = 0
        self._truncate_to: int | None = None  # bytes kept when the file is opened for writing
        self._f: Any = None
        _check_regular(self.path)
        size = self.path.stat().st_size if self.path.exists() else 0
        kind = _classify(_first_line(self.path)) if size else "empty"
        if kind == "other":
            raise JournalError(
                f"{self.path} exists and is not a retrosearch journal (its first line is not a journal record); "
                "it is left as it is: give another output file"
            )
        if kind == "torn-header":
            self.notes.append(f"journal {self.path}: its header was cut off mid-write; starting it anew")
            self._truncate_to = 0
            return
        if overwrite or kind == "empty":
            self._truncate_to = 0
            return
        if kind == "record":
            raise JournalError(
                f"journal {self.path} has no fingerprint (written by an older retrosearch), so it cannot be "
                "resumed safely; use --overwrite to start anew, or another output file"
            )
        header = read_header(self.path) or {}
        if header.get(HEADER_KEY) != VERSION:
            raise JournalError(
                f"journal {self.path} has format version {header.get(HEADER_KEY)!r}, this retrosearch writes "
                f"{VERSION}; use --overwrite to start anew, or another output file"
            )
        if fingerprint is not None:
            changes = fingerprint_changes(header.get("fingerprint") or {}, self.fingerprint)
            if changes:
                shown = "; ".join(changes[:4]) + (
                    f"; and {len(changes) - 4} more" if len(changes) > 4 else ""
                )
                raise JournalError(
                    f"journal {self.path} was written with other settings ({shown}); resume with the same "
                    "settings, or use --overwrite to start anew, or give another output file"
                )
        self.fingerprint = header.get("fingerprint") or {}
        records, good, torn = _scan(self.path, _slim)
        if torn:
            self.torn_bytes = size - good
            self.notes.append(f"journal {self.path}: {torn}; it is removed and its row redone")
            self._truncate_to = good
        for r in records:
            self.records.setdefault(_key(r), r)

    @property
    def done(self) -> set[str]:
        """Keys of the rows already in the journal (`records` maps each to its status and stats)."""
        return set(self.records)

    def _open(self) -> None:
        if self._f is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self._truncate_to == 0 or not self.path.exists()
        with _sigint_deferred():
            if fresh:
                self._f = self.path.open("w", encoding="utf-8")
                header = {HEADER_KEY: VERSION, "fingerprint": self.fingerprint}
                self._write_line(json.dumps(header, ensure_ascii=False, default=str) + "\n")
            else:
                if self._truncate_to is not None:
                    with self.path.open("r+b") as f:
                        f.truncate(self._truncate_to)
                        f.flush()
                        os.fsync(f.fileno())
                self._f = self.path.open("a", encoding="utf-8")
        self._truncate_to = None

    def _write_line(self, line: str) -> None:
        self._f.write(line)
        self._f.flush()
        os.fsync(self._f.fileno())

    def write(self, record: dict[str, Any]) -> None:
        """Append one record durably (one line; a kill can only tear the last line, Ctrl-C none).

        `record` must start with `row_id` and carry a `status`; `row_key` (the row's content key) identifies
        the row when present.
        """
        if not _is_record(record) or next(iter(record)) != "row_id":
            raise ValueError("a journal record is a dict that starts with 'row_id' and has a 'status'")
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        self._open()
        with _sigint_deferred():
            self._write_line(line)
        self.records.setdefault(_key(record), _slim(record))

    def finish(self) -> None:
        """Make sure the file exists with its header (a run without rows to write still leaves a journal)."""
        self._open()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
