"""The rollout engine: runs many per-example programs, batching their generation requests and tool calls.

The contract with programs (and so with RL):

- A program yields `Generate(node, ...)` (answered with the `n` new child nodes), `Call(tool, args)` (answered
  with the tool's result for `args`), or a list mixing both (answered with a list, in order; `[]` at once).
- Exact ids: a request built from a path whose nodes all have exact ids (`Node.exact_ids`: sampled by the model,
  or spans tokenized on their own such as the prompt and environment output) carries those ids, joined, in
  `GenerationRequest.prompt_ids`; the backend feeds them as they are. Otherwise (an input trace's spans, a span
  re-tokenized from text) it carries text only. `prompt` always holds the path's text, for backends that cannot
  take ids. The path's images travel in `GenerationRequest.images`, in order.
- Schedules: *waves* (static-batch backends) gather every waiting program's requests into one
  `backend.generate` call and each tool's calls into one call of it; *continuous* (backends with `submit`, which
  take requests as they come) sends each request as soon as its program yields it and advances each program as
  soon as its own answers are in, while each tool runs one batch at a time on the calls that queued meanwhile;
  a program's first request goes out before the next program starts, and where `submit` takes a `priority`
  the longest allowed requests (largest `max_tokens`) go first. Both give the same trees for the same seeds.
- Isolation: whatever goes wrong with one program's request (it cannot be built, the backend raises or answers
  with the wrong count, a completion cannot be recorded) or tool call (the tool raises or answers with the wrong
  count) is thrown into the programs concerned, as a `BackendError` or `ToolError`; a program may catch it, else
  its slot holds a `ProgramError` naming the cause. A completion with `finish_reason="error"` (the backend's
  verdict on one request) is recorded as such, for the program to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, Literal, Union

from retrosearch.backends.base import Backend
from retrosearch.schedule import Entry as _Entry
from retrosearch.schedule import Flow as _Flow
from retrosearch.schedule import Slot as _Slot
from retrosearch.schedule import error_for as _error
from retrosearch.tree import Node
from retrosearch.types import (
    BackendError,
    Call,
    Completion,
    EngineStats,
    Generate,
    GenerationRequest,
    ProgramError,
    ToolError,
)

__all__ = [
    "BackendError",
    "Call",
    "Engine",
    "EngineStats",
    "Generate",
    "Program",
    "ProgramError",
    "ToolError",
]

#: What a program yields: a `Generate` (answered with `list[Node]`), a `Call` (answered with the tool's result),
#: or a list mixing them (answered with a list, in order). An empty list is answered at once with `[]`.
Yielded = Union[Generate, Call, Sequence[Union[Generate, Call]]]  # noqa: UP007 - a runtime alias, valid on 3.10
Program = Generator[Yielded, Any, Any]
#: A tool takes the `args` of a batch of calls and returns their results: same length, same order.
Tool = Callable[[list[Any]], Sequence[Any]]
Schedule = Literal["auto", "waves", "continuous"]


class Engine:
    """Drives programs to completion, batching their requests (see the module docstring for the contract).

    Args:
        backend: Where generation happens.
        tools: Tools programs may `Call` by name: `fn(list_of_args) -> list_of_results` (same length and order).
        max_active: How many programs run at once; more are started as others finish (bounds memory for a long
            input stream, and lets results be written as they come).
        max_requests_per_call: Split a wave into backend calls of at most this many requests (`None`: one call).
        schedule: `"waves"`, `"continuous"` (needs a backend with `submit(request) -> Future[list[Completion]]`)
            or `"auto"`: continuous where the backend has `submit`.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        tools: Mapping[str, Tool] | None = None,
        max_active: int = 256,
        max_requests_per_call: int | None = None,
        schedule: Schedule = "auto",
    ):
        if max_active < 1:
            raise ValueError(f"max_active must be >= 1, got {max_active}")
        if max_requests_per_call is not None and max_requests_per_call < 1:
            raise ValueError(f"max_requests_per_call must be >= 1, got {max_requests_per_call}")
        can_submit = callable(getattr(backend, "submit", None))
        if schedule not in ("auto", "waves", "continuous"):
            raise ValueError(f"schedule must be 'auto', 'waves' or 'continuous', got {schedule!r}")
        if schedule == "continuous" and not can_submit:
            raise ValueError(f"schedule='continuous' needs a backend with submit(); {backend.name} has none")
        self.backend = backend
        self.tools: dict[str, Tool] = dict(tools or {})
        for name, fn in self.tools.items():
            if not callable(fn):
                raise TypeError(f"tool {name!r} must be callable (list of args -> list of results)")
        self.max_active = max_active
        self.max_requests_per_call = max_requests_per_call
        auto = "continuous" if can_submit else "waves"
        self.schedule: Schedule = auto if schedule == "auto" else schedule
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
        new: list[_Slot] = []  # programs that yielded since the last step
        done: list[tuple[int, Any]] = []
        flow = _Flow(self) if self.schedule == "continuous" else None
        exhausted = False

        def advance(i: int, prog: Program, value: Any, error: BaseException | None = None) -> None:
            # Step a program until it asks for something or ends; empty lists are answered on the spot.
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
                single = isinstance(yielded, (Generate, Call))
                items = [yielded] if single else _as_list(yielded)
                if items is None or not all(_is_item(x) for x in items):
                    bad = yielded if items is None else next(x for x in items if not _is_item(x))
                    error = TypeError(f"programs must yield Generate, Call or a list of them, got {bad!r}")
                    continue
                if items:
                    new.append(_Slot(i, prog, items, single))
                    return
                value = []

        try:
            while True:
                while not exhausted and len(new) + (flow.waiting if flow else 0) < self.max_active:
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        break
                    advance(nxt[0], nxt[1], None)
                    if flow is not None:
                        # Out at once, while the next programs start; answers that came meanwhile go first.
                        flow.send(new)
                        new.clear()
                        if flow.answered:
                            break
                yield from done
                done.clear()
                if not new and not (flow and flow.waiting):
                    if exhausted:
                        break
                    continue
                slots, new[:] = list(new), []
                answered = flow.step(slots) if flow else self._wave(slots)
                # Record every answer before any program goes on (programs may share a tree).
                for slot, (answer, error) in [(s, self._finish(s)) for s in answered]:
                    advance(slot.index, slot.program, answer, error)
                yield from done
                done.clear()
        finally:
            self.stats.wall_seconds += time.perf_counter() - t0
            if flow is not None:
                flow.close()

    # ------------------------------------------------------------- shared steps
    def _split(self, slots: list[_Slot]) -> tuple[list[_Entry], dict[str, list[_Entry]]]:
        """The slots' requests (built from their paths) and tool calls (by tool); a bad request fails its slot."""
        gens: list[_Entry] = []
        calls: dict[str, list[_Entry]] = {}
        for slot in slots:
            for k, item in enumerate(slot.items):
                if isinstance(item, Call):
                    calls.setdefault(item.tool, []).append((slot, k, item.args))
                    continue
                try:
                    gens.append((slot, k, _to_request(item)))
                except Exception as e:  # noqa: BLE001 - a malformed request fails its program only
                    slot.fail(e)
        return [g for g in gens if g[0].error is None], calls

    def _run_tool(self, name: str, args: list[Any]) -> tuple[list[Any] | None, BaseException | None, float]:
        """Call tool `name` on `args`: `(results, None, seconds)` or `(None, error, seconds)`. Thread-safe."""
        t = time.perf_counter()
        try:
            res = self.tools[name](args)
            if isinstance(res, (str, bytes, Mapping)) or not hasattr(res, "__len__"):
                raise ToolError(f"returned a {type(res).__name__}, not a list of {len(args)} results")
            res = list(res)
            if len(res) != len(args):
                raise ToolError(f"returned {len(res)} results for {len(args)} calls")
            return res, None, time.perf_counter() - t
        except Exception as e:  # noqa: BLE001 - a failed tool fails the programs that asked only
            return None, e, time.perf_counter() - t

    def _deliver(self, name: str, entries: list[_Entry], outcome: tuple) -> None:
        results, error, seconds = outcome
        self.stats.tool_calls += 1
        self.stats.tool_requests += len(entries)
        self.stats.tool_seconds += seconds
        why = f"tool {name!r} failed on a batch of {len(entries)} calls: {type(error).__name__}: {error}"
        for n, (slot, k, _) in enumerate(entries):
            if error is not None:
                slot.fail(_error(ToolError, why, error))
            else:
                slot.put(k, results[n])  # type: ignore[index]

    def _live_calls(self, name: str, entries: list[_Entry]) -> list[_Entry]:
        """The entries whose program has not failed yet; an unknown tool fails the programs that call it."""
        entries = [e for e in entries if e[0].error is None]
        if name not in self.tools:
            for slot, _, _ in entries:
                slot.fail(ToolError(f"no tool {name!r}; the engine has {sorted(self.tools)}"))
            return []
        return entries

    def _finish(self, slot: _Slot) -> tuple[Any, BaseException | None]:
        """Record a ready slot's completions in its tree (all checked first: a failure leaves no half)."""
        slot.done = True
        if slot.error is None:
            gens = [(k, g) for k, g in enumerate(slot.items) if isinstance(g, Generate)]
            try:
                for k, g in gens:
                    _check(g, slot.answers[k])
                for k, g in gens:
                    slot.answers[k] = self._record(g, slot.answers[k])
            except Exception as e:  # noqa: BLE001 - an unrecordable answer fails its program only
                why = f"backend {self.backend.name} returned an answer that cannot be recorded: {e}"
                slot.error = _error(BackendError, why, e)
        if slot.error is not None:
            self.stats.failed_requests += len(slot.items)
            return None, slot.error
        return (slot.answers[0] if slot.single else slot.answers), None

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
            ids = list(c.token_ids) if c.token_ids or not c.text else None
            if ids is None and tree.tokenizer is not None:
                meta["retokenized"] = True  # a backend that gave text only: the tree's ids are for counting
            logprobs = list(c.logprobs) if c.logprobs is not None else None
            nodes.append(
                tree.add(
                    g.node,
                    c.text,
                    "rollout",
                    token_ids=ids,
                    logprobs=logprobs,
                    finish_reason=c.finish_reason,
                    meta=meta,
                )
            )
        return nodes

    # -------------------------------------------------------------------- waves
    def _wave(self, slots: list[_Slot]) -> list[_Slot]:
        """Answer every slot: one backend call (or a few) and one call per tool. Returns the slots, in order."""
        self.stats.waves += 1
        gens, calls = self._split(slots)
        size = self.max_requests_per_call or max(1, len(gens))
        for start in range(0, len(gens), size):
            chunk = gens[start : start + size]
            t = time.perf_counter()
            try:
                res = self.backend.generate([r for _, _, r in chunk])
                if not isinstance(res, Sequence) or len(res) != len(chunk):
                    got = len(res) if isinstance(res, Sequence) else type(res).__name__
                    raise BackendError(f"returned {got} results for {len(chunk)} requests")
                for (slot, k, _), cs in zip(chunk, res):
                    slot.put(k, cs)
            except Exception as e:  # noqa: BLE001 - a failed call fails the programs that asked only
                why = f"backend {self.backend.name} failed on a call of {len(chunk)} requests: {e}"
                for slot, _, _ in chunk:
                    slot.fail(_error(BackendError, why, e))
            finally:
                self.stats.backend_seconds += time.perf_counter() - t
                self.stats.backend_calls += 1
                self.stats.requests += len(chunk)
        for name, entries in calls.items():
            entries = self._live_calls(name, entries)
            if entries:
                self._deliver(name, entries, self._run_tool(name, [a for _, _, a in entries]))
        return slots


def _is_item(x: Any) -> bool:
    return isinstance(x, (Generate, Call))


def _as_list(yielded: Any) -> list[Any] | None:
    if isinstance(yielded, (str, bytes, Mapping)) or not isinstance(yielded, Iterable):
        return None
    return list(yielded)


def _check(g: Generate, completions: Any) -> None:
    """Raise when a backend's answer to `g` cannot be recorded as `g.n` nodes."""
    if not isinstance(completions, Sequence) or len(completions) != g.n:
        got = len(completions) if isinstance(completions, Sequence) else type(completions).__name__
        raise ValueError(f"{got} completions for a request of n={g.n}")
    for j, c in enumerate(completions):
        if not isinstance(c, Completion):
            raise TypeError(f"sample {j} is a {type(c).__name__}, not a Completion")
        if not isinstance(c.text, str):
            raise TypeError(f"sample {j} has text of type {type(c.text).__name__}")
        if c.logprobs is not None and len(c.logprobs) != len(c.token_ids):
            raise ValueError(
                f"sample {j}: logprobs ({len(c.logprobs)}) and token_ids ({len(c.token_ids)}) differ in length"
            )


def _to_request(g: Generate) -> GenerationRequest:
    tree = g.node.tree
    if tree is None:
        raise ValueError("Generate.node must belong to a SearchTree")
    path = tree.path(g.node)
    exact = all(n.exact_ids for n in path)
    ids = tuple(chain.from_iterable(n.token_ids for n in path)) if exact else None  # type: ignore[misc]
    images = tuple(n.image for n in path if n.image is not None)
    return GenerationRequest("".join(n.text for n in path), ids, g.sampling, images=images)
