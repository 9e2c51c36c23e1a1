"""The engine's bookkeeping: a program's slot of pending answers, and the continuous schedule."""

from __future__ import annotations

import inspect
import time
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from retrosearch.types import BackendError, Call, Generate, GenerationRequest

if TYPE_CHECKING:
    from retrosearch.engine import Engine, Program


class Slot:
    """A program waiting on what it yielded: the answers so far (raw completions for `Generate`s)."""

    __slots__ = ("index", "program", "items", "single", "answers", "left", "error", "done")

    def __init__(self, index: int, program: Program, items: list[Generate | Call], single: bool) -> None:
        self.index, self.program, self.items, self.single = index, program, items, single
        self.answers: list[Any] = [None] * len(items)
        self.left = len(items)
        self.error: BaseException | None = None
        self.done = False  # answered (results still in flight for it are dropped)

    def put(self, k: int, value: Any) -> None:
        self.answers[k] = value
        self.left -= 1

    def fail(self, error: BaseException) -> None:
        self.error = self.error or error

    @property
    def ready(self) -> bool:
        return self.left == 0 or self.error is not None


Entry = tuple[Slot, int, Any]  # (slot, item index, request or tool args)


class Flow:
    """The continuous schedule of one run: requests and tool batches in flight, and the programs they answer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.inflight: dict[Future, tuple[str | None, list[Entry]]] = {}  # tool name (None: generation)
        self.finished: SimpleQueue[Future] = SimpleQueue()  # filled by the futures' callbacks, in any thread
        self.queued: dict[str, list[Entry]] = {}  # tool calls waiting for their tool's batch in flight
        self.busy: set[str] = set()  # tools with a batch in flight
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(engine.tools)), thread_name_prefix="tool")
        self.ready: list[Slot] = []
        self.waiting = 0  # programs waiting on answers
        self.generating, self.busy_since = 0, 0.0  # requests in flight, since when
        # Where the backend orders its queue, the requests that may run longest (largest `max_tokens`) go first:
        # a long rollout started last would run on an emptying batch at the end (see `priority`).
        self.prioritized = takes_priority(engine.backend)

    @property
    def answered(self) -> bool:
        """Whether some answer came back since the last wait (or some slot is ready)."""
        return bool(self.ready) or not self.finished.empty()

    def send(self, slots: list[Slot]) -> None:
        """Send the new slots' requests and queue their tool calls, without waiting."""
        self.waiting += len(slots)
        gens, calls = self.engine._split(slots)
        for slot, k, request in gens:
            try:
                submit = self.engine.backend.submit  # type: ignore[attr-defined]
                fut = submit(request, priority=priority(request)) if self.prioritized else submit(request)
            except Exception as e:  # noqa: BLE001 - a refused request fails its program only
                slot.fail(
                    error_for(BackendError, f"backend {self.engine.backend.name} refused a request: {e}", e)
                )
                continue
            if not self.generating:
                self.busy_since = time.perf_counter()
            self.generating += 1
            self.engine.stats.backend_calls += 1
            self.engine.stats.requests += 1
            self._track(fut, None, [(slot, k, request)])
        for name, entries in calls.items():
            self.queued.setdefault(name, []).extend(entries)
        for slot in slots:
            self._mark(slot)
        self._dispatch()

    def step(self, slots: list[Slot]) -> list[Slot]:
        """Send the new slots' requests and calls; wait until some slot is answered; return the answered ones."""
        self.send(slots)
        while not self.ready:
            self._wait()
        ready, self.ready = self.ready, []
        self.waiting -= len(ready)
        return ready

    def _track(self, fut: Future, tool: str | None, entries: list[Entry]) -> None:
        self.inflight[fut] = (tool, entries)
        fut.add_done_callback(self.finished.put)

    def _dispatch(self) -> None:
        for name in [n for n in self.queued if n not in self.busy]:
            queued = self.queued.pop(name)
            entries = self.engine._live_calls(name, queued)
            for slot, _, _ in queued:
                self._mark(slot)
            if entries:
                fut = self.pool.submit(self.engine._run_tool, name, [a for _, _, a in entries])
                self._track(fut, name, entries)
                self.busy.add(name)

    def _wait(self) -> None:
        if not self.inflight:
            raise RuntimeError("the continuous schedule has programs waiting and nothing in flight")
        batch = [self.finished.get()]
        while not self.finished.empty():
            batch.append(self.finished.get())
        for fut in batch:
            tool, entries = self.inflight.pop(fut)
            if tool is not None:
                self.busy.discard(tool)
                self.engine._deliver(tool, entries, fut.result())
            else:
                self._took(fut, entries[0])
            for slot, _, _ in entries:
                self._mark(slot)
        self._dispatch()

    def _mark(self, slot: Slot) -> None:
        if slot.ready and not slot.done and slot not in self.ready:
            self.ready.append(slot)

    def _took(self, fut: Future, entry: Entry) -> None:
        self.generating -= 1
        if not self.generating:
            self.engine.stats.backend_seconds += time.perf_counter() - self.busy_since
        slot, k, _ = entry
        try:
            slot.put(k, fut.result())
        except Exception as e:  # noqa: BLE001 - a failed request fails its program only
            slot.fail(
                error_for(BackendError, f"backend {self.engine.backend.name} failed on a request: {e}", e)
            )

    def close(self) -> None:
        for fut in self.inflight:
            fut.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)


def error_for(cls: type[Exception], why: str, cause: BaseException) -> Exception:
    """A fresh exception per program (one shared object would collect every program's traceback)."""
    err = cls(why)
    err.__cause__ = cause
    return err


def priority(request: GenerationRequest) -> int:
    """The priority the continuous schedule gives a request (lower goes first): longest allowed first.

    A backend that admits waiting sequences in this order starts the rollouts that may run longest first, so
    the batch stays full to the end instead of draining while the last long ones run; among equals, arrival
    order (benchmarks/test_bench_scheduling.py measures both orders).
    """
    return -request.max_tokens


def takes_priority(backend: object) -> bool:
    """Whether `backend.submit` takes a `priority` keyword (lower first)."""
    try:
        return "priority" in inspect.signature(backend.submit).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
