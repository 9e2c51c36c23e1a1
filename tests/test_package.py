"""The public face: light import, exports, lazy heavy backends."""

from __future__ import annotations

import subprocess
import sys

import retrosearch


def test_import_pulls_no_heavy_library():
    code = (
        "import sys, retrosearch, retrosearch.backends, retrosearch.retro, retrosearch.trace, retrosearch.verify, "
        "retrosearch.tree, retrosearch.engine\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'datasets', 'ray', 'trl', 'accelerate') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_all_names_exist_and_heavy_backends_are_lazy():
    for name in retrosearch.__all__:
        if name in ("TransformersBackend", "VLLMBackend", "OpenAIBackend"):
            continue
        assert hasattr(retrosearch, name), name
    assert "retrosearch.backends.hf" not in sys.modules or "torch" in sys.modules
