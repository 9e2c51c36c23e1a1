"""Deadlines for checks that may never finish: a SIGALRM timer in the main thread, worker processes elsewhere."""

from __future__ import annotations

import atexit
import importlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: `broken`: a deadline once landed inside a module import, so this process's modules may be half-initialized
#: and later checks use worker processes instead of the signal.
SIGNAL_STATE = {"broken": False}


class _Deadline(BaseException):
    """Raised by the SIGALRM handler; a BaseException so a library's `except Exception` does not swallow it."""


def _interrupted_import(tb: Any) -> bool:
    """Whether a traceback passes through the import machinery (the deadline landed inside an import)."""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        tb = tb.tb_next
    return False


def signal_usable() -> bool:
    """Whether `run_with_alarm` can be used here: the main thread, a Python-level SIGALRM handler (one
    installed from C cannot be put back afterwards) and no earlier deadline inside an import."""
    return (
        threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
        and signal.getsignal(signal.SIGALRM) is not None
        and not SIGNAL_STATE["broken"]
    )


def run_with_alarm(fn: Callable[[], Any], timeout_s: float) -> tuple[bool, Any]:
    """Run `fn` in the main thread under a SIGALRM deadline: `(finished, value)`.

    A previously armed `ITIMER_REAL` (an outer timeout) is re-armed afterwards with its remaining time.
    """

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Deadline

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    prev_delay, prev_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        try:
            return True, fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline as e:
        if _interrupted_import(e.__traceback__):
            SIGNAL_STATE["broken"] = True
            logger.warning(
                "a grading deadline interrupted a module import; this process's modules may be damaged, so "
                "checks run in worker processes from now on"
            )
        return False, None
    finally:
        signal.signal(signal.SIGALRM, old_handler)
        if prev_delay > 0:
            left = max(prev_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, prev_interval)


def _resolve(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def worker_main(target: str, warm_up: str | None = None) -> None:
    """Body of a worker process: pickled argument tuples for `target` ("module:function") on stdin, pickled
    results on stdout; `warm_up` runs once before the worker reports ready. A target that raises answers
    `("error", message)`."""
    import os
    import pickle
    import sys

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from libraries go to stderr, not into the result stream
    fn = _resolve(target)
    if warm_up:
        _resolve(warm_up)()  # before "ready": the first deadline must not be spent importing
    pickle.dump("ready", out)
    out.flush()
    while True:
        try:
            args = pickle.load(sys.stdin.buffer)
        except (EOFError, OSError):
            return
        try:
            result: Any = ("ok", fn(*args))
        except Exception as e:  # a bug in the library must not kill the worker
            result = ("error", f"{type(e).__name__}: {e}")
        pickle.dump(result, out)
        out.flush()


class Worker:
    """One worker subprocess running `worker_main`; killed (the pool starts another) when a call runs past
    its deadline.

    A plain subprocess, not `multiprocessing`: spawn would re-import the caller's `__main__` (scripts without
    a main guard would run twice) and fork is unsafe in a threaded process.
    """

    STARTUP_S = 120.0

    def __init__(self, target: str, warm_up: str | None = None) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        env = dict(os.environ)
        # The folder that holds the `retrosearch` package (this file is retrosearch/verify/deadline.py), so the
        # worker imports this very copy; never the package folder itself, whose `types.py` would shadow the
        # standard library's.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = f"from retrosearch.verify.deadline import worker_main; worker_main({target!r}, {warm_up!r})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        if not self._wait(self.STARTUP_S):
            self.kill()
            raise RuntimeError(f"worker process did not start within {self.STARTUP_S:.0f} s")
        if self._read() != "ready":
            self.kill()
            raise RuntimeError("worker process failed to start (see its stderr above)")

    def _wait(self, timeout_s: float) -> bool:
        import select

        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return bool(readable)

    def _read(self) -> Any:
        import pickle

        try:
            return pickle.load(self.proc.stdout)  # type: ignore[arg-type]
        except (EOFError, OSError, pickle.UnpicklingError):
            return None

    def run(self, args: tuple, timeout_s: float) -> tuple[bool, Any]:
        """`(finished, ("ok", value) | ("error", message))`; `(False, None)` past the deadline."""
        import pickle

        assert self.proc.stdin is not None
        try:
            pickle.dump(args, self.proc.stdin)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return True, ("error", "worker process died")
        if not self._wait(timeout_s):
            self.kill()
            return False, None
        result = self._read()
        if result is None:
            self.kill()
            return True, ("error", "worker process died")
        return True, result

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class WorkerPool:
    """Idle worker processes for one target, shared by all threads; a thread checks one out per call.

    Args:
        target: the function the workers run, as "module:function".
        warm_up: a function ("module:function") each worker runs once before it takes calls.
    """

    def __init__(self, target: str, warm_up: str | None = None) -> None:
        self.target, self.warm_up = target, warm_up
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self.started = 0
        atexit.register(self.close)

    def run(self, args: tuple, timeout_s: float) -> tuple[bool, Any]:
        """Call the target with `args` in a worker: `(finished, ("ok", value) | ("error", message))`."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = Worker(self.target, self.warm_up)
            with self._lock:
                self.started += 1
        finished, value = worker.run(args, timeout_s)
        if worker.alive:
            with self._lock:
                self._idle.append(worker)
        return finished, value

    def close(self) -> None:
        """Stop the idle workers (also run at exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for w in idle:
            w.kill()
