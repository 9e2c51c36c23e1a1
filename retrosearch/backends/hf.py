"""Hugging Face transformers backend: batched `model.generate` with left padding, on CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.logits_process import NoBadWordsLogitsProcessor

from retrosearch.backends.base import Completion, GenerationRequest, apply_stop, chat_prompt

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}

#: Prompt tokens decoded in front of a continuation, so that tokenizers that drop a leading space at the start
#: of a decode (SentencePiece) still give the continuation's exact text.
_DECODE_CONTEXT = 4


@dataclass
class _Row:
    """One sequence of a batch: sample `sample` of request `req`, with at most `max_new` new tokens."""

    req: int
    sample: int
    ids: list[int]
    request: GenerationRequest
    generator: torch.Generator | None
    max_new: int = 0

    def __post_init__(self) -> None:
        if not self.max_new:
            self.max_new = self.request.max_tokens


class TransformersBackend:
    """A `Backend` on a local Hugging Face causal LM.

    Every sample of every request becomes one row; rows are batched (up to `batch_size`) into one
    `model.generate` call with left padding. All sampling settings are per row, so requests with different
    settings share a batch: sampling (temperature, top-p) is done by this backend's own logits processor with one
    `torch.Generator` per sample, seeded with `seed + i` for sample `i` (the contract's convention), so a seeded
    request gives the same samples whatever else is in the batch. `generate` itself runs greedy and only picks
    the token this processor chose. Temperature `0` is plain greedy decoding (the `n` samples are then identical
    and computed once).

    Conventions (chosen to match vLLM, so that both backends return the same thing):
        - Prompts given as text are tokenized *without* special tokens (the text is already formatted: a chat
          template adds its own BOS); `prompt_ids`, when given, are fed as they are.
        - `token_ids` of a completion that ended on EOS include the EOS token (with its log-prob); its `text`
          does not (special tokens are skipped in completion texts).
        - A stop string is kept: `text` ends right after the first stop (`apply_stop`), and `token_ids` end
          with the token that completes it. When that token runs past the stop (e.g. stop `"\\n\\n"` inside a
          token `"\\n\\n\\n"`), `decode(token_ids)` is `text` plus the rest of that last token, as in vLLM.
        - `banned_words` are tokenized as given (no special tokens) and banned as exact token sequences with
          transformers' `NoBadWordsLogitsProcessor` (the `bad_words_ids` mechanism), in every row of the request.
        - `logprobs` are the raw model log-probabilities of the sampled tokens: `log_softmax` of the model's
          logits before bans, temperature and top-p (vLLM's default `raw_logprobs`).
        - The model's own `generation_config` sampling defaults (top-k, repetition penalty, ...) are ignored:
          only the request's settings apply. Its EOS token ids are used.

    Args:
        model: A local model folder or hub id (loaded with `AutoModelForCausalLM`), or a loaded model.
        tokenizer: A tokenizer, or where to load one from; default: the model's folder.
        device: `"auto"` (CUDA, then MPS, then CPU; a passed model stays where it is), or a torch device string.
        dtype: `"auto"` (the checkpoint's dtype), `"float32"`, `"bfloat16"` or `"float16"`.
        trust_remote_code: Allow the model's repository to run its own code when loading. Off by default.
        batch_size: Most rows (sequences) per `generate` call.
        gguf_file: Load a GGUF file from the `model` folder (needs the `gguf` package).
    """

    name = "transformers"

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        tokenizer: Any = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        batch_size: int = 16,
        gguf_file: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if dtype != "auto" and dtype not in _DTYPES and not isinstance(dtype, torch.dtype):
            raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}")
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        torch_dtype = dtype if dtype == "auto" or isinstance(dtype, torch.dtype) else _DTYPES[dtype]
        load_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file is not None:
            load_kwargs["gguf_file"] = gguf_file

        if isinstance(model, (str, Path)):
            source = str(model)
            self.model = AutoModelForCausalLM.from_pretrained(
                source, **{_dtype_kwarg(): torch_dtype}, **load_kwargs
            )
            self.model.to(_resolve_device(device))
        elif isinstance(model, torch.nn.Module) and hasattr(model, "generate"):
            source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
            self.model = model
            if torch_dtype != "auto":
                self.model.to(torch_dtype)
            if device != "auto":
                self.model.to(device)
        else:
            raise TypeError(
                f"model must be a path, a hub id or a PreTrainedModel, got {type(model).__name__}"
            )
        self.model.eval()

        if tokenizer is None or isinstance(tokenizer, (str, Path)):
            tok_source = str(tokenizer) if tokenizer is not None else source
            if not tok_source:
                raise ValueError(
                    "tokenizer is required when the model was not loaded from a folder or hub id"
                )
            tok_kwargs = dict(load_kwargs) if tokenizer is None else {"trust_remote_code": trust_remote_code}
            tokenizer = AutoTokenizer.from_pretrained(tok_source, **tok_kwargs)
        self.tokenizer = tokenizer

        gen = getattr(self.model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_token_ids: list[int] = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = getattr(gen, "pad_token_id", None)
        if pad is None:
            pad = self.eos_token_ids[0] if self.eos_token_ids else 0
        self.pad_token_id: int = int(pad)
        self.bos_token_id: int | None = tokenizer.bos_token_id
        ctx = getattr(self.model.config, "max_position_embeddings", None)
        #: The model's context window in tokens (prompt + completion), when its config says.
        self.max_context: int | None = int(ctx) if ctx else None

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Text of `ids` (special tokens kept unless asked; no clean-up of spaces, so it round-trips)."""
        return self.tokenizer.decode(
            list(ids), skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=False
        )

    def apply_chat_template(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Format chat `messages` (`[{"role": ..., "content": ...}]`) as prompt text with the model's template."""
        return chat_prompt(
            self.tokenizer,
            messages,
            add_generation_prompt=add_generation_prompt,
            name=repr(self.model.name_or_path),
        )

    def _continuation_text(self, context: Sequence[int], ids: Sequence[int]) -> str:
        """Text of `ids` as it reads after `context` (special tokens skipped)."""
        if not ids:
            return ""
        ctx = list(context[-_DECODE_CONTEXT:])
        plain = self.decode(ids, skip_special_tokens=True)
        if not ctx:
            return plain
        head = self.decode(ctx, skip_special_tokens=True)
        both = self.decode(ctx + list(ids), skip_special_tokens=True)
        # Byte-level tokenizers give `plain`; only SentencePiece-style leading-space handling differs.
        return both[len(head) :] if both.startswith(head) else plain

    # -------------------------------------------------------------- generation
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Continue every request; returns, per request and in order, its `n` completions."""
        for i, req in enumerate(requests):
            if not isinstance(req, GenerationRequest):
                raise TypeError(f"requests[{i}] must be a GenerationRequest, got {type(req).__name__}")
        out: list[list[Completion | None]] = [[None] * r.n for r in requests]
        rows: list[_Row] = []
        for i, req in enumerate(requests):
            ids = list(req.prompt_ids) if req.prompt_ids is not None else self.tokenize(req.prompt)
            if not ids:
                if self.bos_token_id is None:
                    out[i] = [_error("empty prompt and the tokenizer has no BOS token") for _ in range(req.n)]
                    continue
                ids = [self.bos_token_id]
            if self.max_context is not None and len(ids) >= self.max_context:
                message = (
                    f"the prompt has {len(ids)} tokens: no room left in the model's maximum context length "
                    f"of {self.max_context} tokens"
                )
                out[i] = [_error(message) for _ in range(req.n)]
                continue
            bad = [w for w in req.banned_words if not self.tokenize(w)]
            if bad:
                out[i] = [_error(f"banned word {bad[0]!r} has no tokens") for _ in range(req.n)]
                continue
            # Past the context window the model has no positions: generation ends there, as "length".
            room = (
                req.max_tokens
                if self.max_context is None
                else min(req.max_tokens, self.max_context - len(ids))
            )
            # Greedy samples are identical: compute one, copy it below.
            for j in range(1 if req.temperature == 0 else req.n):
                rows.append(_Row(i, j, ids, req, self._generator(req, j), room))
        for k in range(0, len(rows), self.batch_size):
            batch = rows[k : k + self.batch_size]
            for row, completion in zip(batch, self._generate_batch(batch)):
                out[row.req][row.sample] = completion
        for i, req in enumerate(requests):
            if req.temperature == 0 and req.n > 1 and out[i][0] is not None:
                first = out[i][0]
                out[i] = [first] + [_copy(first) for _ in range(req.n - 1)]
        return out  # type: ignore[return-value]

    def _generator(self, req: GenerationRequest, sample: int) -> torch.Generator | None:
        if req.temperature == 0:
            return None
        # Sampling draws on CPU: the same seed then gives the same samples on every device.
        g = torch.Generator(device="cpu")
        if req.seed is None:
            g.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        else:
            g.manual_seed(req.seed + sample)
        return g

    @torch.inference_mode()
    def _generate_batch(self, rows: list[_Row]) -> list[Completion]:
        width = max(len(r.ids) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            input_ids[b, width - len(r.ids) :] = torch.tensor(r.ids, dtype=torch.long)
            attention[b, width - len(r.ids) :] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)

        recorder = _LogprobRecorder() if any(r.request.logprobs for r in rows) else None
        processors: list[LogitsProcessor] = [] if recorder is None else [recorder]
        bans = _BanProcessor(rows, self.tokenize, self.eos_token_ids)
        if bans.active:
            processors.append(bans)
        if any(r.generator is not None for r in rows):
            processors.append(_Sampler(rows))
        stopper = _RowStopper(self, rows, width)
        config = GenerationConfig(
            max_new_tokens=max(r.max_new for r in rows),
            do_sample=False,  # our `_Sampler` picks sampled tokens; `generate` keeps the one it left
            num_beams=1,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=self.eos_token_ids or None,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
        )
        sequences = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            generation_config=config,
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([stopper]),
        )
        if not isinstance(sequences, torch.Tensor):
            sequences = sequences.sequences
        sequences = sequences.cpu()
        logprobs = recorder.finish(sequences[:, -1].to(self.device)) if recorder is not None else None
        return [
            self._completion(
                r,
                sequences[b, width : width + stopper.lengths[b]].tolist(),
                None
                if logprobs is None or not r.request.logprobs
                else logprobs[b, : stopper.lengths[b]].tolist(),
            )
            for b, r in enumerate(rows)
        ]

    def _completion(self, row: _Row, ids: list[int], logprobs: list[float] | None) -> Completion:
        req = row.request
        eos = bool(ids) and ids[-1] in self.eos_token_ids
        body = ids[:-1] if eos else ids
        text = self._continuation_text(row.ids, body)
        cut, stop = apply_stop(text, req.stop)
        if stop is not None:
            k = self._stop_token_count(row.ids, body, req.stop)
            ids, text, finish = ids[:k], cut, "stop"
        elif eos:
            finish = "eos"
        else:
            finish = "length"
        if logprobs is not None:
            logprobs = logprobs[: len(ids)]
        return Completion(text=text, token_ids=ids, finish_reason=finish, stop_reason=stop, logprobs=logprobs)

    def _stop_token_count(self, context: list[int], ids: list[int], stop: Sequence[str]) -> int:
        """Fewest leading tokens of `ids` whose text contains a stop string (binary search)."""
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if apply_stop(self._continuation_text(context, ids[:mid]), stop)[1] is not None:
                hi = mid
            else:
                lo = mid + 1
        return lo


def _dtype_kwarg() -> str:
    # transformers renamed `torch_dtype` to `dtype` in 4.56.
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _error(message: str) -> Completion:
    return Completion(text="", token_ids=[], finish_reason="error", error=message)


def _copy(c: Completion) -> Completion:
    return Completion(
        text=c.text,
        token_ids=list(c.token_ids),
        finish_reason=c.finish_reason,
        stop_reason=c.stop_reason,
        logprobs=None if c.logprobs is None else list(c.logprobs),
        error=c.error,
    )


class _LogprobRecorder(LogitsProcessor):
    """First in the chain: keeps the raw `log_softmax` of each step to read the chosen token's log-prob.

    The token chosen at step `t` is only known at step `t + 1` (it is then the last input id), so only one
    step's distribution is held at a time.
    """

    def __init__(self) -> None:
        self.previous: torch.Tensor | None = None
        self.values: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.previous is not None:
            self.values.append(self.previous.gather(1, input_ids[:, -1:]).squeeze(1))
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """`(batch, steps)` log-probs, given the tokens chosen at the last step."""
        if self.previous is not None:
            self.values.append(self.previous.gather(1, last_tokens[:, None]).squeeze(1))
            self.previous = None
        return torch.stack(self.values, dim=1).cpu()


class _BanProcessor(LogitsProcessor):
    """Applies each row's banned words (as token sequences) with transformers' bad-words processor."""

    def __init__(self, rows: list[_Row], tokenize: Any, eos_token_ids: list[int]) -> None:
        groups: dict[tuple[str, ...], list[int]] = {}
        for b, r in enumerate(rows):
            if r.request.banned_words:
                groups.setdefault(r.request.banned_words, []).append(b)
        self.parts: list[tuple[torch.Tensor, NoBadWordsLogitsProcessor]] = []
        for words, idx in groups.items():
            seqs = sorted({tuple(tokenize(w)) for w in words})
            proc = NoBadWordsLogitsProcessor([list(s) for s in seqs], eos_token_id=eos_token_ids or None)
            self.parts.append((torch.tensor(idx, dtype=torch.long), proc))
        self.active = bool(self.parts)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for idx, proc in self.parts:
            idx = idx.to(scores.device)
            scores[idx] = proc(input_ids[idx], scores[idx])
        return scores


class _Sampler(LogitsProcessor):
    """Last in the chain: temperature, top-p and one draw per sampled row, by inverse CDF.

    Each sampled row draws one uniform number per step from its own CPU generator; the token is found on the
    model's device (`searchsorted` in the cumulative distribution), so only one float per row crosses devices
    and the same seed gives the same samples whatever else is in the batch. Returns scores that are `-inf`
    everywhere but at the drawn token, so `generate`'s greedy step takes it; greedy rows pass through.
    """

    def __init__(self, rows: list[_Row]) -> None:
        self.index = [b for b, r in enumerate(rows) if r.generator is not None]
        self.generators = [rows[b].generator for b in self.index]
        self.temperature = torch.tensor([rows[b].request.temperature for b in self.index])[:, None]
        self.top_p = torch.tensor([rows[b].request.top_p for b in self.index])[:, None]
        self.any_top_p = bool((self.top_p < 1.0).any())

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        device = scores.device
        idx = torch.tensor(self.index, device=device)
        probs = torch.softmax(scores[idx].float() / self.temperature.to(device), dim=-1)
        if self.any_top_p:
            probs, order = torch.sort(probs, dim=-1, descending=True)
            before = torch.cumsum(probs, dim=-1) - probs  # mass of the strictly more likely tokens
            probs = probs.masked_fill(before >= self.top_p.to(device), 0.0)  # the top token always stays
        cdf = torch.cumsum(probs, dim=-1)
        u = torch.cat([torch.rand(1, generator=g) for g in self.generators]).to(device)
        # `right=True`: a token of zero probability (an empty CDF step) can never be drawn.
        token = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=cdf.shape[-1] - 1)
        if self.any_top_p:
            token = order.gather(-1, token)
        out = scores.clone()
        out[idx] = float("-inf")
        out[idx[:, None], token] = 0.0
        return out


class _RowStopper(StoppingCriteria):
    """Per-row end of generation: max tokens, EOS, or a stop string in the row's new text.

    Records each row's generated length when it first ends (`lengths`), so padding written after a row
    finished is never read back.
    """

    def __init__(self, backend: TransformersBackend, rows: list[_Row], width: int) -> None:
        self.backend = backend
        self.rows = rows
        self.width = width
        self.eos = set(backend.eos_token_ids)
        self.lengths: list[int] = [r.max_new for r in rows]
        self.done = [False] * len(rows)
        # A stop string of `c` characters is spread over at most `4c` byte-level tokens.
        self.windows = [4 * max((len(s) for s in r.request.stop), default=0) + 4 for r in rows]

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        steps = input_ids.shape[1] - self.width
        last = input_ids[:, -1].tolist()
        for b, r in enumerate(self.rows):
            if self.done[b]:
                continue
            req = r.request
            end = steps >= r.max_new or last[b] in self.eos
            if not end and req.stop:
                tail = input_ids[b, max(self.width, input_ids.shape[1] - self.windows[b]) :].tolist()
                text = self.backend.decode(tail, skip_special_tokens=True)
                end = any(s and s in text for s in req.stop)
            if end:
                self.done[b] = True
                self.lengths[b] = min(steps, r.max_new)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)
