"""Real plumbing: a short GRPO run of SmolLM2-135M on R1-Searcher's stage-1 questions with BM25, on CPU.

Trains `--steps` steps in two runs (the second resumes from the first's checkpoint), with the search rollouts on
the trainer's live model, and checks on every batch that TRL's loss mask is the rollouts' `env_mask` (documents
and the appended EOS get no gradient). Prints a JSON summary (wall time, losses, rewards, retrievals).

    .venv/bin/python scripts/rl_plumbing_smollm2.py --output runs/rl_plumbing --steps 20
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def env_mask_checker(trainer, record: dict) -> None:
    """Wrap the trainer's batch building: TRL's `tool_mask` must be each rollout's own `env_mask`."""
    inner_rollout, inner_batch = trainer.rollout_func, trainer._generate_and_score_completions
    last: dict = {}

    def rollout(prompts, t):
        out = inner_rollout(prompts, t)
        last["env_mask"] = out["env_mask"]
        record["retrievals"] += sum(out["retrievals"])
        record["rollouts"] += len(out["retrievals"])
        record["document_tokens"] += sum(len(m) - sum(m) for m in out["env_mask"])
        return out

    def batch(inputs):
        out = inner_batch(inputs)
        for row, env in zip(out["tool_mask"].tolist(), last["env_mask"]):
            if row[: len(env)] != env or any(b != 1 for b in row[len(env) :]):
                raise AssertionError("TRL's tool_mask differs from the rollout's env_mask")
        record["batches_checked"] += 1
        return out

    trainer.rollout_func, trainer._generate_and_score_completions = rollout, batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="runs/rl_plumbing_smollm2")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--data-dir", default=None, help="The folder holding qa/ (default: ../shared/data).")
    p.add_argument("--num-generations", type=int, default=2)
    p.add_argument("--max-completion-length", type=int, default=320)
    p.add_argument("--max-tokens-per-turn", type=int, default=40)
    args = p.parse_args(argv)

    import torch

    from retrosearch.rl.train.config import load_config
    from retrosearch.rl.train.trainer import build_retriever, find_data
    from retrosearch.rl.train.trainer import train as run_train
    from tools.smollm2 import smollm2_path

    torch.set_num_threads(1)  # on a shared CPU, one thread per process avoids OpenMP spin-waits
    out = Path(args.output)
    shutil.rmtree(out, ignore_errors=True)
    half = args.steps // 2
    base = load_config(
        "r1searcher-stage1",
        model=str(smollm2_path()),
        data_dir=args.data_dir,
        use_chat_template=True,
        max_examples=64,
        num_generations=args.num_generations,
        per_device_train_batch_size=args.num_generations,
        max_completion_length=args.max_completion_length,
        max_tokens_per_turn=args.max_tokens_per_turn,
        top_k=1,
        max_retrievals=2,
        learning_rate=1e-6,
        output_dir=str(out / "train"),
        save_steps=half,
        use_cpu=True,
    )
    retriever = build_retriever(base)  # BM25 over passages.jsonl, built once for both runs
    figures = {"retrievals": 0, "rollouts": 0, "document_tokens": 0, "batches_checked": 0}

    def check(trainer) -> None:
        env_mask_checker(trainer, figures)

    t0 = time.perf_counter()
    first = run_train(replace(base, max_steps=half), retriever=retriever, setup=check)
    t1 = time.perf_counter()
    second = run_train(replace(base, max_steps=args.steps), retriever=retriever, setup=check)
    t2 = time.perf_counter()
    losses = [h["loss"] for run in (first, second) for h in run["history"]]
    rewards = [h.get("reward") for run in (first, second) for h in run["history"]]
    grad_norms = [h.get("grad_norm") for run in (first, second) for h in run["history"]]
    summary = {
        "model": "SmolLM2-135M-Instruct",
        "train_file": find_data(base.train_file, base.data_dir),
        "steps": second["global_step"],
        "first_run_steps": first["global_step"],
        "resumed_from": Path(second["resumed_from"]).name if second["resumed_from"] else None,
        "second_run_steps": second["steps_this_run"],
        "losses_finite": all(math.isfinite(x) for x in losses),
        "losses": losses,
        "rewards": rewards,
        "grad_norms": grad_norms,
        "wall_s": {"first": round(t1 - t0, 1), "second": round(t2 - t1, 1), "total": round(t2 - t0, 1)},
        **figures,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    ok = summary["losses_finite"] and summary["steps"] == args.steps and summary["resumed_from"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
