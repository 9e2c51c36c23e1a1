"""Slow GRPO runs: a 2-process CPU launch training as one group (and resuming), and SmolLM2 on real data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _launch(out: Path, steps: int, mode: str = "live") -> list[dict]:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed next to this Python")
    # --multi_gpu picks the torchrun launcher; with use_cpu the two processes form one gloo group.
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "tests" / "_rl_train_ddp.py"),
           str(out), str(steps), mode]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_two_processes_train_as_one_group_and_resume(tmp_path: Path) -> None:
    first = _launch(tmp_path, 2)
    assert [r["world_size"] for r in first] == [2, 2] and [r["global_step"] for r in first] == [2, 2]
    # Each rank generated for its own questions (4 generations each, in runs), and both ended with the same
    # weights, which moved: one data-parallel group.
    assert not set(first[0]["prompts"]) & set(first[1]["prompts"])
    assert first[0]["checksum"] == first[1]["checksum"] != first[0]["initial"]
    second = _launch(tmp_path, 3)
    assert [Path(r["resumed_from"]).name for r in second] == ["checkpoint-2", "checkpoint-2"]
    assert [r["global_step"] for r in second] == [3, 3] and second[0]["checksum"] == second[1]["checksum"]


def test_the_memorization_term_is_all_reduced_across_processes(tmp_path: Path) -> None:
    ranks = _launch(tmp_path, 2, "memorize")
    assert all(r["memorize_nll"] and all(x > 0 for x in r["memorize_nll"]) for r in ranks)  # the term was on
    # Different questions on each rank, so unsynchronised memorization gradients would split the weights.
    assert not set(ranks[0]["prompts"]) & set(ranks[1]["prompts"])
    assert ranks[0]["checksum"] == ranks[1]["checksum"] != ranks[0]["initial"]


@pytest.mark.shared_data
def test_smollm2_grpo_plumbing_on_r1searcher_stage1(tmp_path: Path) -> None:
    pytest.importorskip("bm25s")
    data = ROOT.parent / "shared" / "data"
    if not (data / "qa" / "r1searcher" / "training_set" / "stage_1.jsonl").is_file():
        pytest.skip("R1-Searcher's data is not next to the checkout")
    from tools.smollm2 import smollm2_path

    try:
        smollm2_path()
    except Exception as e:  # noqa: BLE001 - the fixture model cannot be had here
        pytest.skip(f"SmolLM2 fixture unavailable: {e}")
    cmd = [sys.executable, str(ROOT / "scripts" / "rl_plumbing_smollm2.py"), "--output", str(tmp_path / "run"),
           "--steps", "4", "--data-dir", str(data)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["resumed_from"] == "checkpoint-2" and summary["losses_finite"]
    assert summary["batches_checked"] == 4  # TRL's loss mask was each batch's env_mask
