"""Data in and out: readers of files, folders and datasets, row adapters, the resumable journal, export."""

from retrosearch.data.export import export_journal
from retrosearch.data.io import (
    BadRow,
    RowAdapter,
    check_source,
    count_rows,
    get_adapter,
    input_identity,
    read_rows,
    row_key,
)
from retrosearch.data.journal import Journal, JournalError, is_header, is_journal, read_header, read_journal

__all__ = [
    "BadRow",
    "Journal",
    "JournalError",
    "RowAdapter",
    "check_source",
    "count_rows",
    "export_journal",
    "get_adapter",
    "input_identity",
    "is_header",
    "is_journal",
    "read_header",
    "read_journal",
    "read_rows",
    "row_key",
]
