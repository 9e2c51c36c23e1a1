"""Data in and out: readers of files, folders and datasets, row adapters, and the resumable journal."""

from retrosearch.data.io import BadRow, RowAdapter, count_rows, get_adapter, read_rows
from retrosearch.data.journal import Journal, read_journal

__all__ = ["BadRow", "Journal", "RowAdapter", "count_rows", "get_adapter", "read_journal", "read_rows"]
