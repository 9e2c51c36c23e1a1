"""A deterministic, text-driven backend for tests and simulations."""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from retrosearch.backends.base import Completion, GenerationRequest, apply_stop
from retrosearch.text import Tokenizer, decode, encode

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class ScriptContext:
    """What a script sees besides the prompt."""

    request: GenerationRequest
    sample: int
    rng: random.Random


#: A script maps a prompt to the continuations the "model" would write, most likely first.
Script = Callable[[str, ScriptContext], "str | Sequence[str] | None"]


class ScriptedBackend:
    """A fake model whose continuations are given by a script: for tests and simulations.

    For each sample the script proposes continuations in order of preference. Candidates that contain a
    banned word (at a word boundary, before the first stop string) are dropped, as a model with those words
    banned could not write them. At temperature 0 the first allowed candidate is taken; above it, one is drawn
    with an RNG seeded by the request's seed, the sample index and the prompt, so runs repeat exactly. Stop
    strings (kept) and `max_tokens` are then applied. Tokens are words, punctuation marks and whitespace runs,
    with ids from a vocabulary grown on the fly (no merges: tokenizing joined text gives the joined ids), or,
    with `tokenizer`, a real tokenizer's (which may merge across span boundaries, as BPE merges `"\n" + "\n"`).
    A request's `prompt_ids`, when given, are what the script reads (decoded), never `prompt`.

    Args:
        script: A callable `(prompt, ScriptContext) -> str | list[str] | None`, or a mapping from prompt
            suffix to continuation(s) (the longest matching suffix wins).
        default: Continuation when a mapping has no matching suffix (`None`: the model writes nothing, EOS).
        latency_s: Fake time per `generate` call (one batched forward in a real engine).
        latency_per_token_s: Fake time per generated token of the longest sample in the call.
        tokenizer: A real tokenizer (a `tokenizers.Tokenizer` or a Hugging Face tokenizer: anything with
            `encode` and `decode`); a continuation's ids are its text tokenized on its own.
    """

    name = "scripted"

    def __init__(
        self,
        script: Script | Mapping[str, str | Sequence[str]],
        *,
        default: str | Sequence[str] | None = None,
        latency_s: float = 0.0,
        latency_per_token_s: float = 0.0,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        if isinstance(script, Mapping):
            rules = dict(script)
            keys = sorted(rules, key=len, reverse=True)

            def by_suffix(prompt: str, ctx: ScriptContext) -> str | Sequence[str] | None:
                for k in keys:
                    if prompt.endswith(k):
                        return rules[k]
                return default

            self.script: Script = by_suffix
        elif callable(script):
            self.script = script
        else:
            raise TypeError(f"script must be a callable or a mapping, got {type(script).__name__}")
        self.latency_s = latency_s
        self.latency_per_token_s = latency_per_token_s
        if tokenizer is not None and not (hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode")):
            raise TypeError(f"tokenizer must have encode and decode, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.vocab: dict[str, int] = {}
        self._pieces: list[str] = []  # id -> piece
        self._lock = threading.Lock()
        self.calls = 0

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        if self.tokenizer is not None:
            return encode(text, self.tokenizer)
        vocab = self.vocab
        with self._lock:  # ids are handed out in order: safe for backends that sample in other threads
            return [vocab.setdefault(p, len(vocab)) for p in _TOKEN.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        if self.tokenizer is not None:
            return decode(ids, self.tokenizer)
        if len(self._pieces) != len(self.vocab):
            with self._lock:
                self._pieces = list(self.vocab)  # ids are given in insertion order
        return "".join(self._pieces[i] for i in ids)

    # -------------------------------------------------------------- generation
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.calls += 1
        out = [[self._sample(r, j) for j in range(r.n)] for r in requests]
        longest = max((c.num_tokens for cs in out for c in cs), default=0)
        delay = self.latency_s + self.latency_per_token_s * longest
        if delay > 0:
            time.sleep(delay)
        return out

    def _sample(self, req: GenerationRequest, j: int) -> Completion:
        prompt = req.prompt if req.prompt_ids is None else self.decode(req.prompt_ids)
        key = hashlib.sha256(f"{req.seed}|{j}|{prompt}".encode()).digest()
        rng = random.Random(int.from_bytes(key[:8], "little"))
        proposed = self.script(prompt, ScriptContext(req, j, rng))
        if proposed is None:
            candidates: list[str] = []
        elif isinstance(proposed, str):
            candidates = [proposed]
        else:
            candidates = list(proposed)
        allowed = [
            c for c in candidates if not _contains_banned(apply_stop(c, req.stop)[0], req.banned_words)
        ]
        if not allowed:
            return Completion(text="", token_ids=[], finish_reason="eos")
        text = allowed[0] if req.temperature == 0 or len(allowed) == 1 else rng.choice(allowed)
        text, stop = apply_stop(text, req.stop)
        ids = self.tokenize(text)
        finish = "stop" if stop is not None else "eos"
        if len(ids) > req.max_tokens:
            ids, finish, stop = ids[: req.max_tokens], "length", None
            text = self.decode(ids)
        logprobs = [-0.1] * len(ids) if req.logprobs else None
        return Completion(text=text, token_ids=ids, finish_reason=finish, stop_reason=stop, logprobs=logprobs)


def _contains_banned(text: str, banned: Sequence[str]) -> bool:
    for w in banned:
        w = w.strip()
        if w and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text):
            return True
    return False
