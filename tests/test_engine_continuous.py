"""The continuous schedule: each program advances as soon as its own answers are in; same trees as waves."""

from __future__ import annotations

import random
import re
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from scripted_examples import random_case  # noqa: E402

from retrosearch.backends import ScriptedBackend  # noqa: E402
from retrosearch.engine import BackendError, Engine, ProgramError, ToolError  # noqa: E402
from retrosearch.retro import PromptFormat, RetroSearchConfig, revise  # noqa: E402
from retrosearch.tree import SearchTree  # noqa: E402
from retrosearch.types import Call, Completion, Generate  # noqa: E402


class Deferred(ScriptedBackend):
    """A scripted model that takes requests as they come and answers them after a random delay (out of order).

    Sampling happens at `submit`, in the caller's thread (the vocabulary is not thread-safe); only the answer
    is delayed, by a pool of workers.
    """

    def __init__(self, script, *, max_delay_s: float = 0.003, seed: int = 0, **kw):
        super().__init__(script, **kw)
        self.pool = ThreadPoolExecutor(max_workers=16)
        self.rng = random.Random(seed)
        self.max_delay_s = max_delay_s

    def submit(self, request) -> Future:
        (completions,) = self.generate([request])
        delay = self.rng.uniform(0, self.max_delay_s)
        return self.pool.submit(lambda: time.sleep(delay) or completions)


def test_auto_picks_continuous_for_a_backend_with_submit_and_waves_otherwise():
    assert Engine(Deferred(lambda p, c: "")).schedule == "continuous"
    assert Engine(Deferred(lambda p, c: ""), schedule="waves").schedule == "waves"
    assert Engine(ScriptedBackend(lambda p, c: "")).schedule == "waves"
    with pytest.raises(ValueError, match="submit"):
        Engine(ScriptedBackend(lambda p, c: ""), schedule="continuous")
    with pytest.raises(ValueError, match="schedule must be"):
        Engine(ScriptedBackend(lambda p, c: ""), schedule="eager")  # type: ignore[arg-type]


def test_a_program_advances_while_another_programs_request_is_still_running():
    release = threading.Event()

    class HoldsSlow(ScriptedBackend):
        """Answers "slow" only once `release` is set (by the fast program, at its end): waves would deadlock."""

        def submit(self, request):
            (completions,) = self.generate([request])
            fut: Future = Future()
            if "slow" in request.prompt:
                threading.Thread(target=lambda: release.wait(10) and fut.set_result(completions)).start()
            else:
                fut.set_result(completions)
            return fut

    def slow(tree):
        (node,) = yield Generate(tree.root)
        return "slow"

    def fast(tree):
        node = tree.root
        for _ in range(5):
            (node,) = yield Generate(node)
        release.set()
        return "fast"

    engine = Engine(HoldsSlow(lambda p, c: " x"))
    t = time.perf_counter()
    order = [v for _, v in engine.run_iter([slow(SearchTree("slow")), fast(SearchTree("fast"))])]
    assert order == ["fast", "slow"] and time.perf_counter() - t < 5
    assert engine.stats.waves == 0 and engine.stats.requests == 6


def revise_all(schedule: str, cases: range):
    """Retro-Search over random traces; one scripted model per case, chosen by the case number in the prompt."""
    models, rows = {}, []
    for case in cases:
        trace, gold, model = random_case(case)
        models[str(case)] = model
        rows.append({"question": f"case {case}", "response": trace, "gold": gold})

    def script(prompt, ctx):
        return models[re.search(r"case (\d+)", prompt).group(1)](prompt, ctx)

    backend = Deferred(script, seed=len(cases))
    engine = Engine(backend, schedule=schedule)
    cfg = RetroSearchConfig(
        prompt=PromptFormat(use_chat_template=False, raw_template="Q: {question}\n"), seed=3
    )
    return revise(rows, backend, cfg, engine=engine), engine, backend


def spelled(tree: SearchTree, backend: ScriptedBackend) -> dict:
    """The tree's dict with ids as the pieces they spell (the scripted vocabulary grows in sampling order)."""
    d = tree.to_dict()
    for n in d["nodes"]:
        n["token_ids"] = [backend.decode([i]) for i in n["token_ids"] or []]
    return d


def test_the_same_seeds_give_the_same_revisions_and_trees_under_both_schedules():
    waves, w_engine, w_backend = revise_all("waves", range(12))
    flow, f_engine, f_backend = revise_all("continuous", range(12))
    assert [r.status for r in flow] == [r.status for r in waves]
    assert sum(r.status == "revised" for r in waves) >= 3  # the cases do exercise revisions
    for a, b in zip(waves, flow):
        assert a.revised.render() == b.revised.render() and a.stats == b.stats
        assert spelled(a.tree, w_backend) == spelled(b.tree, f_backend)
    assert f_engine.stats.requests == w_engine.stats.requests and f_engine.stats.waves == 0


def search_program(tree: SearchTree):
    node = tree.root
    for hop in range(3):
        (node,) = yield Generate(node, max_tokens=8, seed=hop)
        docs = yield Call("retrieve", f"{tree.root.text}/{hop}")
        node = tree.add_environment(node, f" [{docs}]")
    return tree.text(node)


def test_tool_calls_queue_while_the_tool_is_busy_and_trees_match_waves():
    calls: list[int] = []

    def retrieve(queries):
        calls.append(len(queries))
        time.sleep(0.002)
        return [q.upper() for q in queries]

    def run(schedule):
        backend = Deferred(lambda p, c: c.rng.choice([" a", " b b", " c c c"]), seed=1)
        trees = [SearchTree(f"q{k}", tokenizer=backend) for k in range(32)]
        engine = Engine(backend, tools={"retrieve": retrieve}, schedule=schedule)
        return engine.run([search_program(t) for t in trees]), [spelled(t, backend) for t in trees], engine

    w_out, w_trees, _ = run("waves")
    calls.clear()
    f_out, f_trees, engine = run("continuous")
    assert f_out == w_out and f_trees == w_trees
    assert "Q0/2" in f_out[0]
    # Batches form from the calls that queued while the tool was busy: far fewer calls than the 96 queries.
    assert sum(calls) == 96 and len(calls) < 96 and engine.stats.tool_calls == len(calls)


class Faulty(Deferred):
    """Refuses prompts with "refuse", fails the future of "crash", answers "short" with too few samples."""

    def submit(self, request):
        if "refuse" in request.prompt:
            raise RuntimeError("queue full")
        if "crash" in request.prompt:
            fut: Future = Future()
            fut.set_exception(ConnectionError("server went away"))
            return fut
        fut = super().submit(request)
        if "short" in request.prompt:
            done: Future = Future()
            done.set_result([])
            return done
        return fut


def test_isolation_holds_under_the_continuous_schedule():
    def gen(tree):
        (node,) = yield Generate(tree.root)
        return node.text

    def tool(tree):
        return (yield Call("broken", tree.root.text))

    engine = Engine(Faulty(lambda p, c: " fine"), tools={"broken": lambda xs: 1 / 0})
    prompts = ["refuse", "ok", "crash", "short", "ok too"]
    out = engine.run([gen(SearchTree(p)) for p in prompts] + [tool(SearchTree("t"))])
    assert out[1] == out[4] == " fine"
    for k, why in [(0, "queue full"), (2, "server went away"), (3, "0 completions for a request of n=1")]:
        assert (
            isinstance(out[k], ProgramError) and isinstance(out[k].error, BackendError) and why in str(out[k])
        )
    assert (
        isinstance(out[5], ProgramError)
        and isinstance(out[5].error, ToolError)
        and "ZeroDivision" in str(out[5])
    )
    assert engine.stats.failed_programs == 4


def test_max_active_bounds_the_programs_in_flight():
    started: list[int] = []
    finished: list[int] = []

    def prog(k, tree):
        started.append(k)
        assert len(started) - len(finished) <= 4
        yield Generate(tree.root)
        finished.append(k)
        return k

    engine = Engine(Deferred(lambda p, c: " y"), max_active=4)
    assert engine.run(prog(k, SearchTree(f"p{k}")) for k in range(20)) == list(range(20))


def test_an_error_completion_is_recorded_not_raised_under_both_schedules():
    class Errs(Deferred):
        def generate(self, requests):
            return [[Completion("", finish_reason="error", error="too long")] for _ in requests]

    def prog(tree):
        (node,) = yield Generate(tree.root)
        return node.finish_reason, node.meta["error"]

    for schedule in ("waves", "continuous"):
        assert Engine(Errs(lambda p, c: ""), schedule=schedule).run([prog(SearchTree("p"))]) == [
            ("error", "too long")
        ]


def test_each_program_s_request_goes_out_before_the_next_program_starts():
    log: list[str] = []

    class Logs(Deferred):
        def submit(self, request):
            log.append(f"submit {request.prompt}")
            return super().submit(request)

    def prog(k: int, tree: SearchTree):
        log.append(f"start p{k}")
        (node,) = yield Generate(tree.root)
        return node.text

    Engine(Logs(lambda p, c: " z", max_delay_s=0.05)).run(prog(k, SearchTree(f"p{k}")) for k in range(3))
    assert log == ["start p0", "submit p0", "start p1", "submit p1", "start p2", "submit p2"]


class Prioritizing(Deferred):
    """Takes a priority with each request (and records it); answers in any order, as `Deferred` does."""

    def __init__(self, script, **kw):
        super().__init__(script, **kw)
        self.priorities: list[tuple[int, int]] = []

    def submit(self, request, priority: int = 0):
        self.priorities.append((request.max_tokens, priority))
        return super().submit(request)


def test_a_backend_that_takes_priorities_gets_the_longest_allowed_first_and_the_same_trees():
    def prog(tree: SearchTree, caps: list[int]):
        node = tree.root
        for cap in caps:
            (node,) = yield Generate(node, max_tokens=cap, seed=cap)
        return tree.text(node)

    def run(backend, schedule):
        trees = [SearchTree(f"q{k}", tokenizer=backend) for k in range(3)]
        caps = [[4, 8], [16], [2, 2, 2]]
        return Engine(backend, schedule=schedule).run(prog(t, c) for t, c in zip(trees, caps))

    script = lambda p, c: " ".join(c.rng.choice("abc") for _ in range(20))  # noqa: E731
    backend = Prioritizing(script)
    assert run(backend, "continuous") == run(ScriptedBackend(script), "waves")
    assert sorted(backend.priorities) == sorted((m, -m) for m in [4, 8, 16, 2, 2, 2])
