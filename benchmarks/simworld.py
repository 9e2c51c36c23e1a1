"""A simulated world for benchmarks: synthetic R1-style traces, a scripted model that continues them, a retriever."""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
import threading
import time
from collections import deque
from concurrent.futures import Future
from queue import Empty, SimpleQueue

from retrosearch.backends import ScriptedBackend

WORDS = [
    "so",
    "we",
    "add",
    "the",
    "two",
    "parts",
    "then",
    "check",
    "it",
    "again",
    "and",
    "carry",
    "one",
    "to",
    "get",
    "a",
    "value",
    "of",
]
SWITCHES = ["Wait, ", "Alternatively, ", "Hmm, ", "But wait, "]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_traces(n: int, seed: int = 0) -> list[dict]:
    """`n` correct traces of 2-7 thoughts (2-4 steps each) that state the answer in their last step."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        answer = rng.randint(10, 999)
        thoughts = []
        for t in range(rng.randint(2, 7)):
            steps = [_sentence(rng, rng.randint(6, 16)) for _ in range(rng.randint(2, 4))]
            if t:
                steps[0] = rng.choice(SWITCHES) + steps[0][0].lower() + steps[0][1:]
            thoughts.append("\n\n".join(steps))
        thoughts[-1] += f" The value is {answer}."
        response = "<think>\n" + "\n\n".join(thoughts) + f"\n</think>\n\nThe answer is \\boxed{{{answer}}}."
        rows.append(
            {
                "question": f"Problem {i}: find the value (ANSWER={answer}).",
                "response": response,
                "gold": str(answer),
            }
        )
    return rows


def world_model(p_close: float = 0.25, p_short: float = 0.25, p_wrong: float = 0.2):
    """The script: from any prefix, close now, finish in 1-2 steps, or ramble for 5-30 long steps.

    The long tail of rambling mimics R1 rollouts that re-explore from scratch (they often run to the token
    cap); a remainder, by contrast, is a few thoughts of a few steps.
    """

    def script(prompt: str, ctx) -> str:
        answer = int(re.search(r"ANSWER=(\d+)", prompt).group(1))
        rng, req = ctx.rng, ctx.request
        lead = "" if prompt.endswith("\n\n") else "\n\n"
        u = rng.random()
        if u < p_close:
            count, words = 0, (0, 0)
        elif u < p_close + p_short:
            count, words = rng.randint(1, 2), (6, 14)
        else:
            count, words = rng.randint(5, 30), (15, 30)
        # Text past a stop string or past max_tokens is cut off: write no more of it (the result is the
        # same, the draws it would have used come after everything kept). Not with banned words, which are
        # checked on the whole candidate.
        cap = None if req.banned_words else req.max_tokens + 1
        stops = [s for s in req.stop if s]
        steps: list[str] = []
        tokens = 1 if lead else 0  # a sentence of n words is 2n tokens, a separator 1
        for k in range(count):
            n = rng.randint(*words)
            steps.append(_sentence(rng, n))
            tokens += 2 * n + (1 if k else 0)
            so_far = lead + "\n\n".join(steps) + ("\n\n" if k + 1 < count else "")
            if (cap is not None and tokens > cap) or any(s in so_far for s in stops):
                return so_far
        got = answer if rng.random() >= p_wrong else answer + 1
        body = lead + "\n\n".join(steps) if steps else ""
        return body + f"\n</think>\n\nThe answer is \\boxed{{{got}}}."

    return script


def world_backend(latency_s: float = 0.0, latency_per_token_s: float = 0.0, **kw) -> ScriptedBackend:
    return ScriptedBackend(world_model(**kw), latency_s=latency_s, latency_per_token_s=latency_per_token_s)


class FakeRetriever:
    """A batched retriever with a fixed cost per call (one HTTP round trip or one index search per wave)."""

    def __init__(self, latency_s: float = 0.0):
        self.latency_s = latency_s
        self.calls = 0

    def __call__(self, queries: list[str]) -> list[str]:
        self.calls += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        return [f"\n<documents>passage about {q}</documents>\n" for q in queries]


def search_model(prompt: str, ctx) -> str:
    """The script of a searching model: a query per turn until it has read three passages, then an answer."""
    hops = prompt.count("<documents>")
    if hops >= 3:
        return " The answer is 42.</answer>"
    words = " ".join(ctx.rng.choice(WORDS) for _ in range(ctx.rng.randint(8, 40)))
    return f" {words.capitalize()}. <search>query {hops}</search>"


class ContinuousWorld(ScriptedBackend):
    """A fake GPU serving the world's model: each decode step costs `step_s` and advances every running sequence.

    `submit` (continuous batching) runs up to `concurrency` sequences (samples) at once, admitting waiting ones
    as others finish (prefill is free), lowest `priority` first and in arrival order among equals (with
    `priorities=False`, in arrival order only, like vLLM's default `fcfs` policy); `generate` (a static batch) runs them `concurrency` at a
    time, each group costing `step_s` per token of its longest sample. The clock is the wall clock: a sequence
    that arrives at step `a` starts at `a` (or when a slot frees) and finishes `tokens` steps later, however
    late the simulating thread samples it or wakes, so the figures measure the engine, not this simulation
    (whose sampling costs CPU a GPU would not). `busy_steps` counts slot-steps of decoding.
    """

    def __init__(self, script, *, step_s: float = 0.001, concurrency: int = 64, priorities: bool = True):
        super().__init__(script, latency_per_token_s=step_s)
        self.step_s, self.concurrency, self.priorities = step_s, concurrency, priorities
        self.busy_steps = 0  # slot-steps of decoding
        self.spans: list[tuple[int, int]] = []  # (start, finish) step of every sequence `submit` ran
        self._incoming: SimpleQueue = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()

    def generate(self, requests):
        t = time.perf_counter()
        out = [[self._sample(r, j) for j in range(r.n)] for r in requests]
        lengths = [max(1, c.num_tokens) for cs in out for c in cs]
        # A static batch runs `concurrency` sequences at a time, each group as long as its longest.
        steps = sum(max(lengths[k : k + self.concurrency]) for k in range(0, len(lengths), self.concurrency))
        self.busy_steps += sum(lengths)
        time.sleep(max(0.0, steps * self.step_s - (time.perf_counter() - t)))  # sampling is on the GPU
        return out

    def submit(self, request, priority: int = 0) -> Future:
        fut: Future = Future()
        self._incoming.put((fut, request, self._step_now(), priority if self.priorities else 0))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()
        return fut

    def _step_now(self) -> float:
        return (time.perf_counter() - self._t0) / self.step_s

    def _serve(self) -> None:
        # An event simulation in steps, run up to the wall clock's step whenever the thread wakes: a late wake-up
        # (this thread samples on a CPU the engine shares) moves no start or finish.
        free = [0] * self.concurrency  # a heap: the step at which each slot frees
        arrivals: deque = (
            deque()
        )  # (arrival step, priority, tokens, state) of sequences not started, in order
        ready: list = []  # a heap of (priority, order, arrival step, tokens, state): arrived by the next free slot
        running: list = []  # a heap of (finish step, order, state)
        order = itertools.count()
        while True:
            now = self._step_now()
            wake = [running[0][0]] if running else []
            if arrivals or ready:
                wake.append(free[0])
            try:
                timeout = max(0.0, min(wake) - now) * self.step_s if wake else None
                item = self._incoming.get(timeout=timeout) if timeout != 0.0 else self._incoming.get_nowait()
                while True:
                    fut, request, arrived, priority = item
                    completions = [self._sample(request, j) for j in range(request.n)]
                    state = [fut, completions, len(completions)]
                    arrivals.extend(
                        (math.ceil(arrived), priority, max(1, c.num_tokens), state) for c in completions
                    )
                    item = self._incoming.get_nowait()
            except Empty:
                pass
            now = self._step_now()
            while free[0] <= now and (arrivals or ready):
                slot = free[0]
                while arrivals and arrivals[0][0] <= slot:
                    arrived, priority, tokens, state = arrivals.popleft()
                    heapq.heappush(ready, (priority, next(order), arrived, tokens, state))
                if not ready:  # the slot idles until the next arrivals
                    if arrivals[0][0] > now:
                        break
                    first = arrivals[0][0]
                    while arrivals and arrivals[0][0] <= first:
                        arrived, priority, tokens, state = arrivals.popleft()
                        heapq.heappush(ready, (priority, next(order), arrived, tokens, state))
                _, _, arrived, tokens, state = heapq.heappop(ready)
                heapq.heappop(free)
                start = max(slot, arrived)
                heapq.heappush(free, start + tokens)
                heapq.heappush(running, (start + tokens, next(order), state))
                self.busy_steps += tokens
                self.spans.append((start, start + tokens))
            while running and running[0][0] <= now:
                state = heapq.heappop(running)[2]
                state[2] -= 1
                if not state[2]:
                    state[0].set_result(state[1])
