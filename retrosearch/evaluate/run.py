"""`evaluate`: sample `n` answers per problem with any backend, grade them, and measure the thinking."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.config import derive_seed, to_dict
from retrosearch.engine import Engine, Generate, ProgramError
from retrosearch.evaluate.benchmarks import Benchmark, load_benchmark
from retrosearch.evaluate.config import EvalConfig
from retrosearch.evaluate.report import write_json
from retrosearch.retro import PromptFormat, split_output
from retrosearch.trace import Trace
from retrosearch.tree import Node, SearchTree
from retrosearch.verify import Verdict, Verifier, get_verifier

__all__ = ["evaluate"]


def _sample_program(prompt: str, cfg: EvalConfig, seed: int) -> Iterator[Any]:
    """One problem: `n` samples of the answer in one request. Returns the sampled nodes."""
    tree = SearchTree(prompt)
    nodes: list[Node] = yield Generate(
        tree.root, n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=seed
    )
    return nodes


def _grade(
    text: str, finish: str | None, gold: str, backend: Backend, fmt: PromptFormat, verifier: Verifier
) -> dict[str, Any]:
    """One sample: its answer, verdict, thinking length in tokens and whether it was cut off."""
    if fmt.think_close == "</think>":
        # The prompt ends with the think tag: with it, the sample parses as the whole assistant turn.
        trace = Trace.parse(fmt.think_open + text)
        thinking, solution, closed = trace.thinking, trace.solution, trace.solution is not None
    else:  # a custom tag that `Trace.parse` does not know
        split = split_output(text, fmt.think_close)
        closed = split is not None
        thinking, solution = (split[0].strip(), split[1]) if split else (text.strip(), None)
    # Graded like Retro-Search grades: the solution when the thinking closed, else the whole text.
    result = verifier(solution if solution is not None else text, gold)
    return {
        "correct": result.correct,
        "answer": result.prediction,
        "verdict": Verdict(result.verdict).value,
        "thinking_tokens": len(backend.tokenize(thinking)) if thinking else 0,
        "closed": closed,
        "truncated": finish == "length" or not closed,
        "finish_reason": finish,
    }


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _summarize(bench: Benchmark, records: list[dict[str, Any]], k: int) -> dict[str, Any]:
    samples = [s for r in records for s in r["samples"]]
    per_problem = [sum(s["correct"] for s in r["samples"]) / k for r in records]
    correct = [s for s in samples if s["correct"]]
    return {
        "name": bench.name,
        "source": bench.source,
        "n_problems": len(records),
        "rows_without_gold": len(bench.skipped),
        "k": k,
        "n_samples": len(samples),
        "accuracy": _mean(per_problem),
        "pass_at_k": _mean([1.0 if any(s["correct"] for s in r["samples"]) else 0.0 for r in records]),
        "mean_thinking_tokens": _mean([s["thinking_tokens"] for s in samples]),
        "mean_thinking_tokens_correct": _mean([s["thinking_tokens"] for s in correct]),
        "mean_generated_tokens": _mean([s["generated_tokens"] for s in samples]),
        "truncated_share": _mean([1.0 if s["truncated"] else 0.0 for s in samples]),
        "no_answer_share": _mean([1.0 if s["answer"] is None else 0.0 for s in samples]),
        "errors": sum(1 for r in records if r.get("error")),
    }


def evaluate(
    backend: Backend,
    benchmarks: Sequence[str | Path | Benchmark] | str | Benchmark,
    config: EvalConfig | None = None,
    *,
    output: str | Path | None = None,
    engine: Engine | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Sample `n` answers per problem with `backend`, grade them, and measure the thinking.

    Every problem is one engine program that asks for its `n` samples in one request; the problems of all
    benchmarks share the engine's waves. A sample's prompt is the chat template (when the backend has one) with
    the question, then the think tag, as Retro-Search prompts; the sample is parsed as `think tag + text` with
    `Trace.parse`, its thinking counted in tokens with `backend.tokenize`, and the solution (the whole text when
    the thinking never closed) graded against the gold answer.

    Args:
        backend: The model.
        benchmarks: Names, paths (see `load_benchmark`) or `Benchmark`s.
        config: Settings (`EvalConfig()` by default).
        output: Write the result as JSON there.
        engine: An engine to reuse; a new one by default.
        progress: Show a progress bar over problems on stderr.

    Returns:
        `{"benchmarks": {name: summary}, "average": {...}, "problems": {name: [records]}, "config", "backend",
        "seconds", "engine"}`; a summary holds `accuracy` (pass@1 averaged over k), `pass_at_k`,
        `mean_thinking_tokens` (all samples), `mean_thinking_tokens_correct`, `mean_generated_tokens`,
        `truncated_share` (hit max_tokens or never closed the thinking), `no_answer_share`, and counts.
    """
    cfg = config or EvalConfig()
    if isinstance(benchmarks, (str, Path, Benchmark)):
        benchmarks = [benchmarks]
    loaded: list[Benchmark] = []
    for b in benchmarks:
        if isinstance(b, Benchmark):
            loaded.append(
                dataclasses.replace(b, problems=b.problems[: cfg.limit] if cfg.limit else list(b.problems))
            )
        else:
            loaded.append(
                load_benchmark(
                    b,
                    limit=cfg.limit,
                    data_dir=cfg.data_dir,
                    toy_problems=cfg.toy_problems,
                    toy_seed=cfg.toy_seed,
                )
            )
    names = [b.name for b in loaded]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"benchmarks: {dupes} given more than once")
    if not loaded:
        raise ValueError("benchmarks: expected at least one benchmark")

    fmt = cfg.prompt_format
    verifier = get_verifier(cfg.verifier)
    engine = engine or Engine(backend, max_active=cfg.max_active)
    items = [(b, p) for b in loaded for p in b.problems]
    prompts = [fmt.render(p.question, backend) for _, p in items]
    t0 = time.perf_counter()

    def programs() -> Iterator[Any]:
        for (b, p), prompt in zip(items, prompts):
            yield _sample_program(prompt, cfg, derive_seed(cfg.seed, b.name, p.id))

    records: list[dict[str, Any] | None] = [None] * len(items)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), unit="problem", desc="evaluate", file=sys.stderr, dynamic_ncols=True)
    for i, value in engine.run_iter(programs()):
        b, p = items[i]
        rec: dict[str, Any] = {"id": p.id, "question": p.question, "gold": p.gold}
        if isinstance(value, ProgramError):
            rec["error"] = str(value)
            # A failed problem counts as n wrong samples (it is reported in `errors`).
            rec["samples"] = [
                {
                    "correct": False,
                    "answer": None,
                    "verdict": "error",
                    "thinking_tokens": 0,
                    "generated_tokens": 0,
                    "closed": False,
                    "truncated": False,
                    "finish_reason": "error",
                }
                for _ in range(cfg.n)
            ]
        else:
            samples = []
            for node in value:
                s = _grade(node.text, node.finish_reason, p.gold, backend, fmt, verifier)
                s["generated_tokens"] = node.token_count
                if node.meta.get("error"):
                    s["error"] = node.meta["error"]
                if cfg.save_samples:
                    s["text"] = node.text
                samples.append(s)
            rec["samples"] = samples
        rec["accuracy"] = sum(s["correct"] for s in rec["samples"]) / cfg.n
        records[i] = rec
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    per_bench: dict[str, list[dict[str, Any]]] = {b.name: [] for b in loaded}
    for (b, _), rec in zip(items, records):
        assert rec is not None
        per_bench[b.name].append(rec)
    summaries = {b.name: _summarize(b, per_bench[b.name], cfg.n) for b in loaded}
    result: dict[str, Any] = {
        "backend": getattr(backend, "name", type(backend).__name__),
        "config": to_dict(cfg),
        "benchmarks": summaries,
        "average": _average(list(summaries.values())),
        "seconds": round(time.perf_counter() - t0, 3),
        "engine": dataclasses.asdict(engine.stats),
        "problems": per_bench,
    }
    if output is not None:
        write_json(result, output)
    return result


def _average(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Macro average over benchmarks (each counts once, as papers report it)."""
    out: dict[str, Any] = {"n_benchmarks": len(summaries)}
    for key in (
        "accuracy",
        "pass_at_k",
        "mean_thinking_tokens",
        "mean_thinking_tokens_correct",
        "truncated_share",
    ):
        vals = [s[key] for s in summaries if s[key] is not None]
        out[key] = _mean(vals)
    return out
