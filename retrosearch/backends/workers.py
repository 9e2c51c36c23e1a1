"""A pool of threads whose waiting tasks run lowest priority first (arrival order among equals)."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class PriorityPool:
    """At most `workers` threads, started as needed (daemons, kept for the pool's life)."""

    def __init__(self, workers: int, name: str = "worker") -> None:
        self.workers, self.name = workers, name
        self._ready = threading.Condition()
        self._waiting: list[tuple[int, int, Future, Callable[[], Any]]] = []  # a heap
        self._arrivals = itertools.count()
        self._started = self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[[], Any], priority: int = 0) -> Future:
        """Run `fn()` on a free thread, before the waiting tasks of higher `priority`; returns its future."""
        fut: Future = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the pool is closed")
            heapq.heappush(self._waiting, (priority, next(self._arrivals), fut, fn))
            if len(self._waiting) > self._idle and self._started < self.workers:
                self._started += 1
                threading.Thread(target=self._work, name=self.name, daemon=True).start()
            self._ready.notify()
        return fut

    def close(self) -> None:
        """Cancel the waiting tasks; the running ones finish, then their threads end."""
        with self._ready:
            self._closed = True
            waiting, self._waiting = self._waiting, []
            self._ready.notify_all()
        for _, _, fut, _ in waiting:
            fut.cancel()

    def _work(self) -> None:
        while True:
            with self._ready:
                self._idle += 1
                while not self._waiting and not self._closed:
                    self._ready.wait()
                self._idle -= 1
                if not self._waiting:
                    self._started -= 1
                    return
                _, _, fut, fn = heapq.heappop(self._waiting)
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as e:  # noqa: BLE001 - the caller's to read
                    fut.set_exception(e)
