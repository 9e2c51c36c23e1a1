"""Engine benchmarks: batching across traces, engine overhead, token-budget saving, batched tool calls."""

from __future__ import annotations

import pytest
from simworld import FakeRetriever, make_traces, search_model, world_backend

from retrosearch import Engine, PromptFormat, RetroSearchConfig, revise
from retrosearch.backends import ScriptedBackend
from retrosearch.tree import SearchTree
from retrosearch.types import Call, Generate

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


def _search_program(tree: SearchTree):
    """Generate to a query, retrieve, append the passages as environment ids, repeat; exact ids throughout."""
    node = tree.root
    while True:
        (node,) = yield Generate(
            node, stop=("</search>",), max_tokens=128, logprobs=True, seed=tree.meta["k"]
        )
        if not node.text.endswith("</search>"):
            return tree.logprobs(node)
        passages = yield Call("retrieve", node.text.rsplit("<search>", 1)[1])
        node = tree.add_environment(node, passages)


@pytest.mark.parametrize("n", [16, 256])
def test_search_rollouts_batch_tool_calls_and_keep_overhead_low(benchmark, n):
    # A fake GPU as above and a retriever costing 20 ms per (batched) call.
    backend = ScriptedBackend(search_model, latency_s=0.05, latency_per_token_s=0.002)
    retriever = FakeRetriever(latency_s=0.02)

    def go():
        engine = Engine(backend, tools={"retrieve": retriever})
        trees = [SearchTree("Question: what is it?\n", tokenizer=backend, meta={"k": k}) for k in range(n)]
        return engine.run([_search_program(t) for t in trees]), engine

    out, engine = benchmark.pedantic(go, rounds=1, iterations=1)
    s = engine.stats
    benchmark.extra_info.update(
        programs=n,
        tool_calls=s.tool_calls,
        tool_requests=s.tool_requests,
        backend_calls=s.backend_calls,
        overhead_ratio=round(s.overhead_ratio, 3),
    )
    assert not any(isinstance(o, Exception) for o in out) and s.failed_programs == 0
    assert (s.tool_calls, s.tool_requests, s.backend_calls) == (3, 3 * n, 4)
    assert s.overhead_ratio <= 1.10, f"engine overhead {s.overhead_ratio:.3f} > 1.10"
