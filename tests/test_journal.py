"""The batch journal: a fingerprint header, rows known by content, and nothing that is not a journal touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import retrosearch
from retrosearch.backends import ScriptedBackend
from retrosearch.backends.spec import BackendSpec, load_script
from retrosearch.cli import main
from retrosearch.data.io import row_key
from retrosearch.data.journal import (
    HEADER_KEY,
    Journal,
    JournalError,
    is_header,
    is_journal,
    read_header,
    read_journal,
)
from retrosearch.retro import RetroSearchConfig
from retrosearch.retro.batch import run_batch

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "examples" / "traces.jsonl"
SCRIPT = ROOT / "examples" / "scripted_model.json"
ROWS = [json.loads(line) for line in TRACES.read_text().splitlines()]
PKG_PARENT = Path(retrosearch.__file__).parent.parent


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def revise(inp: Path, out: Path, *extra: str) -> int:
    argv = [
        "revise",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--backend",
        "scripted",
        "--model",
        str(SCRIPT),
    ]
    return main([*argv, "--no-progress", *extra])


def rows_of(journal: Path) -> list[dict]:
    return read_journal(journal)


# --------------------------------------------------------------------------- the fingerprint
def test_the_first_line_is_a_header_with_settings_models_and_input(tmp_path):
    out = tmp_path / "j.jsonl"
    assert revise(TRACES, out, "--n-rollouts", "2") == 0
    header = json.loads(out.read_text().splitlines()[0])
    assert is_header(header) and header[HEADER_KEY] == 2 and read_header(out) == header
    fp = header["fingerprint"]
    assert fp["input"] == {"path": str(TRACES.resolve())}
    assert fp["models"]["revision"] == {"backend": "scripted", "model": str(SCRIPT.resolve())}
    assert fp["config"]["n"] == 2
    # Readers get row records only; each row is known by its content.
    recs = sorted(rows_of(out), key=lambda r: r["seq"])
    assert len(recs) == len(ROWS) and not any(is_header(r) for r in recs)
    assert [r["row_key"] for r in recs] == [row_key(r) for r in ROWS]
    assert is_journal(out) and not is_journal(TRACES)


def test_resuming_with_other_settings_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "j.jsonl"
    assert revise(TRACES, out, "--limit", "3") == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert revise(TRACES, out, "--gamma", "0.5") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings" in err and "gamma: 0.9 -> 0.5" in err
    assert "--overwrite" in err and out.read_bytes() == before
    # The same settings resume (a larger --limit is no other setting), and --overwrite starts anew.
    assert revise(TRACES, out) == 0 and len(rows_of(out)) == len(ROWS)
    assert revise(TRACES, out, "--gamma", "0.5", "--overwrite", "--limit", "2") == 0
    assert len(rows_of(out)) == 2 and read_header(out)["fingerprint"]["config"]["gamma"] == 0.5


def test_another_file_with_the_same_name_is_not_taken_as_done(tmp_path, capsys):
    out = tmp_path / "j.jsonl"
    a = write_jsonl(tmp_path / "a" / "traces.jsonl", ROWS[:2])
    b = write_jsonl(tmp_path / "b" / "traces.jsonl", ROWS[2:4])
    assert revise(a, out) == 0
    capsys.readouterr()
    assert revise(b, out) == 1
    assert "input.path" in capsys.readouterr().err
    assert [r["row_key"] for r in rows_of(out)] == [row_key(r) for r in ROWS[:2]]


def test_an_input_that_gained_and_lost_lines_maps_rows_by_content(tmp_path):
    src = tmp_path / "in.jsonl"
    out = tmp_path / "j.jsonl"
    write_jsonl(src, [ROWS[0], ROWS[1], ROWS[5]])
    assert revise(src, out) == 0
    first = {r["row_key"]: r for r in rows_of(out)}
    # A new row at the top, one row gone: line numbers all moved.
    write_jsonl(src, [ROWS[3], ROWS[0], ROWS[5]])
    assert revise(src, out) == 0
    recs = rows_of(out)
    assert len(recs) == 4  # the three first rows, and only the new one added
    new = recs[-1]
    assert new["row_key"] == row_key(ROWS[3]) and new["row_id"] == "in.jsonl:1"
    assert new["status"] == "revised" and "deepseek_reasoning" in new["row"]
    assert {r["row_key"]: r for r in recs[:3]} == first


def test_repeated_rows_are_each_revised_once(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [ROWS[0], ROWS[0], ROWS[4]])
    out = tmp_path / "j.jsonl"
    assert revise(src, out) == 0
    keys = [r["row_key"] for r in sorted(rows_of(out), key=lambda r: r["seq"])]
    assert keys == [row_key(ROWS[0]), row_key(ROWS[0]) + "#2", row_key(ROWS[4])]
    assert revise(src, out) == 0 and len(rows_of(out)) == 3


def test_a_journal_without_fingerprint_is_not_resumed(tmp_path, capsys):
    out = tmp_path / "old.jsonl"
    out.write_text(json.dumps({"row_id": "traces.jsonl:1", "seq": 0, "status": "skipped", "row": {}}) + "\n")
    assert revise(TRACES, out) == 1
    assert "no fingerprint" in capsys.readouterr().err
    assert revise(TRACES, out, "--overwrite") == 0 and len(rows_of(out)) == len(ROWS)


# --------------------------------------------------------------------------- what is not ours is left alone
def test_a_data_file_given_as_output_is_never_overwritten(tmp_path, capsys):
    data = write_jsonl(tmp_path / "data.jsonl", [ROWS[0]])
    before = data.read_bytes()
    for extra in ((), ("--overwrite",)):
        assert revise(TRACES, data, *extra) == 1
        assert "not a retrosearch journal" in capsys.readouterr().err
        assert data.read_bytes() == before


def test_a_complete_last_line_that_is_not_a_record_is_refused_not_deleted(tmp_path):
    out = tmp_path / "j.jsonl"
    assert revise(TRACES, out, "--limit", "2") == 0
    with out.open("a") as f:
        f.write(json.dumps({"note": "added by hand"}))  # complete JSON, no newline, not a record
    before = out.read_bytes()
    with pytest.raises(JournalError, match="line 4: not a journal record"):
        Journal(out)
    assert revise(TRACES, out) == 1 and out.read_bytes() == before


def test_a_torn_last_line_is_reported_and_its_row_redone(tmp_path, capsys):
    out = tmp_path / "j.jsonl"
    assert revise(TRACES, out) == 0
    data = out.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    out.write_bytes(data[: last + 30])
    capsys.readouterr()
    assert revise(TRACES, out) == 0
    err = capsys.readouterr().err
    assert "line 8 was cut off mid-write (30 bytes without a newline)" in err and "redone" in err
    assert out.read_bytes() == data


@pytest.mark.parametrize("flag", ["--output", "--input"])
def test_special_files_are_refused_at_once(tmp_path, capsys, flag):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    inp, out = (
        (TRACES, Path("/dev/zero")) if flag == "--output" else (Path("/dev/zero"), tmp_path / "j.jsonl")
    )
    t0 = time.perf_counter()
    with pytest.raises(SystemExit):
        revise(inp, out)
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert "regular file" in err
    assert not (tmp_path / "j.jsonl").exists()


def test_journal_refuses_a_folder_and_a_device():
    with pytest.raises(JournalError, match="is a folder"):
        Journal(ROOT)
    if Path("/dev/zero").exists():
        with pytest.raises(JournalError, match="not a regular file"):
            Journal("/dev/zero")
        with pytest.raises(JournalError, match="not a regular file"):
            read_journal("/dev/zero")


# --------------------------------------------------------------------------- failed starts
def test_a_failed_start_leaves_no_journal_behind(tmp_path):
    out = tmp_path / "runs" / "j.jsonl"

    class Broken(BackendSpec):
        def build(self):
            raise ValueError("the model cannot be loaded")

    with pytest.raises(ValueError, match="cannot be loaded"):
        run_batch(TRACES, out, Broken("scripted", str(SCRIPT)), progress=False)
    assert not out.exists() and not out.parent.exists()


def test_overwrite_keeps_the_old_journal_until_the_new_run_writes(tmp_path):
    out = tmp_path / "j.jsonl"
    run_batch(TRACES, out, ScriptedBackend(load_script(SCRIPT)), progress=False)
    before = out.read_bytes()

    class Broken(BackendSpec):
        def build(self):
            raise ValueError("the model cannot be loaded")

    with pytest.raises(ValueError):
        run_batch(TRACES, out, Broken("scripted", str(SCRIPT)), overwrite=True, progress=False)
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "nope_dir", "--backend", "scripted", "--model", str(SCRIPT)], "nope_dir"),
        (["--input", str(TRACES), "--backend", "transformers", "--model", "no-such-model"], "no-such-model"),
    ],
)
def test_a_missing_input_or_model_fails_at_once(tmp_path, capsys, monkeypatch, argv, message):
    # Offline: neither the hub nor its cache is asked for more than one look.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytest.importorskip("transformers")
    out = tmp_path / "j.jsonl"
    t0 = time.perf_counter()
    code = None
    try:
        code = main(["revise", *argv, "--output", str(out), "--no-progress"])
    except SystemExit as e:
        code = e.code
    assert code != 0 and time.perf_counter() - t0 < 5
    assert message in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_leaves_the_journal_whole_and_says_how_to_resume(tmp_path):
    src = write_jsonl(tmp_path / "many.jsonl", [dict(ROWS[k % 2], id=f"r{k}") for k in range(30)])
    out = tmp_path / "j.jsonl"
    cmd = [sys.executable, "-m", "retrosearch.cli", "revise", "--input", str(src), "--output", str(out)]
    cmd += [
        "--backend",
        "scripted",
        "--model",
        str(SCRIPT),
        "--scripted-latency",
        "0.03",
        "--max-active",
        "1",
    ]
    cmd += ["--no-progress"]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PKG_PARENT), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted — rerun to resume" in err.decode() and "Traceback" not in err.decode()
    data = out.read_bytes()
    assert data.endswith(b"\n")
    kept = [json.loads(line) for line in data.splitlines()[1:]]
    assert 3 <= len(kept) < 30
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode == 0
    assert Counter(r["row_id"] for r in read_journal(out)) == Counter(f"many.jsonl:{k}" for k in range(1, 31))


# --------------------------------------------------------------------------- the Python API
def test_run_batch_records_the_reviser_of_a_backend_object(tmp_path):
    out = tmp_path / "j.jsonl"
    summary = run_batch(
        TRACES, out, ScriptedBackend(load_script(SCRIPT)), RetroSearchConfig(), limit=2, progress=False
    )
    assert summary.rows == 2
    assert read_header(out)["fingerprint"]["models"] == {"revision": {"backend": "scripted"}, "traces": None}
    # An empty run still leaves a journal (its header), which resumes.
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    run_batch(empty, tmp_path / "e.jsonl", ScriptedBackend({}), progress=False)
    assert is_journal(tmp_path / "e.jsonl") and read_journal(tmp_path / "e.jsonl") == []
