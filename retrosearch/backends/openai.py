"""A backend for OpenAI-compatible completions servers (vLLM, SGLang, ...): requests sent as they come."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from retrosearch.backends.base import Completion, FinishReason, GenerationRequest, apply_stop, chat_prompt
from retrosearch.backends.workers import PriorityPool
from retrosearch.types import LOGPROBS_MODES, LogprobsMode


class ServerError(Exception):
    """One failed HTTP exchange; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class OpenAIBackend:
    """Continue requests through an OpenAI-compatible `/v1/completions` endpoint.

    Every request of a `generate` call is POSTed at once (up to `concurrency` in flight), so the server can batch
    them; `submit(request)` sends one request as soon as a connection is free and returns a `Future` of its
    completions, so the engine's continuous schedule keeps the server's batch full (`generate` and `submit` share
    the same `concurrency` connections). The body carries the request's `n`, `temperature`, `top_p`,
    `max_tokens`, `seed`, and the vLLM extensions `include_stop_str_in_output` (stop strings are kept, as the
    contract wants), `bad_words` (banned words, exact token sequences as with offline vLLM) and
    `return_token_ids` (the sampled ids, so nothing is re-tokenized). With `prompt_ids` the prompt is sent as a list of token ids. A server that ignores the
    extensions still works: a missing stop string is appended when the server says which stop matched
    (`stop_reason` for vLLM, `matched_stop` for SGLang) and missing token ids are obtained by tokenizing the text.

    Failures never crash a batch: timeouts, refused connections, 5xx, 429 and malformed answers are retried
    `max_retries` times with exponential backoff; after that, or at once for other 4xx answers (a bad request
    will not get better), the request's completions are `Completion(finish_reason="error", error=...)`.

    Log-probabilities (when requested) are those the server returns for the sampled tokens (`logprobs: 0`); the
    completions API has no way to ask for a kind. `vllm serve` computes them engine-wide: the model's raw
    log-softmax by default (`--logprobs-mode raw_logprobs`), the sampled distribution's (after bans, temperature
    and top-p) when started with `--logprobs-mode processed_logprobs`, which is what TRL's importance-sampling
    correction expects. Declare the server's mode with `logprobs_mode=` and a request asking for the other one
    gets an error completion instead of silently mislabelled numbers; undeclared (`None`), the server's values
    are returned as they come. Requests with images are refused (the completions endpoint takes text or ids).

    Args:
        base_url: The server's address, e.g. `http://127.0.0.1:8000` (a trailing `/v1` is accepted).
        model: The model name the server knows it by (see its `/v1/models`).
        api_key: Sent as `Authorization: Bearer ...` when given.
        tokenizer: A Hugging Face tokenizer or a path/name for `AutoTokenizer` (loaded without remote code); when
            omitted, `tokenize` asks the server's `/tokenize` endpoint (vLLM has one).
        timeout_s: Socket timeout of one HTTP exchange, in seconds (the limit on a silent server).
        max_retries: How many times a failed exchange is retried (so `1 + max_retries` attempts at most).
        concurrency: Most requests in flight at once (over `generate` and `submit` together); more wait for a
            free connection.
        backoff_s: Wait before the first retry, in seconds; doubled for each next one (capped at 30 s).
        extra_body: More fields merged into every completions body (e.g. `{"top_k": 20}`).
        logprobs_mode: What the server's log-probs are (`"processed"` or `"raw"`), when known; `None`: unknown.
        send_priority: Send each submitted request's priority in its body (for `vllm serve
            --scheduling-policy priority`; a server on `fcfs` refuses priorities other than 0).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        tokenizer: Any = None,
        timeout_s: float = 60,
        max_retries: int = 3,
        concurrency: int = 32,
        backoff_s: float = 0.5,
        extra_body: dict[str, Any] | None = None,
        logprobs_mode: LogprobsMode | None = None,
        send_priority: bool = False,
    ) -> None:
        if logprobs_mode is not None and logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode must be None or one of {LOGPROBS_MODES}, got {logprobs_mode!r}")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000', got {base_url!r}"
            )
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self.root = root
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.backoff_s = backoff_s
        self.extra_body = dict(extra_body or {})
        #: What the server's log-probs are, as declared (`None`: not declared).
        self.logprobs_mode = logprobs_mode
        self._tokenizer_spec = tokenizer
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.send_priority = send_priority
        self._pool = PriorityPool(concurrency, name="openai-backend")  # the connections
        #: Running totals: `requests`, `retries`, `errors`, `prompt_tokens`, `completion_tokens` (from `usage`).
        self.stats: dict[str, int] = dict.fromkeys(
            ("calls", "requests", "retries", "errors", "prompt_tokens", "completion_tokens"), 0
        )

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens: local tokenizer if given, else the server's `/tokenize`.

        Raises:
            RuntimeError: The server could not tokenize (after retries).
        """
        tok = self._local_tokenizer()
        if tok is not None:
            return list(tok.encode(text, add_special_tokens=False))
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        try:
            answer = self._post_with_retries("/tokenize", body)
        except ServerError as e:
            raise RuntimeError(f"tokenize via {self.root}/tokenize failed: {e}") from e
        tokens = answer.get("tokens")
        if not isinstance(tokens, list):
            raise RuntimeError(f"{self.root}/tokenize answered without a 'tokens' list: {str(answer)[:200]}")
        return [int(t) for t in tokens]

    def apply_chat_template(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Format chat `messages` with the local tokenizer's template (requires `tokenizer=`; the completions
        endpoint takes raw text, so the template is applied here)."""
        return chat_prompt(
            self._local_tokenizer(), messages, add_generation_prompt=add_generation_prompt, name=self.model
        )

    def _local_tokenizer(self) -> Any:
        if self._tokenizer_spec is None:
            return None
        if self._tokenizer is None:
            if isinstance(self._tokenizer_spec, str):
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_spec, trust_remote_code=False)
            else:
                self._tokenizer = self._tokenizer_spec
        return self._tokenizer

    # -------------------------------------------------------------- generation
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Send every request concurrently; returns, per request and in order, its `n` completions."""
        requests = list(requests)
        self.stats["calls"] += 1
        self.stats["requests"] += len(requests)
        if not requests:
            return []
        if len(requests) == 1:
            return [self._one(requests[0])]
        return [f.result() for f in [self._enqueue(r, 0) for r in requests]]

    def submit(self, request: GenerationRequest, priority: int = 0) -> Future[list[Completion]]:
        """Send one request as soon as one of the `concurrency` connections is free.

        Args:
            request: What to continue.
            priority: Requests waiting for a connection go lowest first (in arrival order among equals); with
                `send_priority`, the server is told it too.

        Returns:
            A future of the request's `n` completions. It never holds an exception for a failed exchange:
            like `generate`, a request that fails (after retries) is answered with error completions.
        """
        with self._lock:
            self.stats["requests"] += 1
        return self._enqueue(request, priority)

    def close(self) -> None:
        """Stop the connection threads once their exchanges end; requests still waiting are cancelled."""
        self._pool.close()

    def _enqueue(self, request: GenerationRequest, priority: int) -> Future[list[Completion]]:
        return self._pool.submit(lambda: self._one(request, priority), priority)

    def _body(self, req: GenerationRequest, priority: int = 0) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": list(req.prompt_ids) if req.prompt_ids is not None else req.prompt,
            "n": req.n,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "include_stop_str_in_output": True,
            "return_token_ids": True,
            "skip_special_tokens": True,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if req.banned_words:
            body["bad_words"] = list(req.banned_words)
        if req.seed is not None:
            body["seed"] = req.seed
        if req.logprobs:
            # OpenAI's completions API: `logprobs=k` returns the sampled token's log-prob plus the top k.
            body["logprobs"] = 0
        if self.send_priority:
            body["priority"] = priority
        body.update(self.extra_body)
        return body

    def _one(self, req: GenerationRequest, priority: int = 0) -> list[Completion]:
        refused = self._refusal(req)
        if refused is not None:
            with self._lock:
                self.stats["errors"] += 1
            return [Completion(text="", finish_reason="error", error=refused) for _ in range(req.n)]
        try:
            answer = self._post_with_retries("/v1/completions", self._body(req, priority))
            return self._parse(req, answer)
        except Exception as e:  # never let one request crash the wave: report it on its completions
            message = str(e) if isinstance(e, ServerError) else f"{type(e).__name__}: {e}"
            with self._lock:
                self.stats["errors"] += 1
            return [Completion(text="", finish_reason="error", error=message) for _ in range(req.n)]

    def _refusal(self, req: GenerationRequest) -> str | None:
        """Why this backend cannot serve `req` as asked, without asking the server."""
        if req.images:
            return f"the request has {len(req.images)} image(s): the completions endpoint takes no images"
        if req.logprobs and self.logprobs_mode is not None and req.logprobs_mode != self.logprobs_mode:
            return (
                f"the request asks for logprobs_mode={req.logprobs_mode!r}, but the server computes "
                f"{self.logprobs_mode!r} log-probs (vllm serve: --logprobs-mode {req.logprobs_mode}_logprobs)"
            )
        return None

    def _parse(self, req: GenerationRequest, answer: dict[str, Any]) -> list[Completion]:
        choices = answer.get("choices")
        if not isinstance(choices, list) or len(choices) != req.n:
            got = len(choices) if isinstance(choices, list) else "no"
            raise ServerError(
                f"expected {req.n} choices, the server answered {got}: {str(answer)[:200]}", retry=False
            )
        usage = answer.get("usage") or {}
        with self._lock:
            for key in ("prompt_tokens", "completion_tokens"):
                if isinstance(usage.get(key), int):
                    self.stats[key] += usage[key]
        out = []
        for ch in sorted(choices, key=lambda c: c.get("index", 0)):
            if not isinstance(ch, dict) or not isinstance(ch.get("text"), str):
                raise ServerError(f"malformed choice (no 'text'): {str(ch)[:200]}", retry=False)
            out.append(self._completion(req, ch))
        return out

    def _completion(self, req: GenerationRequest, ch: dict[str, Any]) -> Completion:
        text: str = ch["text"]
        stop_reason = ch.get("stop_reason", ch.get("matched_stop"))
        finish: FinishReason
        matched: str | None = None
        if ch.get("finish_reason") == "length":
            finish = "length"
        elif isinstance(stop_reason, str) and stop_reason in req.stop:
            finish, matched = "stop", stop_reason
            if not text.endswith(matched):  # a server that strips the stop string (no vLLM extension)
                text += matched
        else:
            # vLLM says "stop" for both; no matched string (None, or a stop token id) means end of sequence.
            finish = "eos"
        if finish == "length":
            # A stop string may still be the last thing written; keep the contract's reading of it.
            cut, matched = apply_stop(text, req.stop)
            if matched is not None and cut == text:
                finish = "stop"
            else:
                matched = None
        ids = ch.get("token_ids")
        if not isinstance(ids, list):
            ids = self.tokenize(text) if text else []
        logprobs = None
        if req.logprobs:
            lp = ch.get("logprobs") or {}
            values = lp.get("token_logprobs") if isinstance(lp, dict) else None
            if isinstance(values, list):
                logprobs = [float(v) if v is not None else float("nan") for v in values]
        return Completion(
            text=text,
            token_ids=[int(t) for t in ids],
            finish_reason=finish,
            stop_reason=matched,
            logprobs=logprobs,
        )

    # -------------------------------------------------------------------- HTTP
    def _post_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last: ServerError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.stats["retries"] += 1
                time.sleep(min(30.0, self.backoff_s * 2 ** (attempt - 1)))
            try:
                return self._post(path, body)
            except ServerError as e:
                last = e
                if not e.retry:
                    break
        assert last is not None
        tries = attempt + 1
        raise ServerError(f"{last} (after {tries} attempt{'s' if tries > 1 else ''})", retry=False)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.root + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            detail = _error_detail(e)
            retry = e.code >= 500 or e.code in (408, 429)
            raise ServerError(f"HTTP {e.code} from {url}: {detail}", retry=retry) from None
        except TimeoutError as e:
            raise ServerError(
                f"timed out after {self.timeout_s} s waiting for {url} ({e})", retry=True
            ) from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError):
                raise ServerError(
                    f"timed out after {self.timeout_s} s connecting to {url}", retry=True
                ) from None
            raise ServerError(f"cannot reach {url}: {reason}", retry=True) from None
        except (ConnectionError, OSError) as e:
            # e.g. the server closed the connection half-way (http.client.RemoteDisconnected).
            raise ServerError(f"connection to {url} failed: {type(e).__name__}: {e}", retry=True) from None
        try:
            answer = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServerError(f"malformed JSON from {url}: {raw[:200]!r}", retry=True) from None
        if not isinstance(answer, dict):
            raise ServerError(f"expected a JSON object from {url}, got {type(answer).__name__}", retry=True)
        return answer


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read()
    except OSError:
        return str(e.reason)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw[:300].decode(errors="replace") or str(e.reason)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
        if "message" in data:
            return str(data["message"])[:300]
    return str(data)[:300]
