"""Scheduling benchmarks: how busy each schedule keeps a continuous-batching backend, as wall / lower bound.

The backend is `simworld.ContinuousWorld`, a fake GPU: every decode step costs `STEP_S` and advances each of at
most `SLOTS` running sequences. The lower bound of a run is max(the longest program's critical path, the
total decode steps / `SLOTS`), where a program's critical path adds, over what it yields in turn, the longest
sample of each answer (a tool call costs its fixed latency). Figures for 256 programs:

- `waves`: the wave schedule over `generate` (a static batch: each group of `SLOTS` costs its longest sample);
- `continuous`: the continuous schedule over `submit`, the backend admitting waiting sequences by the
  engine's priorities (longest allowed first, as vLLM does with `scheduling_policy="priority"`);
- `continuous-fifo`: the same on a backend that admits in arrival order only (vLLM's `fcfs`).

Run with `pytest benchmarks/test_bench_scheduling.py --benchmark-only`; the wall clock is the figure's, so a
machine busy with other work moves it (the engine's own CPU time is inside it).
"""

from __future__ import annotations

import time

import pytest
from simworld import ContinuousWorld, FakeRetriever, make_traces, search_model, world_model
from test_bench_engine import RAW, _search_program

from retrosearch import Engine, RetroSearchConfig, revise
from retrosearch.tree import SearchTree
from retrosearch.types import Call, Generate

#: A simulated GPU: 4 ms per decode step, 64 sequences at a time (a real large model's step takes longer, so
#: the engine's own time weighs more here than it would there).
STEP_S, SLOTS, PROGRAMS = 0.004, 64, 256
TARGET = 1.15
SCHEDULES = ["waves", "continuous", "continuous-fifo"]
FIGURES: dict[str, float] = {}


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


def _backend(script, schedule: str) -> ContinuousWorld:
    return ContinuousWorld(script, step_s=STEP_S, concurrency=SLOTS, priorities=schedule != "continuous-fifo")


def _report(benchmark, name: str, engine: _Measured, wall: float, backend: ContinuousWorld) -> float:
    """Record and return wall / lower bound; with `submit`, also the slots left idle at the start and end."""
    bound = max(max(engine.paths), engine.work / SLOTS)
    figure = FIGURES[name] = wall / (bound * STEP_S)
    info = dict(
        wall_over_bound=round(figure, 3), critical_path=max(engine.paths), work=engine.work, bound=bound
    )
    if backend.spans:
        first, last = min(s for s, _ in backend.spans), max(f for _, f in backend.spans)
        info["idle_share"] = round(1 - backend.busy_steps / (SLOTS * (last - first)), 3)
    benchmark.extra_info.update(info)
    print(f"\n{name}: wall / lower bound = {figure:.3f} ({info})")
    return figure


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_revision_keeps_a_continuous_backend_busy(benchmark, schedule):
    backend = _backend(world_model(), schedule)
    traces = make_traces(PROGRAMS, seed=1)

    def go():
        engine = _Measured(backend, schedule=schedule.split("-")[0])
        t = time.perf_counter()
        revise(traces, backend, RetroSearchConfig(prompt=RAW, seed=0), engine=engine)
        return engine, time.perf_counter() - t

    engine, wall = benchmark.pedantic(go, rounds=1, iterations=1)
    figure = _report(benchmark, f"revision/{schedule}", engine, wall, backend)
    if schedule == "continuous":
        assert figure <= TARGET, f"continuous schedule at {figure:.3f} x the lower bound (target {TARGET})"
        if "revision/waves" in FIGURES:
            assert figure < FIGURES["revision/waves"] / 2


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_search_rollouts_keep_a_continuous_backend_busy(benchmark, schedule):
    backend = _backend(search_model, schedule)
    retriever = FakeRetriever(latency_s=5 * STEP_S)

    def go():
        engine = _Measured(
            backend, tools={"retrieve": retriever}, schedule=schedule.split("-")[0], tool_steps=5
        )
        trees = [
            SearchTree("Question: what is it?\n", tokenizer=backend, meta={"k": k}) for k in range(PROGRAMS)
        ]
        t = time.perf_counter()
        engine.run([_search_program(t) for t in trees])
        return engine, time.perf_counter() - t

    engine, wall = benchmark.pedantic(go, rounds=1, iterations=1)
    figure = _report(benchmark, f"search/{schedule}", engine, wall, backend)
    if schedule == "continuous":
        assert figure <= TARGET, f"continuous schedule at {figure:.3f} x the lower bound (target {TARGET})"
