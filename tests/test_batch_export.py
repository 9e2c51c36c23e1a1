"""`retrosearch export`: every journal the batch job can write becomes a parquet dataset, or a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrosearch.cli import main
from retrosearch.data.export import ERROR_COLUMN, export_journal

pytest.importorskip("datasets")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "scripted_model.json"
ROWS = [json.loads(line) for line in (ROOT / "examples" / "traces.jsonl").read_text().splitlines()]


def journal_of(tmp_path: Path, lines: list[str]) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "j.jsonl"
    argv = [
        "revise",
        "--input",
        str(src),
        "--output",
        str(out),
        "--backend",
        "scripted",
        "--model",
        str(SCRIPT),
    ]
    assert main([*argv, "--no-progress"]) == 0
    return out


def test_mixed_gold_types_export_as_strings(tmp_path, capsys):
    # amc23 keeps its answers as floats: a journal over it and another set holds 27.0 beside "11".
    rows = [dict(ROWS[4], gold=27.0), dict(ROWS[5]), dict(ROWS[0], gold=42)]
    out = journal_of(tmp_path, [json.dumps(r) for r in rows])
    parquet = tmp_path / "x.parquet"
    assert main(["export", "--journal", str(out), "--output", str(parquet)]) == 0
    ds = export_journal(out)
    assert ds["gold"] == ["27.0", "25", "42"]
    assert "wrote 3 rows" in capsys.readouterr().out


def test_error_rows_are_exported_with_their_reason_unless_dropped(tmp_path):
    lines = [
        json.dumps(ROWS[0]),
        '{"question": "cut off',  # not JSON: nothing of the row is left but its reason
        json.dumps({"question": "q", "response": 7}),  # a response of the wrong type, beside strings
        json.dumps({"question": "What is 2 + 2?", "gold": "4"}),  # no response at all
        json.dumps(ROWS[5]),
    ]
    out = journal_of(tmp_path, lines)
    ds = export_journal(out)
    assert len(ds) == 5 and ERROR_COLUMN in ds.column_names
    errors = ds[ERROR_COLUMN]
    assert errors[0] is None and errors[4] is None
    assert errors[1].startswith("in.jsonl:2: invalid JSON") and "'response'" in errors[2]
    assert ds["response"][2] == "7" and ds["question"][1] is None  # the wrong-typed value kept, as text
    dropped = export_journal(out, include_errors=False)
    assert len(dropped) == 2 and ERROR_COLUMN not in dropped.column_names
    assert dropped["response"][1] == ROWS[5]["response"]
    parquet = tmp_path / "ok.parquet"
    assert main(["export", "--journal", str(out), "--output", str(parquet), "--drop-errors"]) == 0
    import datasets

    assert datasets.Dataset.from_parquet(str(parquet)).num_rows == 2


def test_a_journal_of_only_errors_says_so_with_drop_errors(tmp_path, capsys):
    out = journal_of(tmp_path, ["{broken"])
    assert len(export_journal(out)) == 1
    assert (
        main(["export", "--journal", str(out), "--output", str(tmp_path / "x.parquet"), "--drop-errors"]) == 1
    )
    assert "no rows other than errors to export" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("data", "not a retrosearch journal"),
        ("corrupt", "line 2: not a journal record"),
        ("suffix", "expected a .parquet file name"),
    ],
)
def test_export_problems_are_one_line_errors(tmp_path, capsys, setup, message):
    journal = tmp_path / "j.jsonl"
    output = tmp_path / "x.parquet"
    if setup == "data":
        journal.write_text(json.dumps(ROWS[0]) + "\n")
    elif setup == "corrupt":
        journal = journal_of(tmp_path, [json.dumps(ROWS[0]), json.dumps(ROWS[1])])
        lines = journal.read_text().splitlines(keepends=True)
        journal.write_text(lines[0] + "{garbage\n" + "".join(lines[2:]))
    elif setup == "suffix":
        journal = journal_of(tmp_path, [json.dumps(ROWS[0])])
        output = tmp_path / "x.csv"
    capsys.readouterr()
    assert main(["export", "--journal", str(journal), "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not output.exists()
