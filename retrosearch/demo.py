"""`retrosearch demo`: sample traces from the shipped toy model, revise them, and (with --full) distill students."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrosearch.config import check_choices, option, to_dict

__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    """Settings of the demo (every field is also a `retrosearch demo` flag)."""

    output_dir: str = option("demo_output", "Folder for the traces, revisions, trees and tables.")
    model: str = option("toy-base", "The model whose traces are revised (a shipped toy model or a folder).")
    backend: str = option("transformers", "Backend of every model.", choices=("transformers", "vllm"))
    problems: int = option(96, "Training-split toy problems to sample traces for.")
    samples: int = option(4, "Traces sampled per problem.")
    temperature: float = option(0.7, "Sampling temperature of the traces (the habits need sampling).")
    max_tokens: int = option(384, "Most new tokens of a trace or a rollout.")
    n_rollouts: int = option(4, "Retro-Search rollouts per thought switch.")
    rollout_temperature: float = option(0.7, "Sampling temperature of the rollouts.")
    seed: int = option(0, "Seed of problems, samples and rollouts.")
    full: bool = option(
        False, "Also run the self-improvement experiment: SFT on original vs revised traces, then evaluate."
    )
    weak_to_strong: bool = option(False, "Also revise the traces with the smaller toy model (toy-small).")
    weak_model: str = option("toy-small", "The weaker revision model of the weak-to-strong variant.")
    sft_epochs: float = option(2.0, "Epochs of each student's SFT (--full).")
    sft_learning_rate: float = option(2e-4, "Learning rate of each student's SFT (--full).")
    eval_problems: int = option(200, "Held-out toy problems to evaluate each student on (--full).")
    eval_k: int = option(4, "Samples per held-out problem (--full).")

    def __post_init__(self) -> None:
        for f in ("problems", "samples", "max_tokens", "n_rollouts", "eval_problems", "eval_k"):
            if getattr(self, f) < 1:
                raise ValueError(f"DemoConfig.{f} must be >= 1, got {getattr(self, f)}")
        check_choices(self)


# --------------------------------------------------------------------------- steps
def _backend(kind: str, model: str) -> Any:
    from retrosearch.backends.spec import BackendSpec

    # float32: about twice as fast as bf16 on CPU for a model this small.
    return BackendSpec(kind, model, device="cpu", dtype="float32", max_model_len=1024, batch_size=64).build()


def sample_traces(
    backend: Any, cfg: DemoConfig, *, split: str = "train"
) -> tuple[list[dict], dict[str, Any]]:
    """Sample `samples` traces for each of `problems` toy problems; returns rows and the evaluation summary."""
    from retrosearch.evaluate import Benchmark, EvalConfig, EvalProblem, evaluate
    from retrosearch.toy import make_problems

    problems = make_problems(cfg.problems, seed=cfg.seed, split=split)
    bench = Benchmark(
        "toy-" + split, [EvalProblem(p.expression, p.question, str(p.answer)) for p in problems]
    )
    ecfg = EvalConfig(
        n=cfg.samples,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        seed=cfg.seed,
        save_samples=True,
    )
    result = evaluate(backend, bench, ecfg, progress=True)
    rows = []
    for rec in result["problems"][bench.name]:
        for j, s in enumerate(rec["samples"]):
            rows.append(
                {
                    "id": f"{rec['id']}#{j}",
                    "question": rec["question"],
                    "response": "<think>\n" + s["text"],
                    "gold": rec["gold"],
                    "correct": bool(s["correct"]),
                }
            )
    return rows, result["benchmarks"][bench.name]


def revise_rows(rows: list[dict], backend: Any, cfg: DemoConfig, out: Path, name: str) -> dict[str, Any]:
    """Revise the correct rows; write `<name>.jsonl` (one record per row, with its tree) and return a summary."""
    from retrosearch.engine import Engine
    from retrosearch.retro import RetroSearchConfig, revise

    config = RetroSearchConfig(
        n=cfg.n_rollouts,
        temperature=cfg.rollout_temperature,
        max_tokens=cfg.max_tokens,
        seed=cfg.seed,
    )
    correct = [r for r in rows if r["correct"]]
    engine = Engine(backend)
    t0 = time.perf_counter()
    results = revise(
        [{k: r[k] for k in ("question", "response", "gold")} for r in correct], backend, config, engine=engine
    )
    seconds = time.perf_counter() - t0
    with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for row, res in zip(correct, results):
            rec = res.to_record(with_tree=True)
            rec["row_id"] = row["id"]
            rec["row"] = {
                "question": row["question"],
                "response": res.revised.render() if res.revised else None,
                "gold": row["gold"],
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return summarize(results, seconds, engine)


def summarize(results: list[Any], seconds: float, engine: Any) -> dict[str, Any]:
    """Before/after figures over the revised set: all correct traces, and those with a thought switch."""
    ok = [r for r in results if r.status in ("revised", "unchanged")]
    switched = [r for r in ok if r.stats["thoughts_before"] > 1]

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    def cut(rs: list[Any]) -> float:
        before = sum(r.stats["thinking_tokens_before"] for r in rs)
        after = sum(r.stats["thinking_tokens_after"] for r in rs)
        return 100.0 * (1 - after / before) if before else float("nan")

    return {
        "traces": len(results),
        "searched": len(ok),
        "with_switch": len(switched),
        "revised": sum(r.status == "revised" for r in ok),
        "revised_share": mean([r.status == "revised" for r in ok]),
        "errors": sum(r.status == "error" for r in results),
        "mean_thinking_tokens_before": mean([r.stats["thinking_tokens_before"] for r in ok]),
        "mean_thinking_tokens_after": mean([r.stats["thinking_tokens_after"] for r in ok]),
        "cut_pct_all": cut(ok),
        "cut_pct_with_switch": cut(switched),
        "still_correct": all(r.status != "revised" or r.revised.answer is not None for r in ok),
        "rollouts": sum(r.stats.get("rollouts", 0) for r in ok),
        "tokens_spent": sum(r.stats.get("tokens_spent", 0) for r in ok),
        "seconds": round(seconds, 1),
        "backend_calls": engine.stats.backend_calls,
    }


def self_improvement(cfg: DemoConfig, out: Path, rows: list[dict]) -> dict[str, Any]:
    """SFT one student on the original correct traces and one on their revisions (same seed, steps, problems),
    then evaluate both on held-out problems."""
    from retrosearch.distill import DistillConfig, distill
    from retrosearch.evaluate import EvalConfig, evaluate

    original = out / "train_original.jsonl"
    with open(original, "w", encoding="utf-8") as f:
        for r in rows:
            if r["correct"]:
                f.write(json.dumps({k: r[k] for k in ("question", "response", "gold")}) + "\n")
    students: dict[str, Any] = {}
    for name, data in (("original", original), ("revised", out / "revisions.jsonl")):
        dcfg = DistillConfig(
            model=cfg.model,
            train_files=(str(data),),
            output_dir=str(out / f"student-{name}"),
            num_train_epochs=cfg.sft_epochs,
            learning_rate=cfg.sft_learning_rate,
            per_device_train_batch_size=16,
            max_length=1024,
            save_steps=10_000,
            logging_steps=20,
            seed=cfg.seed,
            resume="auto",
        )
        summary = distill(dcfg)
        backend = _backend(cfg.backend, str(out / f"student-{name}"))
        ecfg = EvalConfig(
            n=cfg.eval_k,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed,
            toy_problems=cfg.eval_problems,
            save_samples=False,
        )
        result = evaluate(backend, "toy", ecfg, output=out / f"eval-{name}.json", progress=True)
        students[name] = {
            "train_examples": summary["data"]["examples"],
            "steps": summary["global_step"],
            **{
                k: result["benchmarks"]["toy"][k]
                for k in ("accuracy", "mean_thinking_tokens", "mean_thinking_tokens_correct")
            },
        }
    return students


# --------------------------------------------------------------------------- the whole demo
def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo; returns everything it printed, also written to `output_dir/summary.json`."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"config": to_dict(cfg)}
    # Number the steps this run really takes: `[k/n]` counts only those.
    steps = 2 + int(cfg.weak_to_strong) + int(cfg.full)
    done = 0

    def step(msg: str) -> None:
        nonlocal done
        done += 1
        _say(f"[{done}/{steps}] {msg}")

    step(f"sampling {cfg.samples} traces for each of {cfg.problems} toy problems with {cfg.model} ...")
    backend = _backend(cfg.backend, cfg.model)
    rows, sampled = sample_traces(backend, cfg)
    with open(out / "traces.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    report["sampling"] = {
        "traces": len(rows),
        "accuracy": sampled["accuracy"],
        "mean_thinking_tokens": sampled["mean_thinking_tokens"],
    }
    step(f"revising the {sum(r['correct'] for r in rows)} correct traces with Retro-Search (self-revision)")
    report["self_revision"] = revise_rows(rows, backend, cfg, out, "revisions")
    if cfg.weak_to_strong:
        step(f"weak-to-strong: {cfg.weak_model} revises {cfg.model}'s traces")
        report["weak_to_strong"] = revise_rows(
            rows, _backend(cfg.backend, cfg.weak_model), cfg, out, "revisions-weak"
        )
    if cfg.full:
        step("self-improvement: SFT on original vs revised traces, then evaluation on held-out problems")
        report["students"] = self_improvement(cfg, out, rows)
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(format_report(report))
    return report


def format_report(report: dict[str, Any]) -> str:
    s = report["sampling"]
    lines = [
        "",
        f"sampled traces: {s['traces']}   accuracy: {s['accuracy']:.3f}   "
        f"mean thinking tokens: {s['mean_thinking_tokens']:.1f}",
        "",
        f"{'revision':<16}{'traces':>8}{'revised':>9}{'share':>7}{'think before':>14}{'after':>8}"
        f"{'cut all':>9}{'cut w/ switch':>15}{'rollouts':>10}{'seconds':>9}",
    ]
    for name in ("self_revision", "weak_to_strong"):
        if name in report:
            r = report[name]
            lines.append(
                f"{name:<16}{r['searched']:>8}{r['revised']:>9}{r['revised_share']:>7.2f}"
                f"{r['mean_thinking_tokens_before']:>14.1f}{r['mean_thinking_tokens_after']:>8.1f}"
                f"{r['cut_pct_all']:>8.1f}%{r['cut_pct_with_switch']:>14.1f}%{r['rollouts']:>10}{r['seconds']:>9}"
            )
    if "students" in report:
        lines += ["", f"{'student (SFT on)':<18}{'examples':>9}{'accuracy':>10}{'think tokens':>14}"]
        for name, st in report["students"].items():
            lines.append(
                f"{name:<18}{st['train_examples'] or 0:>9}{st['accuracy']:>10.3f}"
                f"{st['mean_thinking_tokens']:>14.1f}"
            )
    return "\n".join(lines)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
