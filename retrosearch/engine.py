"""The rollout engine: runs many per-example programs, batching their generation requests into waves."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from retrosearch.backends.base import Backend
from retrosearch.tree import Node
from retrosearch.types import Completion, Generate, GenerationRequest

#: What a program yields: one request (answered with `list[Node]`) or a list of them (answered with
#: `list[list[Node]]`, in order). An empty list is answered at once with `[]`.
Yielded = Union[Generate, Sequence[Generate]]  # noqa: UP007 - a runtime alias, kept valid on 3.10
Program = Generator[Yielded, Any, Any]


@dataclass
class EngineStats:
    """Counters of one engine's work (cumulative over its runs)."""

    waves: int = 0
    backend_calls: int = 0
    requests: int = 0
    samples: int = 0
    generated_tokens: int = 0
    backend_seconds: float = 0.0
    wall_seconds: float = 0.0
    failed_programs: int = 0

    @property
    def overhead_ratio(self) -> float:
        """Wall time / backend time: 1.0 means the engine itself costs nothing."""
        return self.wall_seconds / self.backend_seconds if self.backend_seconds else float("nan")


@dataclass
class ProgramError:
    """Stands in a run's results for a program that raised: the batch goes on."""

    index: int
    error: BaseException

    def __str__(self) -> str:
        return f"program {self.index} failed: {type(self.error).__name__}: {self.error}"


class Engine:
    """Drives programs to completion, one backend call per wave.

    Each wave gathers the pending requests of every active program into a single `backend.generate` call,
    records the completions as child nodes in the programs' trees, sends them back, and repeats.

    Args:
        backend: Where generation happens.
        max_active: How many programs run at once; more are started as others finish (bounds memory for a long
            input stream, and lets results be written as they come).
        max_requests_per_call: Split a wave into backend calls of at most this many requests (`None`: one call).
    """

    def __init__(self, backend: Backend, *, max_active: int = 256, max_requests_per_call: int | None = None):
        if max_active < 1:
            raise ValueError(f"max_active must be >= 1, got {max_active}")
        self.backend = backend
        self.max_active = max_active
        self.max_requests_per_call = max_requests_per_call
        self.stats = EngineStats()

    def run(self, programs: Iterable[Program], *, return_exceptions: bool = True) -> list[Any]:
        """Run `programs` to completion; returns their return values in input order.

        A program that raises yields a `ProgramError` in its slot (or re-raises when `return_exceptions` is
        False).
        """
        out: dict[int, Any] = {}
        for i, value in self.run_iter(programs, return_exceptions=return_exceptions):
            out[i] = value
        return [out[i] for i in range(len(out))]

    def run_iter(
        self, programs: Iterable[Program], *, return_exceptions: bool = True
    ) -> Iterator[tuple[int, Any]]:
        """Like `run`, but yields `(input index, return value)` as soon as each program finishes."""
        t0 = time.perf_counter()
        source = enumerate(programs)
        # index -> (program, the request(s) it is waiting on, whether it yielded a single Generate)
        active: dict[int, tuple[Program, list[Generate], bool]] = {}
        done: list[tuple[int, Any]] = []
        exhausted = False

        def advance(i: int, prog: Program, value: Any, error: BaseException | None = None) -> None:
            # Step a program until it asks for generation or ends; empty lists are answered on the spot.
            while True:
                try:
                    yielded = prog.throw(error) if error is not None else prog.send(value)
                except StopIteration as stop:
                    done.append((i, stop.value))
                    return
                except Exception as e:  # noqa: BLE001 - one bad example must not end the batch
                    self.stats.failed_programs += 1
                    if not return_exceptions:
                        raise
                    done.append((i, ProgramError(i, e)))
                    return
                error = None
                single = isinstance(yielded, Generate)
                gens = [yielded] if single else list(yielded)
                bad = next((g for g in gens if not isinstance(g, Generate)), None)
                if bad is not None:
                    error = TypeError(f"programs must yield Generate or a list of them, got {bad!r}")
                    continue
                if gens:
                    active[i] = (prog, gens, single)
                    return
                value = []

        try:
            while True:
                while not exhausted and len(active) < self.max_active:
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        break
                    advance(nxt[0], nxt[1], None)
                yield from done
                done.clear()
                if not active:
                    if exhausted:
                        break
                    continue
                self._wave(active, advance)
                yield from done
                done.clear()
        finally:
            self.stats.wall_seconds += time.perf_counter() - t0

    def _wave(
        self, active: dict[int, tuple[Program, list[Generate], bool]], advance: Callable[..., None]
    ) -> None:
        order = list(active)
        gens = [g for i in order for g in active[i][1]]
        requests = []
        failed: dict[int, Exception] = {}
        for k, g in enumerate(gens):
            try:
                requests.append(_to_request(g))
            except Exception as e:  # noqa: BLE001 - a malformed request fails its program only
                failed[k] = e
                requests.append(None)
        live = [r for r in requests if r is not None]
        completions = iter(self._generate(live))
        results: list[list[Completion] | None] = [None if r is None else next(completions) for r in requests]
        self.stats.waves += 1

        pos = 0
        for i in order:
            prog, pending, single = active.pop(i)
            k0, pos = pos, pos + len(pending)
            bad = next((failed[k] for k in range(k0, pos) if k in failed), None)
            if bad is not None:
                advance(i, prog, None, bad)
                continue
            answer = [self._record(g, results[k]) for g, k in zip(pending, range(k0, pos))]  # type: ignore[arg-type]
            advance(i, prog, answer[0] if single else answer)

    def _generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        if not requests:
            return []
        size = self.max_requests_per_call or len(requests)
        out: list[list[Completion]] = []
        for chunk in _chunks(requests, size):
            t = time.perf_counter()
            res = self.backend.generate(list(chunk))
            self.stats.backend_seconds += time.perf_counter() - t
            self.stats.backend_calls += 1
            if len(res) != len(chunk):
                raise RuntimeError(
                    f"backend {self.backend.name} returned {len(res)} results for {len(chunk)} requests"
                )
            out.extend(res)
        self.stats.requests += len(requests)
        return out

    def _record(self, g: Generate, completions: list[Completion]) -> list[Node]:
        tree = g.node.tree
        assert tree is not None
        nodes = []
        for j, c in enumerate(completions):
            self.stats.samples += 1
            self.stats.generated_tokens += len(c.token_ids)
            meta = dict(g.meta)
            meta["sample"] = j
            if c.error:
                meta["error"] = c.error
            if c.stop_reason is not None:
                meta["stop_reason"] = c.stop_reason
            nodes.append(
                tree.add(
                    g.node,
                    c.text,
                    "rollout",
                    token_ids=list(c.token_ids) if c.token_ids or not c.text else None,
                    logprobs=list(c.logprobs) if c.logprobs is not None else None,
                    finish_reason=c.finish_reason,
                    meta=meta,
                )
            )
        return nodes


def _to_request(g: Generate) -> GenerationRequest:
    tree = g.node.tree
    if tree is None:
        raise ValueError("Generate.node must belong to a SearchTree")
    path = tree.path(g.node)
    # Spans of an input trace were tokenized one by one for counting only: their joined ids are not what the
    # model would read, so such a prefix goes as text. Generated and environment spans carry exact ids.
    exact = all(n.token_ids is not None and n.origin != "original" for n in path)
    ids = tuple(tree.token_ids(g.node)) if exact else None
    return GenerationRequest(tree.text(g.node), ids, g.sampling)


def _chunks(seq: list, size: int) -> Iterator[list]:
    for k in range(0, len(seq), size):
        yield seq[k : k + size]
