"""`retrosearch export`: a revise journal as a parquet dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from retrosearch.cli.common import Formatter
from retrosearch.data.export import ERROR_COLUMN, export_journal


def add_parser(subparsers: Any) -> None:
    """Add the `export` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="Turn a revise journal into a parquet dataset in the input's row layout.",
        description="Write the rows of a journal (revised rows replaced, others as they came), in input order, "
        "as a parquet file loadable with `datasets.load_dataset('parquet', data_files=...)`. Error rows keep "
        f"their reason in a `{ERROR_COLUMN}` column; a column whose values have mixed types (a gold of 27.0 "
        "beside '11') is written as strings.",
        formatter_class=Formatter,
    )
    p.add_argument("--journal", required=True, help="A JSONL journal written by `retrosearch revise`.")
    p.add_argument("--output", required=True, help="The parquet file to write.")
    p.add_argument(
        "--drop-errors", action="store_true", help="Leave out rows whose status is error (e.g. invalid JSON)."
    )
    p.set_defaults(func=_run_export, _parser=p)


def _run_export(args: argparse.Namespace) -> int:
    if not Path(args.journal).is_file():
        raise ValueError(f"--journal {args.journal}: no such file")
    if not args.output.endswith(".parquet"):
        raise ValueError(f"--output {args.output}: expected a .parquet file name")
    ds = export_journal(args.journal, args.output, include_errors=not args.drop_errors)
    print(f"wrote {len(ds)} rows ({', '.join(ds.column_names)}) to {args.output}")
    return 0
