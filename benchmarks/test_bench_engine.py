"""Engine benchmarks: batching across traces, engine overhead, token-budget saving, batched tool calls."""

from __future__ import annotations

import time

import pytest
from simworld import ContinuousWorld, FakeRetriever, make_traces, search_model, world_backend, world_model

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


# --------------------------------------------------------------------------- scheduling
class _Measured(Engine):
    """An engine that also measures each program's critical path, in decode steps, and the work it asked for."""

    def __init__(self, *args, tool_steps: int = 0, **kw):
        super().__init__(*args, **kw)
        self.tool_steps, self.paths, self.work = tool_steps, [], 0

    def run_iter(self, programs, **kw):
        return super().run_iter((self._wrap(p) for p in programs), **kw)

    def _wrap(self, prog):
        k, value, error = len(self.paths), None, None
        self.paths.append(0)
        while True:
            try:
                asked = prog.throw(error) if error is not None else prog.send(value)
            except StopIteration as stop:
                return stop.value
            try:
                value, error = (yield asked), None
            except Exception as e:  # noqa: BLE001 - handed on to the program
                value, error = None, e
                continue
            single = isinstance(asked, (Generate, Call))
            cost = 0
            for item, answer in zip([asked] if single else asked, [value] if single else value):
                if isinstance(item, Call):
                    cost = max(cost, self.tool_steps)
                    continue
                steps = [max(1, n.token_count) for n in answer]  # a sequence costs at least one step
                cost, self.work = max(cost, *steps), self.work + sum(steps)
            self.paths[k] += cost


def _schedule_figure(engine: _Measured, wall: float, backend: ContinuousWorld) -> float:
    """Wall time / the lower bound: the longest program's critical path or the work spread over the slots."""
    bound = max(max(engine.paths), engine.work / backend.concurrency) * backend.step_s
    return wall / bound


#: A simulated GPU: 4 ms per decode step, 64 sequences at a time (a real large model's step takes longer, so
#: the engine's own time weighs more here than it would there).
STEP_S, SLOTS = 0.004, 64
FIGURES: dict[str, float] = {}


@pytest.mark.parametrize("schedule", ["waves", "continuous"])
def test_revision_keeps_a_continuous_backend_busy(benchmark, schedule):
    backend = ContinuousWorld(world_model(), step_s=STEP_S, concurrency=SLOTS)
    traces = make_traces(256, seed=1)

    def go():
        engine = _Measured(backend, schedule=schedule)
        t = time.perf_counter()
        revise(traces, backend, RetroSearchConfig(prompt=RAW, seed=0), engine=engine)
        return engine, time.perf_counter() - t

    engine, wall = benchmark.pedantic(go, rounds=1, iterations=1)
    figure = FIGURES[f"revision/{schedule}"] = _schedule_figure(engine, wall, backend)
    benchmark.extra_info.update(
        schedule=schedule, wall_over_bound=round(figure, 3), critical_path=max(engine.paths), work=engine.work
    )
    if schedule == "continuous":
        # The target is 1.15; the bound ignores the tail, where the last long rollouts leave slots idle.
        assert figure <= 1.3, f"continuous schedule at {figure:.3f} x the lower bound"
        if "revision/waves" in FIGURES:
            assert figure < FIGURES["revision/waves"] / 2


@pytest.mark.parametrize("schedule", ["waves", "continuous"])
def test_search_rollouts_keep_a_continuous_backend_busy(benchmark, schedule):
    backend = ContinuousWorld(search_model, step_s=STEP_S, concurrency=SLOTS)
    retriever = FakeRetriever(latency_s=5 * STEP_S)

    def go():
        engine = _Measured(backend, tools={"retrieve": retriever}, schedule=schedule, tool_steps=5)
        trees = [SearchTree("Question: what is it?\n", tokenizer=backend, meta={"k": k}) for k in range(256)]
        t = time.perf_counter()
        engine.run([_search_program(t) for t in trees])
        return engine, time.perf_counter() - t

    engine, wall = benchmark.pedantic(go, rounds=1, iterations=1)
    figure = _schedule_figure(engine, wall, backend)
    benchmark.extra_info.update(
        schedule=schedule, wall_over_bound=round(figure, 3), critical_path=max(engine.paths), work=engine.work
    )
    if schedule == "continuous":
        assert figure <= 1.15, f"continuous schedule at {figure:.3f} x the lower bound (target 1.15)"
