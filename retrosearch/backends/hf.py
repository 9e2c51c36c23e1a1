"""Hugging Face transformers backend: batched `model.generate` with left padding, on CPU or GPU, text or images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    StoppingCriteriaList,
)

from retrosearch.backends.base import Completion, GenerationRequest, apply_stop, chat_prompt
from retrosearch.backends.hf_decoding import BanProcessor, LogprobPicker, Row, RowStopper, Sampler
from retrosearch.backends.hf_images import ImageInputs, concat, is_image_processor
from retrosearch.backends.hf_loading import auto_class, dtype_kwargs, load_processor, resolve_device
from retrosearch.backends.locate import locate_model

__all__ = ["TransformersBackend", "dtype_kwargs"]

#: Prompt tokens decoded in front of a continuation, so that tokenizers that drop a leading space at the start
#: of a decode (SentencePiece) still give the continuation's exact text.
_DECODE_CONTEXT = 4


class TransformersBackend:
    """A `Backend` on a local Hugging Face model: a causal LM, or a vision-language model with its processor.

    Every sample of every request becomes one row; rows are batched (up to `batch_size`) into one
    `model.generate` call with left padding. All sampling settings are per row, so requests with different
    settings share a batch: sampling (temperature, top-p) is done by this backend's own logits processor with one
    `torch.Generator` per sample, seeded with `seed + i` for sample `i` (the contract's convention), so a seeded
    request gives the same samples whatever else is in the batch. `generate` itself runs greedy and only picks
    the token this processor chose. Temperature `0` is plain greedy decoding (the `n` samples are then identical
    and computed once).

    No KV cache outlives a `model.generate` call, and rows share none: every row encodes its whole prompt anew,
    so the `n` samples of a request, rollouts from one prefix and each later turn of a program all recompute
    the shared prefix (vLLM's prefix caching computes it once). Having no `submit`, it runs the engine's waves.

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
        - `logprobs` follow each request's `logprobs_mode`: `"processed"` is the log-probability under the
          distribution the token was drawn from (after bans, temperature and top-p; at temperature 0, the
          log-softmax after bans), what TRL's importance-sampling correction expects and vLLM's
          `processed_logprobs`; `"raw"` is the model's `log_softmax` before bans, temperature and top-p (vLLM's
          `raw_logprobs`).
        - Images (`request.images`): the prompt holds the processor's image token once per image; the model's
          processor expands it and makes the pixel inputs (see `ImageInputs`). A model without one answers such a
          request with an error completion.
        - The model's own `generation_config` sampling defaults (top-k, repetition penalty, ...) are ignored:
          only the request's settings apply. Its EOS token ids are used.

    Args:
        model: A local model folder, a shipped model's name (`"toy-base"`), a hub id, or a loaded model.
            A name that is nowhere to be found fails at once (`FileNotFoundError`), before anything loads.
        tokenizer: A tokenizer (or a processor), or where to load one from; default: the model's folder.
        device: `"auto"` (CUDA, then MPS, then CPU; a passed model stays where it is), or a torch device string.
        dtype: `"auto"` (the checkpoint's dtype), `"float32"`, `"bfloat16"` or `"float16"`.
        trust_remote_code: Allow the model's repository to run its own code when loading. Off by default.
        batch_size: Most rows (sequences) per `generate` call.
        gguf_file: Load a GGUF file from the `model` folder (needs the `gguf` package).
        processor: A vision-language model's processor; loaded with `AutoProcessor` from the model's folder when
            the model is an image-text model.
    """

    name = "transformers"
    #: The autograd mode generation runs under (the live backend uses `torch.no_grad`, which training can follow).
    _grad_mode = staticmethod(torch.inference_mode)

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
        processor: Any = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        weights = dtype_kwargs(dtype)
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        load_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file is not None:
            load_kwargs["gguf_file"] = gguf_file

        if isinstance(model, (str, os.PathLike)):
            source, hub = locate_model(model)
            load_kwargs.update(hub)
            config = AutoConfig.from_pretrained(source, **load_kwargs)
            auto = auto_class(config)
            self.model = auto.from_pretrained(source, **weights, **load_kwargs)
            self.model.to(resolve_device(device))
            if processor is None and tokenizer is None and auto is not AutoModelForCausalLM:
                processor = load_processor(source, load_kwargs)
        elif isinstance(model, torch.nn.Module) and hasattr(model, "generate"):
            source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
            self.model = model
            torch_dtype = next(iter(weights.values()))
            if torch_dtype != "auto":
                self.model.to(torch_dtype)
            if device != "auto":
                self.model.to(device)
        else:
            raise TypeError(
                f"model must be a path, a hub id or a PreTrainedModel, got {type(model).__name__}"
            )
        self.model.eval()
        self._attach_tokenizer(tokenizer, processor, source, load_kwargs)

    def _attach_tokenizer(
        self, tokenizer: Any, processor: Any, source: str | None, load_kwargs: dict
    ) -> None:
        """Set the tokenizer (and the image processor, if any) and the special ids the backend needs."""
        if processor is None and is_image_processor(tokenizer):
            processor, tokenizer = tokenizer, None
        #: Expands image tokens and builds image tensors (`None`: a text-only model).
        self.images: ImageInputs | None = ImageInputs(processor) if processor is not None else None
        if tokenizer is None and processor is not None:
            tokenizer = processor.tokenizer
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            if tokenizer is not None:
                tok_source, tok_kwargs = locate_model(tokenizer, what="tokenizer")
                tok_kwargs["trust_remote_code"] = self.trust_remote_code
            elif source:
                tok_source, tok_kwargs = source, dict(load_kwargs)
            else:
                raise ValueError(
                    "tokenizer is required when the model was not loaded from a folder or hub id"
                )
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
        config = self.model.config
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        ctx = getattr(text_config, "max_position_embeddings", None)
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
        rows: list[Row] = []
        for i, req in enumerate(requests):
            ids, images, problem = self._prompt(req)
            if problem is not None:
                out[i] = [_error(problem) for _ in range(req.n)]
                continue
            # Past the context window the model has no positions: generation ends there, as "length".
            room = (
                req.max_tokens
                if self.max_context is None
                else min(req.max_tokens, self.max_context - len(ids))
            )
            # Greedy samples are identical: compute one, copy it below.
            for j in range(1 if req.temperature == 0 else req.n):
                rows.append(Row(i, j, ids, req, self._generator(req, j), room, images))
        for k in range(0, len(rows), self.batch_size):
            batch = rows[k : k + self.batch_size]
            for row, completion in zip(batch, self._generate_batch(batch)):
                out[row.req][row.sample] = completion
        for i, req in enumerate(requests):
            if req.temperature == 0 and req.n > 1 and out[i][0] is not None:
                first = out[i][0]
                out[i] = [first] + [_copy(first) for _ in range(req.n - 1)]
        return out  # type: ignore[return-value]

    def _prompt(self, req: GenerationRequest) -> tuple[list[int], dict[str, torch.Tensor] | None, str | None]:
        """The ids the model reads for `req`, its image tensors, and why it cannot run (`None`: it can)."""
        ids = list(req.prompt_ids) if req.prompt_ids is not None else self.tokenize(req.prompt)
        images = None
        if req.images:
            if self.images is None:
                return (
                    ids,
                    None,
                    f"the request has {len(req.images)} image(s) but the model has no image processor",
                )
            try:
                ids, images = self.images.expand(ids, req.images)
            except (ValueError, OSError) as e:
                return ids, None, f"images: {e}"
        if not ids:
            if self.bos_token_id is None:
                return ids, None, "empty prompt and the tokenizer has no BOS token"
            ids = [self.bos_token_id]
        if self.max_context is not None and len(ids) >= self.max_context:
            return (
                ids,
                None,
                (
                    f"the prompt has {len(ids)} tokens: no room left in the model's maximum context length "
                    f"of {self.max_context} tokens"
                ),
            )
        bad = [w for w in req.banned_words if not self.tokenize(w)]
        if bad:
            return ids, None, f"banned word {bad[0]!r} has no tokens"
        return ids, images, None

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

    def _generate_batch(self, rows: list[Row]) -> list[Completion]:
        width = max(len(r.ids) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            input_ids[b, width - len(r.ids) :] = torch.tensor(r.ids, dtype=torch.long)
            attention[b, width - len(r.ids) :] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)

        sampler = Sampler(rows) if any(r.generator is not None for r in rows) else None
        picker = LogprobPicker(rows, sampler) if any(r.request.logprobs for r in rows) else None
        # Order matters: raw log-probs before the bans, processed ones after bans, temperature and top-p.
        processors: list[LogitsProcessor] = [] if picker is None else picker.before_bans()
        bans = BanProcessor(rows, self.tokenize, self.eos_token_ids)
        if bans.active:
            processors.append(bans)
        if picker is not None:
            processors += picker.after_bans()
        if sampler is not None:
            processors.append(sampler)
        if picker is not None:
            processors.append(picker)
        stopper = RowStopper(self.decode, self.eos_token_ids, rows, width)
        config = GenerationConfig(
            max_new_tokens=max(r.max_new for r in rows),
            do_sample=False,  # our `Sampler` picks sampled tokens; `generate` keeps the one it left
            num_beams=1,
            temperature=None,
            top_p=None,
            top_k=None,
            use_cache=True,  # a trainer may have turned the model's cache off (gradient checkpointing)
            eos_token_id=self.eos_token_ids or None,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
        )
        with self._grad_mode():
            sequences = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=config,
                logits_processor=LogitsProcessorList(processors),
                stopping_criteria=StoppingCriteriaList([stopper]),
                **self._image_kwargs(rows),
            )
        if not isinstance(sequences, torch.Tensor):
            sequences = sequences.sequences
        sequences = sequences.cpu()
        logprobs = picker.result() if picker is not None else None
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

    def _image_kwargs(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        """The batch's image tensors (rows in order), on the model's device, floats in the model's dtype."""
        parts = [r.images for r in rows if r.images is not None]
        if not parts:
            return {}
        dtype = getattr(self.model, "dtype", None)
        return {
            k: v.to(self.device, dtype=dtype) if v.is_floating_point() and dtype else v.to(self.device)
            for k, v in concat(parts).items()
        }

    def _completion(self, row: Row, ids: list[int], logprobs: list[float] | None) -> Completion:
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
