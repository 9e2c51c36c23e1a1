"""The transformers backend's decoding steps as logits processors: bans, seeded sampling, log-probs and stops."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria
from transformers.generation.logits_process import NoBadWordsLogitsProcessor

from retrosearch.types import GenerationRequest


@dataclass
class Row:
    """One sequence of a batch: sample `sample` of request `req`, with at most `max_new` new tokens.

    Attributes:
        images: The model's image inputs for this row (`pixel_values`, ...), when its request has images.
    """

    req: int
    sample: int
    ids: list[int]
    request: GenerationRequest
    generator: torch.Generator | None
    max_new: int = 0
    images: dict[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if not self.max_new:
            self.max_new = self.request.max_tokens


class BanProcessor(LogitsProcessor):
    """Applies each row's banned words (as token sequences) with transformers' bad-words processor."""

    def __init__(
        self, rows: list[Row], tokenize: Callable[[str], list[int]], eos_token_ids: list[int]
    ) -> None:
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


class Sampler(LogitsProcessor):
    """Temperature, top-p and one draw per sampled row, by inverse CDF (after the bans).

    Each sampled row draws one uniform number per step from its own CPU generator; the token is found on the
    model's device (`searchsorted` in the cumulative distribution), so only one float per row crosses devices
    and the same seed gives the same samples whatever else is in the batch. Returns scores that are `-inf`
    everywhere but at the drawn token, so `generate`'s greedy step takes it; greedy rows pass through.
    `logprobs` holds each sampled row's log-probability of its draw under the distribution it was drawn from.
    """

    def __init__(self, rows: list[Row]) -> None:
        self.index = [b for b, r in enumerate(rows) if r.generator is not None]
        self.generators = [rows[b].generator for b in self.index]
        self.temperature = torch.tensor([rows[b].request.temperature for b in self.index])[:, None]
        self.top_p = torch.tensor([rows[b].request.top_p for b in self.index])[:, None]
        self.any_top_p = bool((self.top_p < 1.0).any())
        self.logprobs: torch.Tensor | None = None

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
        # The nucleus is not renormalised above: its mass `cdf[:, -1]` is divided out here.
        self.logprobs = torch.log(probs.gather(-1, token).squeeze(1) / cdf[:, -1])
        if self.any_top_p:
            token = order.gather(-1, token)
        out = scores.clone()
        out[idx] = float("-inf")
        out[idx[:, None], token] = 0.0
        return out


class Snapshot(LogitsProcessor):
    """Keeps the log-softmax of some rows' scores as they are at its place in the chain."""

    def __init__(self, index: Sequence[int]) -> None:
        self.index = torch.tensor(list(index), dtype=torch.long)
        self.values: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.values = torch.log_softmax(scores[self.index.to(scores.device)].float(), dim=-1)
        return scores


class LogprobPicker(LogitsProcessor):
    """Last in the chain: each row's log-probability of the token this step takes, in its request's mode.

    `"raw"` rows read a snapshot taken before the bans (the model's own log-softmax); `"processed"` rows read the
    distribution actually sampled from: the sampler's (after bans, temperature and top-p) or, for greedy rows, a
    snapshot after the bans (temperature counts as 1 there, as in vLLM). The step's token is the argmax of the
    final scores, which is what `generate`'s greedy step takes (the sampler leaves only its draw finite).
    """

    def __init__(self, rows: list[Row], sampler: Sampler | None) -> None:
        modes = [r.request.logprobs_mode if r.request.logprobs else None for r in rows]
        raw = [b for b, m in enumerate(modes) if m == "raw"]
        greedy = [b for b, m in enumerate(modes) if m == "processed" and rows[b].generator is None]
        self.raw = Snapshot(raw) if raw else None
        self.greedy = Snapshot(greedy) if greedy else None
        self.sampler = sampler
        positions = (
            [] if sampler is None else [k for k, b in enumerate(sampler.index) if modes[b] == "processed"]
        )
        self.sampled = torch.tensor(positions, dtype=torch.long)
        self.sampled_rows = torch.tensor(
            [sampler.index[k] for k in positions] if sampler else [], dtype=torch.long
        )
        self.steps: list[torch.Tensor] = []

    def before_bans(self) -> list[LogitsProcessor]:
        return [self.raw] if self.raw is not None else []

    def after_bans(self) -> list[LogitsProcessor]:
        return [self.greedy] if self.greedy is not None else []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        device = scores.device
        token = scores.argmax(-1)
        out = torch.full(token.shape, float("nan"), device=device)
        for snap in (self.raw, self.greedy):
            if snap is not None and snap.values is not None:
                idx = snap.index.to(device)
                out[idx] = snap.values.gather(1, token[idx][:, None]).squeeze(1)
        if len(self.sampled) and self.sampler is not None and self.sampler.logprobs is not None:
            out[self.sampled_rows.to(device)] = self.sampler.logprobs[self.sampled.to(device)]
        self.steps.append(out)
        return scores

    def result(self) -> torch.Tensor:
        """`(batch, steps)` log-probs on the CPU (`nan` for rows that did not ask)."""
        return torch.stack(self.steps, dim=1).cpu()


class RowStopper(StoppingCriteria):
    """Per-row end of generation: max tokens, EOS, or a stop string in the row's new text.

    Records each row's generated length when it first ends (`lengths`), so padding written after a row
    finished is never read back.
    """

    def __init__(self, decode: Callable[..., str], eos: Sequence[int], rows: list[Row], width: int) -> None:
        self.decode = decode
        self.rows = rows
        self.width = width
        self.eos = set(eos)
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
                text = self.decode(tail, skip_special_tokens=True)
                end = any(s and s in text for s in req.stop)
            if end:
                self.done[b] = True
                self.lengths[b] = min(steps, r.max_new)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)
