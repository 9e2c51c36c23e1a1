"""On-policy generation: the live backend samples from the trainer's own model object, as it is right now."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch", reason="the live backend needs torch")
transformers = pytest.importorskip("transformers", reason="the live backend needs transformers")

from _backend_contract import check_logprobs, model_logits, one_torch_thread  # noqa: E402

from retrosearch.assets import model_path  # noqa: E402
from retrosearch.backends.hf import TransformersBackend  # noqa: E402
from retrosearch.backends.live import LiveTransformersBackend  # noqa: E402
from retrosearch.types import GenerationRequest  # noqa: E402

PROMPT = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return transformers.AutoTokenizer.from_pretrained(model_path("toy-base"))


def tiny_llama(tokenizer: object, dropout: float) -> object:
    """A tiny random Llama in train mode."""
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        attention_dropout=dropout,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
        pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).train()


@pytest.fixture
def model(tokenizer: object) -> object:
    """With dropout that would make generation random if it were left on."""
    return tiny_llama(tokenizer, dropout=0.5)


def greedy(**kw: object) -> GenerationRequest:
    return GenerationRequest(PROMPT, temperature=0.0, max_tokens=5, **kw)  # type: ignore[arg-type]


def test_generates_like_the_frozen_backend_without_copying_and_stays_in_train_mode(model, tokenizer) -> None:
    live = LiveTransformersBackend(model, tokenizer)
    assert live.model is model and model.training
    seen = []
    hook = model.model.layers[0].register_forward_hook(
        lambda m, args, out: seen.append(
            (m.training, torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        )
    )
    requests = [greedy(), GenerationRequest(PROMPT, n=2, temperature=1.0, seed=3, max_tokens=5)]
    out = live.generate(requests)
    hook.remove()
    assert seen and set(seen) == {(False, False, False)}  # eval mode, no gradients, not inference mode
    assert model.training and all(m.training for m in model.modules())
    # The same answers as a frozen backend over a copy in eval mode (dropout off in both).
    frozen = TransformersBackend(copy.deepcopy(model), tokenizer)
    assert [[c.token_ids for c in cs] for cs in out] == [
        [c.token_ids for c in cs] for cs in frozen.generate(requests)
    ]


def test_an_in_place_weight_change_shows_in_the_next_generation(tokenizer) -> None:
    """A few optimizer steps on the model teach it a continuation; the backend's next greedy output is it."""
    model = tiny_llama(tokenizer, dropout=0.0)
    live = LiveTransformersBackend(model, tokenizer)
    [[before]] = live.generate([greedy()])
    target = tokenizer.encode(" 5.<|im_end|>", add_special_tokens=False)  # type: ignore[attr-defined]
    assert before.token_ids != target
    prompt = tokenizer.encode(PROMPT, add_special_tokens=False)  # type: ignore[attr-defined]
    ids = torch.tensor([prompt + target])
    labels = torch.tensor([[-100] * len(prompt) + target])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    data = model.lm_head.weight.data_ptr()
    for _ in range(30):
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.lm_head.weight.data_ptr() == data  # changed in place: the backend holds the same tensors
    [[after]] = live.generate([greedy(logprobs=True)])
    assert after.token_ids == target and after.finish_reason == "eos"
    assert model.training
    # Its log-probs are the current weights' too (an RL step's importance ratio starts at 1).
    check_logprobs(live, PROMPT, model_logits(model), modes=("raw",))


def test_train_mode_is_restored_even_when_generation_fails(model, tokenizer, monkeypatch) -> None:
    model.model.embed_tokens.eval()  # a frozen submodule keeps its own mode
    live = LiveTransformersBackend(model, tokenizer)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(model, "generate", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        live.generate([greedy()])
    assert model.training and not model.model.embed_tokens.training


def test_a_wrapped_model_is_unwrapped_and_bad_arguments_refused(model, tokenizer) -> None:
    class Wrapper(torch.nn.Module):  # what DDP looks like from outside: the model in `.module`
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.module = inner

    assert LiveTransformersBackend(Wrapper(model), tokenizer).model is model
    with pytest.raises(TypeError, match="loaded transformers model"):
        LiveTransformersBackend("toy-base", tokenizer)
    with pytest.raises(ValueError, match="batch_size"):
        LiveTransformersBackend(model, tokenizer, batch_size=0)
