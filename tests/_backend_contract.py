"""Checks of the backend contract that every backend must pass (imported by the backend tests).

Each check derives its right answer from the backend itself at temperature 0 (greedy decoding is
deterministic), so the same check applies to a real model, a server or a script: e.g. "with stop string `s`,
the text is the greedy text cut right after the first `s`, and `s` is kept".
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Sequence

from retrosearch.backends.base import Backend, Completion, GenerationRequest


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


def check_logprobs(backend: Backend, prompt: str) -> list[float]:
    """One finite, non-positive log-prob per sampled token; the greedy token is the most likely one."""
    c = greedy(backend, prompt, max_tokens=10, logprobs=True)
    assert c.logprobs is not None and len(c.logprobs) == c.num_tokens
    assert all(math.isfinite(x) and x <= 1e-4 for x in c.logprobs)
    # Greedy picks the argmax, so each chosen token has probability >= 1 / vocabulary at worst, and in practice
    # far more: the mean probability of a chat model's greedy tokens is high.
    assert sum(math.exp(x) for x in c.logprobs) / len(c.logprobs) > 0.3
    [[no]] = backend.generate([GenerationRequest(prompt=prompt, temperature=0, max_tokens=4)])
    assert no.logprobs is None
    return c.logprobs


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
