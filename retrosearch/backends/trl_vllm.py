"""On-policy generation on GPUs: a backend over a TRL trainer's own vLLM (`trainer.vllm_generation`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from retrosearch.backends.base import Completion, GenerationRequest, apply_stop

__all__ = ["TRLVLLMBackend"]

#: The sampling settings one `vllm_generation.generate` call shares (it takes no per-prompt settings).
_Key = tuple[int, float, float, tuple[str, ...]]


def _gather_object(obj: list[Any]) -> list[Any]:
    from accelerate.utils import gather_object

    return gather_object(obj)


class TRLVLLMBackend:
    """Generates with TRL's vLLM (colocate or server mode), whose weights TRL syncs before each rollout batch.

    `VLLMGeneration.generate(prompts=token_ids, images, num_generations)` takes exact token ids and returns
    completion ids and (processed) log-probs, with sampling settings read from its attributes. This backend sets
    them per call (temperature, top-p, the most new tokens, stop strings through `generation_kwargs`) and puts
    them back afterwards. Two of TRL's rules shape it:

    - Every rank must call `generate` the same number of times (a collective gather or a TP all-gather happens
      inside). Each `generate` here first gathers every rank's sampling settings, then makes one call per
      setting any rank needs (sorted, the same list on every rank), a rank with no request for a setting sending
      a one-token dummy prompt. A rank whose rollouts are done calls `drain()`, which keeps answering the other
      ranks' rounds until none is left.
    - In server mode TRL keeps every `num_generations`-th gathered prompt and samples `num_generations` of each;
      so a request's `n` samples go out as `n` copies with `num_generations=n` (one sample each for the turns
      after the first, whose requests have `n=1`).

    A request's own `max_tokens` is honoured by cutting its completions (the call asks for the largest of the
    round); a stop string found in the text cuts the ids after the token that completes it, as the other
    backends do. Seeds and banned words are not supported by TRL's vLLM settings (a banned word is an error).

    Args:
        vllm_generation: The trainer's `vllm_generation` (`trl.generation.vllm_generation.VLLMGeneration`).
        tokenizer: The trainer's tokenizer (`processing_class`).
        gather: `gather_object` over the ranks (default: accelerate's; tests pass a fake).
    """

    name = "trl-vllm"

    def __init__(
        self,
        vllm_generation: Any,
        tokenizer: Any,
        *,
        gather: Callable[[list[Any]], list[Any]] | None = None,
    ) -> None:
        self.vg = vllm_generation
        self.tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        self.gather = gather or _gather_object
        eos = getattr(self.tokenizer, "eos_token_id", None)
        self.eos_token_ids: list[int] = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        self.dummy_ids = [self.eos_token_ids[0] if self.eos_token_ids else 0]
        self.rounds = 0  # collective rounds this rank has taken part in

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def apply_chat_template(self, messages: Sequence[dict[str, str]]) -> str:
        from retrosearch.backends.base import chat_prompt

        return chat_prompt(self.tokenizer, messages, name="the trained model")

    def _continuation(self, context: Sequence[int], ids: Sequence[int]) -> str:
        # A few context tokens keep a tokenizer's leading-space rules from changing the continuation's text.
        tail = list(context[-4:])
        return self.decode(tail + list(ids))[len(self.decode(tail)) :]

    # ------------------------------------------------------------------ generation
    @staticmethod
    def _key(req: GenerationRequest) -> _Key:
        if req.banned_words:
            raise ValueError("the TRL vLLM backend cannot ban words (TRL's vLLM settings have no bad_words)")
        # Log-probs are not part of it: TRL's vLLM always returns the sampled tokens' (`logprobs=0`).
        return (req.n, float(req.temperature), float(req.top_p), tuple(req.stop))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """One collective round: every rank's settings gathered, one `vllm_generation.generate` per setting."""
        groups: dict[_Key, list[int]] = {}
        for i, req in enumerate(requests):
            if req.prompt_ids is None:
                raise ValueError("the TRL vLLM backend needs exact prompt ids (GenerationRequest.prompt_ids)")
            groups.setdefault(self._key(req), []).append(i)
        most = {k: max(requests[i].max_tokens for i in rows) for k, rows in groups.items()}
        outputs = self._round(True, most, lambda k: [list(requests[i].prompt_ids or ()) for i in groups[k]])
        answers: list[list[Completion]] = [[] for _ in requests]
        for key, rows in groups.items():
            ids, lps = outputs[key]
            n = key[0]
            for j, i in enumerate(rows):
                req = requests[i]
                for s in range(n):
                    r = j * n + s
                    answers[i].append(self._completion(req, ids[r], lps[r] if lps is not None else None))
        return answers

    def drain(self) -> int:
        """Answer the other ranks' rounds until no rank has requests left; returns how many rounds it joined."""
        joined = 0
        while self._round(False, {}, lambda k: []) is not None:
            joined += 1
        return joined

    def _round(
        self, active: bool, most: dict[_Key, int], prompts_for: Callable[[_Key], list[list[int]]]
    ) -> dict[_Key, tuple[list[list[int]], list[Any] | None]] | None:
        self.rounds += 1
        everyone = self.gather([(active, sorted(most.items()))])
        if not any(a for a, _ in everyone):
            return None
        needed: dict[_Key, int] = {}
        for _, items in everyone:
            for k, m in items:
                k = (*k[:3], tuple(k[3]))  # a gathered key may come back with lists
                needed[k] = max(needed.get(k, 0), m)
        out = {}
        for key in sorted(needed, key=repr):
            n = key[0]
            mine = prompts_for(key) if key in most else []
            rows = [p for p in mine for _ in range(n)] or [list(self.dummy_ids)] * n
            ids, lps = self._call(key, needed[key], rows)
            out[key] = (ids, lps) if mine else ([], None)
        return out

    def _call(self, key: _Key, max_tokens: int, prompts: list[list[int]]) -> tuple[list[list[int]], Any]:
        n, temperature, top_p, stop = key
        vg = self.vg
        saved = (vg.temperature, vg.top_p, vg.max_completion_length, vg.generation_kwargs)
        kwargs = dict(saved[3] or {})
        if stop:
            kwargs.update(stop=list(stop), include_stop_str_in_output=True)
        # vLLM treats temperature 0 as greedy; TRL passes it through as given.
        vg.temperature, vg.top_p, vg.max_completion_length, vg.generation_kwargs = (
            temperature,
            top_p,
            max_tokens,
            kwargs,
        )
        try:
            _, completion_ids, logprobs, logprob_ids = vg.generate(
                prompts=prompts, images=None, num_generations=n
            )
        finally:
            vg.temperature, vg.top_p, vg.max_completion_length, vg.generation_kwargs = saved
        if logprobs is None:
            return [list(c) for c in completion_ids], None
        sampled = []
        for row, (ids, lp_row) in enumerate(zip(completion_ids, logprobs)):
            tok_row = logprob_ids[row] if logprob_ids is not None else None
            vals = []
            for t, (tid, entries) in enumerate(zip(ids, lp_row)):
                # With logprobs=N > 0 the sampled token may not rank first: pick its own entry.
                k = tok_row[t].index(tid) if tok_row is not None and tid in tok_row[t] else 0
                v = entries[k] if isinstance(entries, (list, tuple)) else entries
                vals.append(float("nan") if v is None else float(v))
            sampled.append(vals)
        return [list(c) for c in completion_ids], sampled

    def _completion(self, req: GenerationRequest, ids: list[int], lps: list[float] | None) -> Completion:
        context = list(req.prompt_ids or ())
        ids = list(ids)[: req.max_tokens]
        eos = bool(ids) and ids[-1] in self.eos_token_ids
        body = ids[:-1] if eos else ids
        text = self._continuation(context, body)
        cut, stop = apply_stop(text, req.stop)
        if stop is not None:
            k = next(
                (
                    m
                    for m in range(1, len(body) + 1)
                    if apply_stop(self._continuation(context, body[:m]), req.stop)[1]
                ),
                len(body),
            )
            ids, text, finish = body[:k], cut, "stop"
        elif eos:
            finish = "eos"
        elif len(ids) >= req.max_tokens:
            finish = "length"
        else:
            finish = "eos"  # vLLM ended it (e.g. the model's length limit) without a stop or an EOS id
        # A token vLLM could not score keeps NaN: TRL neutralises it in the importance ratio.
        logprobs = list((lps or [math.nan] * len(ids))[: len(ids)]) if req.logprobs else None
        return Completion(text=text, token_ids=ids, finish_reason=finish, stop_reason=stop, logprobs=logprobs)
