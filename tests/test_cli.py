"""`retrosearch revise` / `export` end to end: formats kept, bad rows recorded, kill-and-resume, Ray shards."""

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
from retrosearch.cli import main
from retrosearch.data.journal import Journal, is_header, read_journal
from retrosearch.retro.batch import export_journal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TRACES = EXAMPLES / "traces.jsonl"
SCRIPT = EXAMPLES / "scripted_model.json"
# Where the package lives (a subprocess must import this very checkout).
PKG_PARENT = Path(retrosearch.__file__).parent.parent

EXAMPLE_ROWS = [json.loads(line) for line in TRACES.read_text().splitlines()]
# Known outcome of every example row (row id = file name and 1-based line number).
EXPECTED_STATUS = {
    "traces.jsonl:1": "revised",  # over-thinking: two re-checks after the answer
    "traces.jsonl:2": "revised",  # under-thinking: abandoned a line one step from the answer
    "traces.jsonl:3": "revised",  # OpenThoughts conversations row (with a gold answer), over-thinking
    "traces.jsonl:4": "revised",  # OpenThoughts metadata row, over-thinking
    "traces.jsonl:5": "skipped",  # wrong answer
    "traces.jsonl:6": "unchanged",  # the only rollout is longer than the remainder
    "traces.jsonl:7": "skipped",  # truncated
}


def revise(tmp_path: Path, *extra: str, input: Path | str = TRACES, output: str = "out.jsonl") -> list[dict]:
    out = tmp_path / output
    argv = [
        "revise",
        "--input",
        str(input),
        "--output",
        str(out),
        "--backend",
        "scripted",
        "--model",
        str(SCRIPT),
        "--no-progress",
        *extra,
    ]
    assert main(argv) == 0
    return records(out)


def records(journal: Path) -> list[dict]:
    """The row records of a journal, in file order (its first line is the header)."""
    lines = journal.read_text().splitlines()
    assert is_header(json.loads(lines[0]))
    return [json.loads(line) for line in lines[1:]]


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["row_id"]: r for r in records}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --------------------------------------------------------------------------- the example job
def test_example_traces_are_revised(tmp_path, capsys):
    recs = revise(tmp_path)
    assert {r["row_id"]: r["status"] for r in recs} == EXPECTED_STATUS
    rows = by_id(recs)
    assert rows["traces.jsonl:1"]["row"]["response"] == (
        "<think>\nAdd 15 and 27: 15 + 20 = 35, then 35 + 7 = 42.\n\nSo the sum is 42.\n</think>\n\n"
        "The sum is \\boxed{42}."
    )
    assert rows["traces.jsonl:2"]["row"]["response"] == (
        "<think>\nWe need 12 * 11.\n\nUse 12 * 10 = 120, then add 12.\n\n120 + 12 = 132.\n</think>\n\n\\boxed{132}"
    )
    assert [r["kind"] for r in rows["traces.jsonl:2"]["revisions"]] == ["underthinking"]
    assert (
        rows["traces.jsonl:1"]["stats"]["thinking_tokens_after"]
        < rows["traces.jsonl:1"]["stats"]["thinking_tokens_before"]
    )
    assert "not correct" in rows["traces.jsonl:5"]["reason"]
    assert "tree" not in rows["traces.jsonl:1"]
    table = capsys.readouterr().out
    assert "revised" in table and "tokens spent" in table and "wall time" in table
    assert [
        line.split()[-1]
        for line in table.splitlines()
        if line.split()[0] in ("revised", "unchanged", "skipped", "errors")
    ] == ["4", "1", "2", "0"]


def test_formats_are_preserved(tmp_path):
    rows = by_id(revise(tmp_path))
    flat_in, ot_in, meta_in = EXAMPLE_ROWS[0], EXAMPLE_ROWS[2], EXAMPLE_ROWS[3]
    flat = rows["traces.jsonl:1"]["row"]
    assert list(flat) == list(flat_in) and {k: flat[k] for k in flat if k != "response"} == {
        k: v for k, v in flat_in.items() if k != "response"
    }
    ot = rows["traces.jsonl:3"]["row"]
    assert list(ot) == ["system", "conversations", "gold"] and ot["system"] == ot_in["system"]
    assert ot["conversations"][0] == ot_in["conversations"][0]
    assert ot["conversations"][1] == {
        "from": "assistant",
        "value": (
            "<|begin_of_thought|>\n\nA hexagon is a polygon; the prefix hexa means six.\n\nSo the answer is 6."
            "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nA hexagon has \\boxed{6} sides.\n\n<|end_of_solution|>"
        ),
    }
    meta = rows["traces.jsonl:4"]["row"]
    assert list(meta) == list(meta_in)
    assert meta["deepseek_reasoning"] == "The area of a rectangle is width times height, so 3 * 4 = 12."
    assert meta["deepseek_solution"] == "The area is \\boxed{12}."
    assert {k: meta[k] for k in ("problem", "ground_truth_solution", "domain", "source")} == {
        k: meta_in[k] for k in ("problem", "ground_truth_solution", "domain", "source")
    }
    # Rows that were not revised are written as they came.
    assert rows["traces.jsonl:6"]["row"] == EXAMPLE_ROWS[5]


def test_metadata_gold_comes_from_ground_truth_solution(tmp_path):
    row = dict(EXAMPLE_ROWS[3], ground_truth_solution="The area is $\\boxed{13}$.")
    recs = revise(tmp_path, input=write_jsonl(tmp_path / "meta.jsonl", [row]))
    assert recs[0]["status"] == "skipped" and "not correct" in recs[0]["reason"]


def test_bad_rows_get_error_records_and_the_job_goes_on(tmp_path):
    src = tmp_path / "bad.jsonl"
    lines = [
        json.dumps(EXAMPLE_ROWS[0]),
        '{"question": "What is 1 + 1?", "response": "<think>\\n2',  # cut-off JSON
        json.dumps({"question": "What is 2 + 2?", "gold": "4"}),  # no response field
        json.dumps({"question": "q", "response": 7}),  # response of the wrong type
        # an OpenThoughts metadata row without its reasoning
        json.dumps({"problem": "p", "deepseek_solution": "s", "deepseek_reasoning": None}),
        "",  # a blank line is not a row
        json.dumps(EXAMPLE_ROWS[1]),
    ]
    src.write_text("\n".join(lines) + "\n")
    rows = by_id(revise(tmp_path, input=src))
    assert {k: r["status"] for k, r in rows.items()} == {
        "bad.jsonl:1": "revised",
        "bad.jsonl:2": "error",
        "bad.jsonl:3": "error",
        "bad.jsonl:4": "error",
        "bad.jsonl:5": "error",
        "bad.jsonl:7": "revised",
    }
    assert rows["bad.jsonl:2"]["reason"].startswith("bad.jsonl:2: invalid JSON")
    assert rows["bad.jsonl:2"]["row"] is None and rows["bad.jsonl:2"]["raw"].startswith('{"question"')
    assert "response" in rows["bad.jsonl:3"]["reason"] and rows["bad.jsonl:3"]["reason"].startswith(
        "row bad.jsonl:3"
    )
    assert rows["bad.jsonl:3"]["row"] == {"question": "What is 2 + 2?", "gold": "4"}
    assert "'response'" in rows["bad.jsonl:4"]["reason"] and "int" in rows["bad.jsonl:4"]["reason"]
    assert "'deepseek_reasoning'" in rows["bad.jsonl:5"]["reason"]


# --------------------------------------------------------------------------- resuming
def _many_rows(n: int) -> list[dict]:
    cycle = [EXAMPLE_ROWS[k] for k in (0, 1, 5, 4)]  # revised, revised, unchanged, skipped
    return [dict(cycle[k % len(cycle)], id=f"row-{k}") for k in range(n)]


def test_killed_run_resumes_and_every_row_appears_once(tmp_path):
    src = write_jsonl(tmp_path / "many.jsonl", _many_rows(40))
    out = tmp_path / "journal.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "retrosearch.cli",
        "revise",
        "--input",
        str(src),
        "--output",
        str(out),
        "--backend",
        "scripted",
        "--model",
        str(SCRIPT),
        "--scripted-latency",
        "0.02",
        "--max-active",
        "1",
        "--no-progress",
    ]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PKG_PARENT), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 7:  # the header and 6 rows
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = out.read_bytes()
    finished = before[: before.rfind(b"\n") + 1].decode().splitlines()
    assert 7 <= len(finished) <= 40

    assert subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode == 0
    lines = out.read_text().splitlines()
    # The header and the finished rows were kept byte for byte and not redone.
    assert lines[: len(finished)] == finished
    after = lines[1:]
    ids = Counter(json.loads(line)["row_id"] for line in after)
    assert ids == Counter(f"many.jsonl:{k}" for k in range(1, 41))
    # The statuses are those of an uninterrupted run.
    straight = revise(tmp_path, input=src, output="straight.jsonl")
    assert {r["row_id"]: r["status"] for r in map(json.loads, after)} == {
        r["row_id"]: r["status"] for r in straight
    }
    assert {r["row_id"]: r["row"] for r in map(json.loads, after)} == {
        r["row_id"]: r["row"] for r in straight
    }


def test_a_torn_last_line_is_dropped_and_its_row_redone(tmp_path):
    full = revise(tmp_path)
    out = tmp_path / "out.jsonl"
    data = out.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    torn_id = json.loads(data[last_start:])["row_id"]
    out.write_bytes(data[: last_start + 25])  # the last record cut mid-write
    assert [r["row_id"] for r in read_journal(out)] == [r["row_id"] for r in full[:-1]]
    again = revise(tmp_path)
    assert Counter(r["row_id"] for r in again) == Counter(list(EXPECTED_STATUS))
    assert again[-1]["row_id"] == torn_id and again[:-1] == full[:-1]


def test_a_complete_last_record_without_newline_is_redone(tmp_path):
    full = revise(tmp_path)
    out = tmp_path / "out.jsonl"
    out.write_bytes(out.read_bytes().rstrip(b"\n"))
    again = revise(tmp_path)
    assert len(again) == len(full) and Counter(r["row_id"] for r in again) == Counter(list(EXPECTED_STATUS))


def test_a_corrupt_middle_line_is_an_error_naming_it(tmp_path):
    revise(tmp_path)
    out = tmp_path / "out.jsonl"
    lines = out.read_text().splitlines(keepends=True)
    lines[2] = "{garbage\n"
    out.write_text("".join(lines))
    with pytest.raises(ValueError, match="line 3"):
        Journal(out)


def test_overwrite_starts_afresh(tmp_path):
    revise(tmp_path)
    assert len(revise(tmp_path, "--overwrite", "--limit", "2")) == 2


# --------------------------------------------------------------------------- input kinds
def test_parquet_and_folder_inputs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = [EXAMPLE_ROWS[k] for k in (0, 1, 4, 5)]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "flat.parquet")
    recs = revise(tmp_path, input=tmp_path / "flat.parquet")
    assert {r["row_id"]: r["status"] for r in recs} == {
        "flat.parquet:0": "revised",
        "flat.parquet:1": "revised",
        "flat.parquet:2": "skipped",
        "flat.parquet:3": "unchanged",
    }

    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    write_jsonl(folder / "a.jsonl", EXAMPLE_ROWS[:2])
    write_jsonl(folder / "sub" / "b.jsonl", EXAMPLE_ROWS[2:4])
    pq.write_table(pa.Table.from_pylist(flat[2:]), folder / "c.parquet")
    (folder / "notes.txt").write_text("not data")
    recs = revise(tmp_path, input=folder, output="folder.jsonl")
    assert {r["row_id"]: r["status"] for r in recs} == {
        "a.jsonl:1": "revised",
        "a.jsonl:2": "revised",
        "c.parquet:0": "skipped",
        "c.parquet:1": "unchanged",
        "sub/b.jsonl:1": "revised",
        "sub/b.jsonl:2": "revised",
    }


def test_saved_dataset_inputs(tmp_path):
    import datasets

    flat = [EXAMPLE_ROWS[k] for k in (0, 4)]
    datasets.Dataset.from_list(flat).save_to_disk(str(tmp_path / "ds"))
    recs = revise(tmp_path, input=tmp_path / "ds")
    assert {r["row_id"]: r["status"] for r in recs} == {"row:0": "revised", "row:1": "skipped"}
    assert list(recs[0]["row"]) == list(flat[0])

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(flat[:1]), "test": datasets.Dataset.from_list(flat[1:])}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    recs = revise(tmp_path, "--split", "test", input=tmp_path / "dd", output="dd.jsonl")
    assert [(r["row_id"], r["status"]) for r in recs] == [("test:0", "skipped")]


def test_hub_name_reads_the_requested_config_and_split(tmp_path, monkeypatch):
    # No network here: stand in for the hub with a local dataset of OpenThoughts `metadata` rows.
    import datasets

    from retrosearch.data import io

    monkeypatch.setattr(io, "locate_dataset", lambda name: None)

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        return datasets.Dataset.from_list([EXAMPLE_ROWS[3]])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    recs = revise(tmp_path, "--input-config", "metadata", input="open-thoughts/OpenThoughts-114k")
    assert calls == [("open-thoughts/OpenThoughts-114k", "metadata", "train")]
    assert [(r["row_id"], r["status"]) for r in recs] == [("train:0", "revised")]
    assert (
        recs[0]["row"]["deepseek_reasoning"]
        == "The area of a rectangle is width times height, so 3 * 4 = 12."
    )


# --------------------------------------------------------------------------- export
def test_export_round_trips_in_input_order(tmp_path, capsys):
    import datasets

    recs = revise(tmp_path)
    out = tmp_path / "export" / "revised.parquet"
    assert main(["export", "--journal", str(tmp_path / "out.jsonl"), "--output", str(out)]) == 0
    assert "wrote 7 rows" in capsys.readouterr().out
    ds = datasets.Dataset.from_parquet(str(out))
    assert len(ds) == 7
    expected = [r["row"] for r in sorted(recs, key=lambda r: r["seq"])]
    got = [{k: v for k, v in row.items() if v is not None} for row in ds]
    assert got == expected
    assert expected[5] == EXAMPLE_ROWS[5]  # an unchanged row, as it came
    # The export is itself a valid input: its revised rows have nothing left to cut.
    again = revise(tmp_path, input=out, output="again.jsonl")
    assert Counter(r["status"] for r in again)["revised"] == 0
    assert export_journal(tmp_path / "out.jsonl", include_errors=False).num_rows == 7


# --------------------------------------------------------------------------- settings and bad choices
def test_search_settings_come_from_flags_and_yaml(tmp_path):
    # Exploring no switch at all revises nothing: every correct row is left unchanged.
    recs = revise(tmp_path, "--max-boundaries", "0")
    assert Counter(r["status"] for r in recs) == Counter({"unchanged": 5, "skipped": 2})
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_boundaries: 0\nn_rollouts: 2\n")
    assert (
        Counter(r["status"] for r in revise(tmp_path, "--config", str(cfg), output="y.jsonl"))["revised"] == 0
    )
    # A flag overrides the file.
    recs = revise(tmp_path, "--config", str(cfg), "--max-boundaries", "3", "--save-trees", output="z.jsonl")
    rows = by_id(recs)
    assert rows["traces.jsonl:1"]["status"] == "revised" and rows["traces.jsonl:1"]["stats"]["rollouts"] == 2
    assert rows["traces.jsonl:1"]["tree"]["nodes"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "nope", "--model", "m"], "invalid choice: 'nope'"),
        (["--backend", "scripted"], "--model is required"),
        (["--backend", "scripted", "--model", "missing.json"], "does not exist"),
        (["--backend", "openai", "--model", "m"], "needs --base-url"),
        (["--backend", "scripted", "--model", str(SCRIPT), "--gamma", "1.5"], "gamma must be in (0, 1]"),
        (["--backend", "scripted", "--model", str(SCRIPT), "--verifier", "fuzzy"], "invalid choice: 'fuzzy'"),
        (["--backend", "scripted", "--model", str(SCRIPT), "--input", "./absent.jsonl"], "no such file"),
    ],
)
def test_bad_choices_are_rejected_up_front(tmp_path, capsys, argv, message):
    base = ["revise", "--input", str(TRACES), "--output", str(tmp_path / "o.jsonl")]
    with pytest.raises(SystemExit) as e:
        main(base + argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_revision_model_is_the_model_that_revises(tmp_path):
    # --model names the traces' model; the (scripted) revision model comes from --revision-model.
    out = tmp_path / "w2s.jsonl"
    assert (
        main(
            [
                "revise",
                "--input",
                str(TRACES),
                "--output",
                str(out),
                "--backend",
                "scripted",
                "--model",
                "deepseek-ai/DeepSeek-R1",
                "--revision-model",
                str(SCRIPT),
                "--no-progress",
            ]
        )
        == 0
    )
    assert {r["row_id"]: r["status"] for r in read_journal(out)} == EXPECTED_STATUS


# --------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_ray_shards_give_the_same_results(tmp_path):
    pytest.importorskip("ray")
    src = write_jsonl(tmp_path / "many.jsonl", EXAMPLE_ROWS + _many_rows(9))
    local = revise(tmp_path, input=src, output="local.jsonl")
    sharded = revise(
        tmp_path, "--ray", "--ray-actors", "2", "--ray-shard-size", "3", input=src, output="ray.jsonl"
    )
    assert len(sharded) == len(local) == 16
    assert {r["row_id"]: (r["status"], r["row"]) for r in sharded} == {
        r["row_id"]: (r["status"], r["row"]) for r in local
    }
