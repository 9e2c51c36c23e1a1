"""OpenAIBackend.submit: requests sent as they come, at most `concurrency` at once, against a real HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from retrosearch.backends import GenerationRequest, OpenAIBackend
from retrosearch.engine import Engine
from retrosearch.tree import SearchTree
from retrosearch.types import Generate


class Server:
    """`/v1/completions` on 127.0.0.1, vLLM-style; it counts the requests in flight at once.

    A prompt ending in `slow` is answered after `slow_s`, one ending in `bad` with HTTP 400, any other after
    `delay_s` with `" <k>"` where k is how many times this prompt was answered before (a deterministic "model").
    """

    def __init__(self, delay_s: float = 0.02, slow_s: float = 1.0) -> None:
        self.lock = threading.Lock()
        self.inflight = self.most = 0
        self.seen: dict[str, int] = {}
        self.bodies: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["prompt"]
                with server.lock:
                    server.bodies.append(body)
                    server.inflight += 1
                    server.most = max(server.most, server.inflight)
                    k = server.seen[prompt] = server.seen.get(prompt, -1) + 1
                try:
                    time.sleep(slow_s if prompt.endswith("slow") else delay_s)
                    if prompt.endswith("bad"):
                        return self._send(400, {"error": {"message": "prompt is too long"}})
                    text = f" {k}"
                    choice = {"index": 0, "text": text, "token_ids": [k], "finish_reason": "length"}
                    self._send(200, {"choices": [choice] * body.get("n", 1)})
                finally:
                    with server.lock:
                        server.inflight -= 1

            def _send(self, code: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def client(server: Server, **kw: Any) -> OpenAIBackend:
    return OpenAIBackend(server.url, "m", max_retries=0, tokenizer=_Tok(), **kw)


class _Tok:
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [len(w) for w in text.split()]


def test_submit_makes_the_engine_schedule_continuous_and_answers_like_generate(server: Server) -> None:
    backend = client(server)
    assert Engine(backend).schedule == "continuous"
    fut = backend.submit(GenerationRequest(prompt="p", n=2, max_tokens=3))
    assert isinstance(fut, Future)
    [a, b] = fut.result(timeout=10)
    [[c]] = backend.generate([GenerationRequest(prompt="p", max_tokens=3)])
    assert (a.text, a.token_ids, b.text, c.text) == (" 0", [0], " 0", " 1")
    backend.close()


def test_at_most_concurrency_requests_are_in_flight_and_all_are_answered(server: Server) -> None:
    backend = client(server, concurrency=3)
    futures = [backend.submit(GenerationRequest(prompt=f"q{i}", max_tokens=1)) for i in range(12)]
    assert [f.result(timeout=10)[0].text for f in futures] == [" 0"] * 12
    assert server.most == 3 and backend.stats["requests"] == 12
    backend.close()


def test_a_failed_request_is_an_error_completion_of_that_request_only(server: Server) -> None:
    backend = client(server, concurrency=2)
    futures = [backend.submit(GenerationRequest(prompt=p, max_tokens=1)) for p in ("a", "bad", "b")]
    [ok1], [bad], [ok2] = [f.result(timeout=10) for f in futures]
    assert ok1.text == ok2.text == " 0" and ok1.finish_reason == "length"
    assert bad.finish_reason == "error" and "HTTP 400" in bad.error and "prompt is too long" in bad.error
    assert backend.stats["errors"] == 1
    backend.close()


def test_programs_advance_while_a_slow_request_is_still_running(server: Server) -> None:
    def prog(tree: SearchTree, turns: int):
        node = tree.root
        for _ in range(turns):
            (node,) = yield Generate(node, max_tokens=1)
        return tree.text(node)

    backend = client(server, concurrency=4)
    engine = Engine(backend)
    t = time.perf_counter()
    order = [i for i, _ in engine.run_iter([prog(SearchTree("slow"), 1), prog(SearchTree("a"), 5)])]
    # Under waves the five turns of "a" would wait for "slow" (1 s) at its first turn; here they run meanwhile.
    assert order == [1, 0] and time.perf_counter() - t < 1.6
    assert engine.stats.waves == 0 and engine.stats.requests == 6
    backend.close()


def test_a_request_the_server_refuses_fails_only_its_program_under_the_engine(server: Server) -> None:
    def prog(tree: SearchTree):
        (node,) = yield Generate(tree.root, max_tokens=1)
        return node.finish_reason, node.text

    backend = client(server)
    out = Engine(backend).run([prog(SearchTree(p)) for p in ("x", "bad", "y")])
    assert out[0] == out[2] == ("length", " 0") and out[1] == ("error", "")
    backend.close()


def test_close_cancels_requests_still_waiting_for_a_connection(server: Server) -> None:
    backend = client(server, concurrency=1)
    running = backend.submit(GenerationRequest(prompt="slow", max_tokens=1))
    waiting = backend.submit(GenerationRequest(prompt="w", max_tokens=1))
    time.sleep(0.1)
    backend.close()
    assert waiting.cancelled() and running.result(timeout=10)[0].text == " 0"


def test_requests_waiting_for_a_connection_go_lowest_priority_first(server: Server) -> None:
    backend = client(server, concurrency=1, send_priority=True)
    busy = backend.submit(GenerationRequest(prompt="slow", max_tokens=1))
    time.sleep(0.1)  # the one connection is taken: the next three wait
    waiting = [
        backend.submit(GenerationRequest(prompt=p, max_tokens=1), priority=k)
        for p, k in [("c", 5), ("a", -2), ("b", 0)]
    ]
    [f.result(timeout=10) for f in [busy, *waiting]]
    assert [b["prompt"] for b in server.bodies] == ["slow", "a", "b", "c"]
    assert [b["priority"] for b in server.bodies] == [0, -2, 0, 5]
    backend.close()


def test_the_engine_gives_the_longest_allowed_requests_the_lowest_priority_number(server: Server) -> None:
    seen: list[tuple[str, int]] = []

    class Recording(OpenAIBackend):
        def submit(self, request: GenerationRequest, priority: int = 0) -> Future:
            seen.append((request.prompt, priority))
            return super().submit(request, priority)

    def prog(tree: SearchTree, max_tokens: int):
        (node,) = yield Generate(tree.root, max_tokens=max_tokens)
        return node.text

    backend = Recording(server.url, "m", max_retries=0, tokenizer=_Tok())
    assert Engine(backend).run([prog(SearchTree("x"), 8), prog(SearchTree("y"), 300)]) == [" 0", " 0"]
    assert seen == [("x", -8), ("y", -300)]
    assert [b.get("priority") for b in server.bodies] == [None, None]  # not sent unless asked for
    backend.close()
