"""TransformersBackend on a real model (SmolLM2-135M-Instruct): the backend contract, end to end."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the transformers backend needs torch (pip install -e '.[hf]')")
pytest.importorskip(
    "transformers", reason="the transformers backend needs transformers (pip install -e '.[hf]')"
)

from _backend_contract import one_torch_thread  # noqa: E402

from retrosearch.backends.base import Backend, GenerationRequest  # noqa: E402
from retrosearch.backends.hf import TransformersBackend, dtype_kwargs  # noqa: E402

QUESTION = "What is the capital of France?"


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def backend(smollm2_dir) -> TransformersBackend:
    # float32: faster than bf16 on CPUs without bf16 units, and batch-invariant enough for exact greedy checks.
    return TransformersBackend(smollm2_dir, dtype="float32", device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def chat_prompt(backend) -> str:
    return backend.apply_chat_template([{"role": "user", "content": QUESTION}])


@pytest.fixture(scope="module")
def answer(backend, chat_prompt):
    """The model's greedy answer to the chat prompt (it ends on EOS within 16 tokens)."""
    return backend.generate([greedy(chat_prompt, max_tokens=16)])[0][0]


def greedy(prompt: str = "", **kw) -> GenerationRequest:
    return GenerationRequest(prompt, temperature=0.0, **kw)


def test_is_a_backend_and_tokenizes_without_special_tokens(backend):
    assert isinstance(backend, Backend)
    assert backend.name == "transformers"
    ids = backend.tokenize("Hello world")
    assert ids and backend.bos_token_id not in ids
    assert backend.decode(ids) == "Hello world"
    assert backend.tokenize("") == []


def test_chat_template_is_applied_and_answered(backend, chat_prompt, answer):
    assert chat_prompt.startswith("<|im_start|>system\n")
    assert f"<|im_start|>user\n{QUESTION}<|im_end|>\n" in chat_prompt
    assert chat_prompt.endswith("<|im_start|>assistant\n")
    no_gen = backend.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=False)
    assert not no_gen.endswith("<|im_start|>assistant\n")
    c = answer
    assert c.text == "The capital of France is Paris."
    # The answer ends on <|im_end|>: kept in the ids (with its log-prob), not in the text.
    assert c.finish_reason == "eos" and c.stop_reason is None
    assert c.token_ids[-1] in backend.eos_token_ids
    assert backend.decode(c.token_ids, skip_special_tokens=True) == c.text


def test_result_shape_n_completions_per_request_in_order(backend, chat_prompt):
    requests = [
        GenerationRequest(chat_prompt, n=3, temperature=1.0, seed=0, max_tokens=4),
        greedy("Once upon a time", n=2, max_tokens=4),
        greedy("The sky is", max_tokens=4),
    ]
    out = backend.generate(requests)
    assert [len(cs) for cs in out] == [3, 2, 1]
    assert out[1][0].token_ids == out[1][1].token_ids  # greedy samples are identical
    assert out[1][0] is not out[1][1]
    # Each request's completions belong to it: the same requests alone give the same greedy answers.
    assert out[2][0].token_ids == backend.generate([requests[2]])[0][0].token_ids
    assert backend.generate([]) == []


def test_max_tokens_gives_length(backend):
    [[c]] = backend.generate([greedy("Once upon a time", max_tokens=5)])
    assert c.finish_reason == "length" and c.stop_reason is None
    assert c.num_tokens == 5
    assert backend.decode(c.token_ids) == c.text


def test_stop_string_is_kept_and_ends_generation(backend, chat_prompt, answer):
    free = answer
    assert " is" in free.text and not free.text.endswith(" is")
    [[c]] = backend.generate([greedy(chat_prompt, max_tokens=16, stop=(" is", "zzz"))])
    assert c.finish_reason == "stop" and c.stop_reason == " is"
    assert c.text == free.text[: free.text.index(" is") + 3] == "The capital of France is"
    # The ids end with the token that completes the stop string: they decode to the text (here exactly).
    assert backend.decode(c.token_ids).startswith(c.text)
    assert " is" not in backend.decode(c.token_ids[:-1])
    assert c.token_ids == free.token_ids[: len(c.token_ids)]


def test_earliest_stop_wins_and_stop_inside_a_token_is_cut(backend):
    [[free]] = backend.generate([greedy("Once upon a time", max_tokens=12)])
    text = free.text  # ", the city of Nova Haven was a thriving metropolis, with ..."
    assert text.startswith(", the city of")
    [[c]] = backend.generate([greedy("Once upon a time", max_tokens=12, stop=("city", "the"))])
    assert c.text == ", the" and c.stop_reason == "the"
    # "cit" ends inside the token " city": the text is cut right after the stop, the ids keep that whole token.
    [[c]] = backend.generate([greedy("Once upon a time", max_tokens=12, stop=("cit",))])
    assert c.text == ", the cit" and c.finish_reason == "stop"
    assert backend.decode(c.token_ids) == ", the city"


def test_banned_word_never_appears(backend, chat_prompt, answer):
    ban = (" Paris", "Paris")  # every variant to ban is listed, as with vLLM's bad_words
    assert "Paris" in answer.text
    [[banned]] = backend.generate([greedy(chat_prompt, max_tokens=10, banned_words=ban)])
    assert "Paris" not in banned.text
    assert banned.text.startswith("The capital of France is")
    request = GenerationRequest(chat_prompt, n=2, temperature=1.0, seed=3, max_tokens=8, banned_words=ban)
    assert all("Paris" not in c.text for c in backend.generate([request])[0])


def test_greedy_batch_equals_one_by_one(backend, chat_prompt):
    # Prompts of very different lengths, so that left padding matters.
    requests = [
        greedy("The sky is", max_tokens=6),
        greedy(chat_prompt, max_tokens=6),
        greedy("def fibonacci(n):", max_tokens=6),
    ]
    batched = backend.generate(requests)
    alone = [backend.generate([r])[0] for r in requests]
    assert [c[0].token_ids for c in batched] == [c[0].token_ids for c in alone]
    assert [c[0].text for c in batched] == [c[0].text for c in alone]


def test_seed_makes_sampling_repeatable(backend):
    def sample(seed):
        req = GenerationRequest("Once upon a time", n=2, temperature=1.0, seed=seed, max_tokens=6)
        return [c.token_ids for c in backend.generate([req])[0]]

    first = sample(0)
    assert sample(0) == first
    assert sample(100) != first
    assert len({tuple(t) for t in first}) > 1  # the samples of one request differ


def test_prompt_ids_path_equals_text_path(backend, chat_prompt, answer):
    ids = backend.tokenize(chat_prompt)
    request = greedy("ignored when prompt_ids are given", prompt_ids=ids, max_tokens=16)
    [[by_ids]] = backend.generate([request])
    assert by_ids.token_ids == answer.token_ids and by_ids.text == answer.text


def test_banned_tokens_leave_raw_logprobs_and_renormalise_processed_ones(backend, chat_prompt):
    """Raw log-probs are the model's (before bans); processed ones are of what was sampled from (after them)."""
    ban = (" Paris", "Paris")
    ids = backend.tokenize(chat_prompt)
    [[raw], [processed]] = backend.generate(
        [
            greedy(chat_prompt, max_tokens=10, banned_words=ban, logprobs=True, logprobs_mode=m)
            for m in ("raw", "processed")
        ]
    )
    assert raw.token_ids == processed.token_ids and "Paris" not in raw.text
    with torch.inference_mode():
        logits = backend.model(torch.tensor([ids + raw.token_ids])).logits[0, len(ids) - 1 : -1].float()
    chosen = torch.tensor(raw.token_ids)[:, None]
    expected_raw = torch.log_softmax(logits, -1).gather(1, chosen).squeeze(1)
    masked = logits.clone()
    for word in ban:  # single-token words: banned at every step
        [token] = backend.tokenize(word)
        masked[:, token] = float("-inf")
    expected_processed = torch.log_softmax(masked, -1).gather(1, chosen).squeeze(1)
    assert torch.allclose(torch.tensor(raw.logprobs), expected_raw, atol=1e-4)
    assert torch.allclose(torch.tensor(processed.logprobs), expected_processed, atol=1e-4)
    # Where the model wanted " Paris", the ban moved mass to the other tokens: only the processed value shows it.
    assert (torch.tensor(processed.logprobs) - torch.tensor(raw.logprobs)).max() > 0.5


def test_trust_remote_code_is_off_by_default_and_passed_through(backend, smollm2_dir, monkeypatch):
    import retrosearch.backends.hf as hf

    seen = []

    def spy(loaded):
        # Record what the loader is asked, hand back the already loaded object (no second load).
        def load(*args, **kwargs):
            seen.append(kwargs.get("trust_remote_code", "absent"))
            return loaded

        return load

    monkeypatch.setattr(hf.AutoModelForCausalLM, "from_pretrained", spy(backend.model))
    monkeypatch.setattr(hf.AutoTokenizer, "from_pretrained", spy(backend.tokenizer))
    b = TransformersBackend(smollm2_dir, device="cpu")
    assert seen == [False, False] and b.trust_remote_code is False
    TransformersBackend(smollm2_dir, device="cpu", trust_remote_code=True)
    assert seen[2:] == [True, True]


def test_loaded_model_and_bad_arguments(backend):
    b = TransformersBackend(backend.model, backend.tokenizer)
    assert b.model is backend.model and b.device == backend.device
    with pytest.raises(ValueError, match="batch_size"):
        TransformersBackend(backend.model, backend.tokenizer, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        TransformersBackend(backend.model, backend.tokenizer, dtype="float8")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TransformersBackend("./no/such/model-folder")
    with pytest.raises(TypeError, match="model"):
        TransformersBackend(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="requests"):
        backend.generate(["not a request"])  # type: ignore[list-item]


@pytest.mark.slow
def test_seeded_samples_do_not_depend_on_the_batch(backend):
    req = GenerationRequest("Once upon a time", n=2, temperature=1.0, seed=0, max_tokens=6)
    alone = [c.token_ids for c in backend.generate([req])[0]]
    # Sample i is seeded with seed + i, whatever else shares the batch.
    other = GenerationRequest("The sky is", temperature=0.7, seed=5, max_tokens=6)
    assert [c.token_ids for c in backend.generate([other, req])[1]] == alone


@pytest.mark.slow
def test_small_batches_give_the_same_results(backend, chat_prompt):
    requests = [greedy("The sky is", max_tokens=6), greedy(chat_prompt, n=2, max_tokens=6)]
    small = TransformersBackend(backend.model, backend.tokenizer, batch_size=1)
    assert [[c.token_ids for c in cs] for cs in small.generate(requests)] == [
        [c.token_ids for c in cs] for cs in backend.generate(requests)
    ]


def test_engine_program_with_stop_and_exact_token_ids(backend, chat_prompt):
    from retrosearch.engine import Engine, Generate
    from retrosearch.tree import SearchTree

    def program(tree):
        [first] = yield Generate(node=tree.root, temperature=0.0, max_tokens=8, stop=(" is",))
        assert first.finish_reason == "stop"
        [rest] = yield Generate(node=first, temperature=0.0, max_tokens=4)
        return tree.text(rest)

    trees = [SearchTree(chat_prompt, tokenizer=backend) for _ in range(2)]
    engine = Engine(backend)
    results = engine.run(program(t) for t in trees)
    assert results == [chat_prompt + "The capital of France is Paris."] * 2
    assert engine.stats.waves == 2 and engine.stats.backend_calls == 2
    assert trees[0].token_ids(trees[0].nodes[-1])[-1] in backend.eos_token_ids


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.5, 1.0), (1.0, 0.8)])
def test_sampler_draws_from_softmax_with_temperature_and_top_p(temperature, top_p):
    from retrosearch.backends.hf_decoding import Row, Sampler

    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, float("-inf")]])
    probs = torch.softmax(logits[0] / temperature, -1)
    # Expected nucleus: the most likely tokens until their mass reaches top_p (here 0.8 keeps the first three).
    if top_p < 1:
        probs[3:] = 0
        probs /= probs.sum()
    request = GenerationRequest("x", temperature=temperature, top_p=top_p)
    # One row per draw, each with its own generator: one call samples them all.
    draws = 4000
    rows = [Row(0, i, [1], request, torch.Generator().manual_seed(i)) for i in range(draws)]
    sampler = Sampler(rows)
    out = sampler(torch.zeros((draws, 1), dtype=torch.long), logits.expand(draws, -1).clone())
    assert ((out == 0).sum(1) == 1).all() and (torch.isinf(out).sum(1) == 5).all()
    drawn = out.argmax(1)
    counts = torch.bincount(drawn, minlength=6).float()
    assert counts[probs == 0].sum() == 0
    assert torch.allclose(counts / draws, probs, atol=0.025)
    # Each draw's log-prob is under the distribution it came from (tempered, nucleus renormalised).
    assert torch.allclose(sampler.logprobs, probs.log()[drawn], atol=1e-6)


def test_context_window_ends_generation_or_rejects_the_prompt(backend):
    b = TransformersBackend(backend.model, backend.tokenizer)
    ids = tuple(b.tokenize("Once upon a time"))
    b.max_context = len(ids) + 2
    [[c]] = b.generate([greedy("", prompt_ids=ids, max_tokens=8)])
    assert c.finish_reason == "length" and c.num_tokens == 2
    b.max_context = len(ids)
    [[c], [ok]] = b.generate(
        [greedy("", prompt_ids=ids, max_tokens=8), greedy("", prompt_ids=ids[:2], max_tokens=1)]
    )
    assert c.finish_reason == "error" and "maximum context length" in c.error and c.token_ids == []
    assert ok.finish_reason == "length" and ok.num_tokens == 1


def test_one_dtype_helper_for_every_loader():
    assert dtype_kwargs("auto") == {"dtype": "auto"}
    assert dtype_kwargs("bf16") == dtype_kwargs("bfloat16") == {"dtype": torch.bfloat16}
    assert dtype_kwargs(torch.float16) == {"dtype": torch.float16}
    with pytest.raises(ValueError, match="dtype must be 'auto' or one of"):
        dtype_kwargs("float8")
