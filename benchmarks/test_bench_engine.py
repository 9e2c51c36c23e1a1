"""Engine benchmarks: batching across traces, engine overhead, token-budget saving (issue 3 targets)."""

from __future__ import annotations

import pytest
from simworld import make_traces, world_backend

from retrosearch import Engine, PromptFormat, RetroSearchConfig, revise

RAW = PromptFormat(use_chat_template=False, raw_template="{question}\n")


def _revise(n: int, backend, **cfg):
    engine = Engine(backend)
    out = revise(make_traces(n, seed=1), backend, RetroSearchConfig(prompt=RAW, seed=0, **cfg), engine=engine)
    return out, engine


@pytest.mark.parametrize("n", [1, 16, 256])
def test_backend_calls_grow_with_depth_not_with_traces(benchmark, n):
    out, engine = benchmark.pedantic(lambda: _revise(n, world_backend()), rounds=1, iterations=1)
    depth = max(r.stats["boundaries_explored"] for r in out)
    benchmark.extra_info.update(
        traces=n,
        backend_calls=engine.stats.backend_calls,
        max_boundaries=depth,
        requests=engine.stats.requests,
    )
    # At most three waves per explored switch (first step, its text after a bare separator, continuation).
    assert engine.stats.backend_calls <= 3 * depth
    assert engine.stats.requests >= n


@pytest.mark.parametrize("n", [1, 16, 256])
def test_engine_overhead_ratio(benchmark, n):
    # A fake GPU: 50 ms per batched call plus 2 ms per decode step (token of the longest sample); a real
    # GPU decode step of a large batch takes longer, so this errs on the side of a high overhead ratio.
    backend = world_backend(latency_s=0.05, latency_per_token_s=0.002)
    out, engine = benchmark.pedantic(lambda: _revise(n, backend), rounds=1, iterations=1)
    ratio = engine.stats.overhead_ratio
    benchmark.extra_info.update(
        traces=n,
        overhead_ratio=round(ratio, 3),
        backend_s=engine.stats.backend_seconds,
        wall_s=engine.stats.wall_seconds,
    )
    assert ratio <= 1.10, f"engine overhead {ratio:.3f} > 1.10"


def test_token_budget_saving_ratio(benchmark):
    backend = world_backend()

    def both():
        with_budget, _ = _revise(128, backend, token_budget=True)
        without, _ = _revise(128, backend, token_budget=False)
        return with_budget, without

    with_budget, without = benchmark.pedantic(both, rounds=1, iterations=1)
    spent_with = sum(r.stats["tokens_spent"] for r in with_budget)
    spent_without = sum(r.stats["tokens_spent"] for r in without)
    ratio = spent_with / spent_without
    accepted = [r.revised.render() for r in with_budget]
    benchmark.extra_info.update(
        tokens_with=spent_with,
        tokens_without=spent_without,
        ratio=round(ratio, 3),
        revised=sum(r.status == "revised" for r in with_budget),
    )
    assert accepted == [r.revised.render() for r in without], (
        "the budget changed which revisions were accepted"
    )
    assert ratio <= 0.6, f"token budget ratio {ratio:.3f} > 0.6"
