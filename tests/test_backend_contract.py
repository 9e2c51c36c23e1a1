"""The backend contract checks run on the scripted and transformers backends (vLLM and OpenAI run the same ones).

The same check functions (tests/_backend_contract.py) run in test_backend_vllm.py and test_backend_openai.py,
so a semantic the scripted backend simulates (stop kept, bans, seeds, prompt ids, shapes, log-probs) is the one
the real engines implement.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _backend_contract import (
    check_banned_word,
    check_logprobs,
    check_prompt_ids,
    check_seed,
    check_shapes,
    check_stop_kept,
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
    [check_shapes, check_stop_kept, check_banned_word, check_seed, check_prompt_ids, check_logprobs],
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


@pytest.fixture(scope="module")
def transformers_backend(smollm2_dir: Path) -> object:
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed")
    from retrosearch.backends.hf import TransformersBackend

    return TransformersBackend(smollm2_dir, dtype="float32", device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize(
    "check",
    [check_shapes, check_stop_kept, check_banned_word, check_seed, check_prompt_ids, check_logprobs],
    ids=lambda f: f.__name__,
)
def test_transformers_backend_meets_the_contract(transformers_backend: object, check: object) -> None:
    tok = transformers_backend.tokenizer  # type: ignore[attr-defined]
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in (
            "What is the capital of France?",
            "Write one sentence about the sea.",
            "Name three colours.",
        )
    ]
    with one_torch_thread():
        check(transformers_backend, prompts if check is check_shapes else prompts[1])  # type: ignore[operator]
