"""Loading Retro-Search results for analysis: from memory, records, a journal file or a folder holding one."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from retrosearch.data.journal import is_header, is_journal, read_journal
from retrosearch.retro import RevisionResult

#: File names a demo/output folder's journal is looked for under, in order, when the folder holds several.
JOURNAL_NAMES: tuple[str, ...] = ("revisions.jsonl", "results.jsonl", "journal.jsonl", "revised.jsonl")

#: Statuses of traces that were searched (have exploration records, full stats and, when kept, a tree).
SEARCHED = ("revised", "unchanged")

ResultsLike = Any  # RevisionResult | Sequence[RevisionResult | dict] | str | Path


def _from_record(rec: dict[str, Any], position: int, source: str) -> RevisionResult:
    """A `RevisionResult` from a journal line or `RevisionResult.to_record()` (traces are not re-parsed)."""
    if not isinstance(rec, dict) or "status" not in rec:
        raise ValueError(f"{source}, record {position}: expected a dict with a 'status' (a journal record)")
    index = rec.get("index", rec.get("seq", position))
    try:
        res = RevisionResult.from_record(rec, index=int(index))
    except ValueError as e:
        raise ValueError(f"{source}, record {position}: {e}") from e
    # The journal names rows by a stable id; keep it for the tables (not a RevisionResult field).
    res.row_id = str(rec.get("row_id", index))  # type: ignore[attr-defined]
    return res


def _journal_in_folder(folder: Path) -> Path:
    found = sorted(p for p in folder.glob("*.jsonl") if is_journal(p))
    if not found:
        found = sorted(p for p in folder.glob("*/*.jsonl") if is_journal(p))
    if len(found) == 1:
        return found[0]
    for name in JOURNAL_NAMES:
        for p in found:
            if p.name == name:
                return p
    if not found:
        raise ValueError(
            f"{folder}: no journal found (a .jsonl file written by `retrosearch revise`: a journal header or "
            "records with 'row_id' and 'status')"
        )
    raise ValueError(
        f"{folder}: several journals ({', '.join(p.name for p in found)}); pass the one to load "
        f"(or name it one of {JOURNAL_NAMES})"
    )


def _read_journal(path: Path) -> list[RevisionResult]:
    """The results of a journal: its header left out, the first record of each row, a torn last line left out."""
    return [_from_record(rec, k, str(path)) for k, rec in enumerate(read_journal(path))]


def load_results(source: ResultsLike) -> list[RevisionResult]:
    """Results of a Retro-Search run, from memory or from disk, as a list of `RevisionResult`.

    Args:
        source: A `RevisionResult` or a list of them (returned as they are), a list of records (dicts as written
            by `RevisionResult.to_record()` or the lines of a batch journal, its header left out), a journal `.jsonl` written by
            `retrosearch revise` (trees are read when it was run with `--save-trees`; the exploration records
            are always there), or a folder holding one such journal (e.g. the output folder of
            `retrosearch demo`).

    Returns:
        Results sorted by input position. Results read from records have `original`/`revised` set to `None`
        and carry the journal's `row_id` as an extra attribute.

    Raises:
        ValueError: the file or folder holds no journal, or a record is malformed (the message names it).
    """
    if isinstance(source, RevisionResult):
        return [source]
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            path = _journal_in_folder(path)
        elif not path.is_file():
            raise ValueError(f"load_results: {path} is neither a journal file nor a folder")
        return sorted(_read_journal(path), key=lambda r: r.index)
    if isinstance(source, dict):
        return [_from_record(source, 0, "record")]
    out = []
    for k, item in enumerate(source):
        if is_header(item):
            continue  # the first line of a journal read as it is: its settings, not a row
        if isinstance(item, RevisionResult):
            out.append(item)
        elif isinstance(item, dict):
            out.append(_from_record(item, k, "records"))
        else:
            raise TypeError(
                f"load_results: item {k} is a {type(item).__name__}, expected a RevisionResult or a record dict"
            )
    return sorted(out, key=lambda r: r.index)


def row_id(res: RevisionResult) -> str:
    """The journal's row id of a result (its index for results made in memory)."""
    return str(getattr(res, "row_id", res.index))


def has_records(res: RevisionResult) -> bool:
    """Whether a searched result carries its exploration records (every one `revise` makes does)."""
    return bool(res.explorations) or not res.stats.get("boundaries_explored")


def searched_with_records(results: list[RevisionResult], what: str) -> list[RevisionResult]:
    """The searched results that carry exploration records; warns about, or refuses, those that do not."""
    searched = [r for r in results if r.status in SEARCHED]
    ok = [r for r in searched if has_records(r)]
    if searched and not ok:
        raise ValueError(
            f"{what} needs the exploration records, and none of the {len(searched)} searched results has them "
            "(a journal written by an older retrosearch): revise the traces again"
        )
    if len(ok) < len(searched):
        warnings.warn(
            f"{what}: {len(searched) - len(ok)} of {len(searched)} searched results have no exploration records "
            "and are left out",
            stacklevel=3,
        )
    return ok
