"""Checks of the backend contract that every backend must pass (imported by the backend tests).

Each check derives its right answer from the backend itself at temperature 0 (greedy decoding is
deterministic), so the same check applies to a real model, a server or a script: e.g. "with stop string `s`,
the text is the greedy text cut right after the first `s`, and `s` is kept".
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from retrosearch.backends.base import Backend, Completion, GenerationRequest

if TYPE_CHECKING:
    import torch


def greedy(backend: Backend, prompt: str, max_tokens: int = 24, **kw: object) -> Completion:
    [[c]] = backend.generate([GenerationRequest(prompt=prompt, temperature=0, max_tokens=max_tokens, **kw)])
    assert c.finish_reason != "error", c.error
    return c


def check_shapes(backend: Backend, prompts: Sequence[str]) -> None:
    """One list per request, in order, with `n` completions each, none longer than `max_tokens`."""
    requests = [
        GenerationRequest(prompt=p, n=n, temperature=1.0, max_tokens=m, seed=3)
        for p, n, m in zip(prompts, (3, 1, 2), (6, 12, 1))
    ]
    out = backend.generate(requests)
    assert [len(cs) for cs in out] == [r.n for r in requests]
    for r, cs in zip(requests, out):
        for c in cs:
            assert c.finish_reason in ("length", "eos"), (c.finish_reason, c.error)
            assert 1 <= c.num_tokens <= r.max_tokens
            assert (c.num_tokens == r.max_tokens) == (c.finish_reason == "length")
            assert c.stop_reason is None and c.logprobs is None and c.error is None
    # A request alone and inside a wave gives the same greedy text (no cross-talk between requests).
    alone = greedy(backend, prompts[1], max_tokens=10)
    [[a], [b]] = backend.generate(
        [GenerationRequest(prompt=p, temperature=0, max_tokens=10) for p in prompts[:2]]
    )
    assert b.text == alone.text and b.token_ids == alone.token_ids
    assert backend.generate([]) == []


def pick_stop(text: str) -> str:
    """A stop string that greedy decoding writes in the middle of `text`: its third word with its space."""
    words = re.findall(r" \w+", text)
    assert len(words) >= 3, f"greedy text too short to pick a stop string from: {text!r}"
    return words[2]


def check_stop_kept(backend: Backend, prompt: str) -> None:
    """With a stop string, the text is the free text cut right after the first occurrence, stop kept."""
    free = greedy(backend, prompt, max_tokens=32)
    stop = pick_stop(free.text)
    cut = free.text[: free.text.index(stop) + len(stop)]
    c = greedy(backend, prompt, max_tokens=32, stop=("never-written-stop-string", stop))
    assert c.text == cut
    assert (c.finish_reason, c.stop_reason) == ("stop", stop)
    assert c.token_ids == free.token_ids[: c.num_tokens]
    assert c.num_tokens < free.num_tokens
    # A stop string that never appears changes nothing.
    same = greedy(backend, prompt, max_tokens=32, stop=("never-written-stop-string",))
    assert same.text == free.text and same.finish_reason == free.finish_reason


def check_banned_word(backend: Backend, prompt: str, *, token_level: bool = True) -> None:
    """A word the model writes first when free does not appear once banned (both spacing variants listed).

    Args:
        token_level: Check the ban as exact token sequences (real tokenizers: what vLLM's `bad_words` means);
            otherwise as whole words (the scripted backend).
    """
    free = greedy(backend, prompt, max_tokens=16)
    word = re.search(r"\w+", free.text).group(0)
    banned = (word, " " + word)
    c = greedy(backend, prompt, max_tokens=16, banned_words=banned)
    assert c.text != free.text
    if token_level:
        for variant in banned:
            seq = backend.tokenize(variant)
            assert seq, variant
            windows = [tuple(c.token_ids[i : i + len(seq)]) for i in range(c.num_tokens - len(seq) + 1)]
            assert tuple(seq) not in windows, f"banned {variant!r} was generated: {c.text!r}"
    else:
        assert not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", c.text), c.text


def check_seed(backend: Backend, prompt: str, *, seed_plus_i: bool = True) -> None:
    """Same seed, same samples; another seed, other samples; sample `i` of seed `s` is sample 0 of `s + i`.

    Args:
        seed_plus_i: Check the last clause (backends that seed each sample: vLLM, transformers).
    """

    def sample(seed: int, n: int) -> list[list[int]]:
        [cs] = backend.generate(
            [GenerationRequest(prompt=prompt, n=n, temperature=1.0, max_tokens=12, seed=seed)]
        )
        assert all(c.finish_reason != "error" for c in cs)
        return [c.token_ids for c in cs]

    first = sample(1234, 2)
    assert sample(1234, 2) == first
    assert sample(99, 2) != first
    assert first[0] != first[1]
    if seed_plus_i:
        assert sample(1235, 1) == [first[1]]


def check_prompt_ids(backend: Backend, prompt: str) -> None:
    """Feeding the prompt's token ids gives what feeding its text gives."""
    ids = tuple(backend.tokenize(prompt))
    by_text = greedy(backend, prompt, max_tokens=12)
    by_ids = greedy(backend, "(informative only)", max_tokens=12, prompt_ids=ids)
    assert by_ids.token_ids == by_text.token_ids and by_ids.text == by_text.text
    # Continuing from prompt + completion ids gives the greedy continuation's next tokens.
    longer = greedy(backend, prompt, max_tokens=20)
    rest = greedy(backend, "", max_tokens=8, prompt_ids=ids + tuple(by_text.token_ids))
    assert longer.token_ids[12:20] == rest.token_ids[: len(longer.token_ids[12:20])]


def check_logprobs_shape(backend: Backend, prompt: str) -> list[float]:
    """One finite, non-positive log-prob per sampled token when asked for; none when not.

    For a backend without a model to recompute them from (the scripted one); real models run `check_logprobs`.
    """
    c = greedy(backend, prompt, max_tokens=10, logprobs=True)
    assert c.logprobs is not None and len(c.logprobs) == c.num_tokens
    assert all(math.isfinite(x) and x <= 1e-4 for x in c.logprobs)
    [[no]] = backend.generate([GenerationRequest(prompt=prompt, temperature=0, max_tokens=4)])
    assert no.logprobs is None
    return c.logprobs


#: Sampling settings under which "processed" and "raw" log-probs differ (temperature and a nucleus).
SAMPLED = {"n": 2, "temperature": 0.7, "top_p": 0.8, "seed": 5}


def expected_logprobs(
    logits: torch.Tensor, tokens: Sequence[int], mode: str, temperature: float, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's log-prob recomputed from the model's next-token `logits` (`(len(tokens), vocab)`).

    `"raw"`: log-softmax of the logits. `"processed"`: log-softmax of `logits / temperature` over the nucleus
    (the most likely tokens until their mass reaches `top_p`; the top token always stays); at temperature 0, the
    raw log-softmax. Also returns, per step, whether the nucleus is clear-cut (no token's mass of more likely
    tokens within 1e-3 of `top_p`): only there can two implementations be held to agree on it.
    """
    import torch

    logits = logits.double()
    idx = torch.tensor(list(tokens))[:, None]
    clear = torch.ones(len(tokens), dtype=torch.bool)
    if mode == "raw" or temperature == 0:
        return torch.log_softmax(logits, -1).gather(1, idx).squeeze(1), clear
    z = logits / temperature
    if top_p < 1:
        probs, order = torch.sort(torch.softmax(z, -1), -1, descending=True)
        before = torch.cumsum(probs, -1) - probs
        clear = ((before - top_p).abs() > 1e-3).all(-1)
        drop = torch.zeros_like(z, dtype=torch.bool).scatter(1, order, before >= top_p)
        z = z.masked_fill(drop, float("-inf"))
    return torch.log_softmax(z, -1).gather(1, idx).squeeze(1), clear


def check_logprobs(
    backend: Backend,
    prompt: str,
    logits_of: Callable[[Sequence[int]], torch.Tensor],
    *,
    modes: Sequence[str] = ("processed", "raw"),
    atol: float = 1e-4,
) -> None:
    """Log-probs in each mode equal what the model's own logits give, greedy and sampled with temperature/top-p.

    Args:
        logits_of: A reference forward pass of the same model: token ids -> next-token logits at every
            position, `(len(ids), vocab)`.
        modes: The modes the backend serves (an engine-wide vLLM serves one).
        atol: How far the backend may be from the reference (another implementation of the same model: ~2e-3).
    """
    import torch

    ids = tuple(backend.tokenize(prompt))
    requests = [
        GenerationRequest(prompt, prompt_ids=ids, max_tokens=8, logprobs=True, logprobs_mode=mode, **kw)
        for mode in modes
        for kw in ({"temperature": 0.0}, SAMPLED)
    ]
    out = backend.generate(
        [*requests, GenerationRequest(prompt, prompt_ids=ids, temperature=0, max_tokens=4)]
    )
    assert out[-1][0].logprobs is None  # not asked, not given
    gaps = []
    for r, cs in zip(requests, out):
        for c in cs:
            assert c.finish_reason != "error", c.error
            assert c.logprobs is not None and len(c.logprobs) == c.num_tokens > 0
            logits = logits_of(list(ids) + c.token_ids)[len(ids) - 1 : -1]
            want, clear = expected_logprobs(logits, c.token_ids, r.logprobs_mode, r.temperature, r.top_p)
            got = torch.tensor(c.logprobs, dtype=torch.float64)
            assert torch.isfinite(want[clear]).all(), (
                "a sampled token lies outside the distribution sampled from"
            )
            assert torch.allclose(got[clear], want[clear], atol=atol), (
                r.logprobs_mode,
                got.tolist(),
                want.tolist(),
            )
            if r.temperature == 0:
                # Greedy takes the argmax: its raw log-prob is the best one at every step.
                best = torch.log_softmax(logits.double(), -1).max(-1).values
                assert torch.allclose(got, best, atol=atol), (got.tolist(), best.tolist())
            else:
                raw, _ = expected_logprobs(logits, c.token_ids, "raw", 1.0, 1.0)
                gaps.append((want - raw).abs().max().item())
    if "processed" in modes:
        # The sampled distribution differs from the raw one: a backend that returns raw values fails above.
        assert max(gaps) > 0.05, gaps


def check_logprobs_mode_refused(backend: Backend, prompt: str, mode: str) -> None:
    """A request for a log-prob mode the backend does not serve fails alone, with an error that names the mode."""
    ok = GenerationRequest(prompt, temperature=0, max_tokens=4)
    bad = GenerationRequest(prompt, temperature=0, max_tokens=4, logprobs=True, logprobs_mode=mode)
    [[a], [refused], [b]] = backend.generate([ok, bad, ok])
    assert refused.finish_reason == "error" and mode in refused.error and "logprobs_mode" in refused.error
    assert a.finish_reason != "error" and a.token_ids == b.token_ids


def model_logits(model: object) -> Callable[[Sequence[int]], torch.Tensor]:
    """A reference forward pass of a `transformers` model: ids -> next-token logits `(len(ids), vocab)`."""
    import torch

    def logits_of(ids: Sequence[int]) -> torch.Tensor:
        with torch.no_grad():
            x = torch.tensor([list(ids)], device=model.device)  # type: ignore[attr-defined]
            return model(x).logits[0].float().cpu()  # type: ignore[operator]

    return logits_of


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: the engine's worker holds a core, and two OpenMP threads on an oversubscribed
    2-core machine made transformers' generation ~13x slower here (200 s instead of 16 s for 3 x 32 tokens)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
