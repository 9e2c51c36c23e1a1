"""The backend contract checks run on the scripted and transformers backends (vLLM and OpenAI run the same ones).

The same check functions (tests/_backend_contract.py) run in test_backend_vllm.py and test_backend_openai.py,
so a semantic the scripted backend simulates (stop kept, bans, seeds, prompt ids, shapes) is the one the real
engines implement. Log-probs are recomputed from the model's own logits, so only a real model can pass them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _backend_contract import (
    check_banned_word,
    check_logprobs,
    check_logprobs_shape,
    check_prompt_ids,
    check_seed,
    check_shapes,
    check_stop_kept,
    model_logits,
    one_torch_thread,
)

from retrosearch.backends import ScriptContext, ScriptedBackend

STORY = (
    " Once upon a time, a small robot named Bolt lived in a quiet town by the sea. Every night Bolt counted"
    " the stars and wrote the numbers in a blue notebook, and every morning the numbers were different."
)
OTHER_STORIES = [
    " The sea was calm and the sky was full of light, so everybody went out to watch the waves roll in.",
    " In the old days there was no town at all, only sand, wind and birds that sang until the sun went down.",
]
PROMPTS = ["Tell me a story:", "Another story, please:", "A third one:"]
CHECKS = [check_shapes, check_stop_kept, check_banned_word, check_seed, check_prompt_ids, check_logprobs]
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def story_model(prompt: str, ctx: ScriptContext) -> list[str]:
    """Continues STORY from wherever the prompt's end leaves it (like a language model that memorised it)."""
    k = max((k for k in range(len(STORY) + 1) if prompt.endswith(STORY[:k])), default=0)
    return [STORY[k:], *OTHER_STORIES]


@pytest.fixture
def scripted() -> ScriptedBackend:
    return ScriptedBackend(story_model)


def test_story_model_continues_where_the_prompt_stops(scripted: ScriptedBackend) -> None:
    assert story_model("x:", None)[0] == STORY  # type: ignore[arg-type]
    assert story_model("x:" + STORY[:20], None)[0] == STORY[20:]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "check",
    [check_shapes, check_stop_kept, check_banned_word, check_seed, check_prompt_ids, check_logprobs_shape],
    ids=lambda f: f.__name__,
)
def test_scripted_backend_meets_the_contract(scripted: ScriptedBackend, check: object) -> None:
    if check is check_shapes:
        check_shapes(scripted, PROMPTS)
    elif check is check_banned_word:
        # Scripted tokens are words, so a ban is checked on whole words.
        check_banned_word(scripted, PROMPTS[0], token_level=False)
    elif check is check_seed:
        # The scripted RNG is keyed by (seed, sample, prompt), not seed + sample.
        check_seed(scripted, PROMPTS[0], seed_plus_i=False)
    else:
        check(scripted, PROMPTS[0])  # type: ignore[operator]


def test_the_logprob_check_fails_a_backend_without_real_logprobs(scripted: ScriptedBackend) -> None:
    """The scripted backend's constant log-probs are not a model's: the recomputing check must refuse them."""
    if not HAS_TORCH:
        pytest.skip("needs torch")
    import torch

    def uniform(ids: list[int]) -> torch.Tensor:  # a "model" whose every next token has probability 1/50
        return torch.zeros(len(ids), 50)

    with pytest.raises(AssertionError):
        check_logprobs(scripted, PROMPTS[0], uniform)


@pytest.fixture(scope="module")
def toy_backend() -> object:
    if not HAS_TORCH:
        pytest.skip("transformers is not installed")
    from retrosearch.backends.hf import TransformersBackend

    return TransformersBackend("toy-base", device="cpu")  # a shipped model, found by name


def toy_prompts(backend: object) -> list[str]:
    """Chat prompts of the toy world, opened half-way into the first thought (where the model is unsure)."""
    questions = ("What is 12 + 7?", "Compute 3 * (4 + 5).", "What is 100 - 37?")
    template = backend.apply_chat_template  # type: ignore[attr-defined]
    return [template([{"role": "user", "content": q}]) + "I need to find" for q in questions]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_transformers_backend_on_the_toy_model_meets_the_contract(toy_backend: object, check: object) -> None:
    prompts = toy_prompts(toy_backend)
    with one_torch_thread():
        if check is check_shapes:
            check_shapes(toy_backend, prompts)  # type: ignore[arg-type]
        elif check is check_logprobs:
            # Both modes, recomputed from a plain forward pass of the same weights.
            check_logprobs(toy_backend, prompts[0], model_logits(toy_backend.model))  # type: ignore[arg-type, attr-defined]
        else:
            # The retrained toy-base is near-certain how to go on with "3 * (4 + 5)"; "12 + 7" leaves it room.
            check(toy_backend, prompts[0])  # type: ignore[operator]


@pytest.fixture(scope="module")
def transformers_backend(smollm2_dir: Path) -> object:
    if not HAS_TORCH:
        pytest.skip("transformers is not installed")
    from retrosearch.backends.hf import TransformersBackend

    return TransformersBackend(smollm2_dir, dtype="float32", device="cpu")


@pytest.mark.slow
def test_transformers_logprobs_on_a_real_chat_model(transformers_backend: object) -> None:
    """Both modes on SmolLM2 (a real BPE chat model; its other semantics are tested in test_backend_hf.py)."""
    tok = transformers_backend.tokenizer  # type: ignore[attr-defined]
    messages = [{"role": "user", "content": "Write one sentence about the sea."}]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    with one_torch_thread():
        check_logprobs(transformers_backend, prompt, model_logits(transformers_backend.model))  # type: ignore[arg-type, attr-defined]
