"""TransformersBackend with images: a tiny random LLaVA-style vision-language model built here, its processor in use.

The right answer comes from the model itself: a plain forward pass over what the model's processor makes of the
prompt and image. A backend that dropped the image, mis-expanded its token or fed the wrong pixels would give other
log-probs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the transformers backend needs torch")
transformers = pytest.importorskip("transformers", reason="the transformers backend needs transformers")
Image = pytest.importorskip("PIL.Image", reason="images need pillow")

from _backend_contract import one_torch_thread  # noqa: E402

from retrosearch.assets import model_path  # noqa: E402
from retrosearch.backends.hf import TransformersBackend  # noqa: E402
from retrosearch.types import GenerationRequest, ImagePart  # noqa: E402

PROMPT = "<|im_start|>user\nWhat is in <image> here?<|im_end|>\n<|im_start|>assistant\n"


def picture(seed: int) -> object:
    import numpy as np

    pixels = np.random.RandomState(seed).randint(0, 256, (40, 40, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LLaVA (CLIP vision tower + Llama text model, random weights) with its processor, saved to a folder.

    The tokenizer is the shipped toy tokenizer plus an `<image>` token; a 28 x 28 image is 4 patches of 14 pixels,
    so each image stands for 4 `<image>` tokens in what the model reads.
    """
    tok = transformers.AutoTokenizer.from_pretrained(model_path("toy-base"))
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    )
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    config = transformers.LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = transformers.LlavaForConditionalGeneration(config)
    folder = tmp_path_factory.mktemp("tiny-llava")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def backend(vlm_dir: Path) -> TransformersBackend:
    return TransformersBackend(vlm_dir, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def ask(image: object, *, prompt: str = PROMPT, **kw: object) -> GenerationRequest:
    kw = {"temperature": 0.0, "max_tokens": 6, "logprobs": True, "logprobs_mode": "raw", **kw}
    return GenerationRequest(prompt, images=(ImagePart("<image>", image=image),), **kw)


def reference_logprobs(backend: TransformersBackend, image: object, tokens: list[int]) -> torch.Tensor:
    """The raw log-probs of `tokens` after PROMPT and `image`, from one forward pass of the processor's output."""
    inputs = backend.images.processor(text=[PROMPT], images=[image], return_tensors="pt")
    n = inputs["input_ids"].shape[1]
    ids = torch.cat([inputs["input_ids"], torch.tensor([tokens])], dim=1)
    with torch.inference_mode():
        logits = backend.model(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inputs["pixel_values"]
        ).logits[0, n - 1 : -1]
    return torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(tokens)[:, None]).squeeze(1)


def test_a_vision_language_folder_loads_with_its_processor(backend: TransformersBackend) -> None:
    assert backend.images is not None and backend.images.image_token == "<image>"
    assert type(backend.model).__name__ == "LlavaForConditionalGeneration"
    run, tensors = backend.images.one(picture(0))
    assert run == [backend.images.image_token_id] * 4 and tensors["pixel_values"].shape == (1, 3, 28, 28)
    # A loaded model with its processor (e.g. a trainer's) works the same way.
    again = TransformersBackend(backend.model, backend.images.processor)
    assert again.tokenizer is backend.images.processor.tokenizer
    assert [c.token_ids for [c] in again.generate([ask(picture(0))])] == [
        c.token_ids for [c] in backend.generate([ask(picture(0))])
    ]


def test_the_image_reaches_the_model_through_the_processor(backend: TransformersBackend) -> None:
    [[a], [b]] = backend.generate([ask(picture(0)), ask(picture(1))])
    assert a.finish_reason != "error" and a.num_tokens > 0, a.error
    for image, c in ((picture(0), a), (picture(1), b)):
        expected = reference_logprobs(backend, image, c.token_ids)
        assert torch.allclose(torch.tensor(c.logprobs), expected, atol=1e-4)
    # Same words, another picture: the model reads something else.
    first = reference_logprobs(backend, picture(1), a.token_ids)
    assert not torch.allclose(torch.tensor(a.logprobs), first, atol=1e-3)


def test_prompt_ids_with_one_or_every_image_token_give_the_text_result(backend: TransformersBackend) -> None:
    [[by_text]] = backend.generate([ask(picture(2))])
    ids = backend.tokenize(PROMPT)
    image_id = backend.images.image_token_id
    assert ids.count(image_id) == 1
    k = ids.index(image_id)
    expanded = ids[:k] + [image_id] * 4 + ids[k + 1 :]
    out = backend.generate([ask(picture(2), prompt_ids=ids), ask(picture(2), prompt_ids=expanded)])
    assert [cs[0].token_ids for cs in out] == [by_text.token_ids] * 2


def test_image_and_text_requests_share_a_batch(backend: TransformersBackend) -> None:
    text_only = GenerationRequest("<|im_start|>user\nHello<|im_end|>\n", temperature=0.0, max_tokens=6)
    requests = [text_only, ask(picture(3)), ask(picture(4), n=2, temperature=1.0, seed=7)]
    together = backend.generate(requests)
    alone = [backend.generate([r])[0] for r in requests]
    assert [[c.token_ids for c in cs] for cs in together] == [[c.token_ids for c in cs] for cs in alone]


def test_a_file_reference_is_read(backend: TransformersBackend, tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    picture(5).save(path)
    request = GenerationRequest(
        PROMPT, images=(ImagePart("<image>", path=str(path)),), temperature=0.0, max_tokens=6
    )
    [[from_file], [in_memory]] = backend.generate([request, ask(picture(5), logprobs=False)])
    assert from_file.token_ids == in_memory.token_ids


def test_a_bad_image_request_fails_alone(backend: TransformersBackend) -> None:
    two_images = GenerationRequest(
        PROMPT,
        images=(ImagePart("<image>", image=picture(0)), ImagePart("<image>", image=picture(1))),
        max_tokens=4,
    )
    [[bad], [ok]] = backend.generate([two_images, ask(picture(0))])
    assert bad.finish_reason == "error" and "1 image tokens '<image>' for 2 image(s)" in bad.error
    assert ok.finish_reason != "error"


def test_a_text_only_model_refuses_images_and_works_as_before() -> None:
    toy = TransformersBackend("toy-base", device="cpu")
    assert toy.images is None
    [[refused], [text]] = toy.generate(
        [ask(picture(0)), GenerationRequest(PROMPT, temperature=0.0, max_tokens=4)]
    )
    assert refused.finish_reason == "error" and "no image processor" in refused.error
    assert text.finish_reason != "error" and text.num_tokens > 0
