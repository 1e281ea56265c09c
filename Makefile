# MegaCity AI — `make run` serves the router, `make test` runs every check, `make bench` measures.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
CONFIG ?= examples/topology.yaml
# The generation engines need torch; this version is a CPU wheel on the build machines
# (any other request would pull the CUDA build). On a GPU machine: make TORCH_VERSION=...
TORCH_VERSION ?= 2.13.0
# Where in-process engines find model files given by name (pose_landmarker_full.task …);
# the build machines keep them in ../shared/models.
MEGACITY_MODELS_DIR ?= $(abspath $(wildcard ../shared/models))
export MEGACITY_MODELS_DIR

.PHONY: run serve test lint typecheck services espeak bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check 'torch==$(TORCH_VERSION)'
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,generation]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps 'mediapipe>=0.10.30' 'invisible-watermark>=0.2'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## run: the router on examples/topology.yaml, with stand-in LLM servers for its loopback nodes
run: $(STAMP) espeak
	$(VENV)/bin/megacity demo --config $(CONFIG)

## serve: the router alone (point the topology at your real engine nodes)
serve: $(STAMP)
	$(VENV)/bin/megacity serve --config $(CONFIG)

## test: lint, type-check and the whole test suite (starts PostgreSQL/Redis if stopped)
test: $(STAMP) services espeak lint typecheck
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check megacity tests bench
	$(VENV)/bin/ruff format --check megacity tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

services:
	@bash scripts/services.sh

# espeak-ng makes the speech tests' audio and is the TTS engine's CPU fallback; installed once,
# quietly (sudo when not root).
espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng ) >/dev/null 2>&1 \
	  || echo "warning: could not install espeak-ng; speech tests skip (fail under CI=true)"; }

## bench: benchmarks, printed as tables
bench: $(STAMP)
	$(PY) bench/gateway.py
	$(PY) bench/speech.py
	$(PY) bench/scoring_pronunciation.py
	$(PY) bench/scoring_dtw.py
	$(PY) bench/pose_extract.py --quick
	$(PY) bench/dance_analyze.py
	$(PY) bench/multimodal.py
	$(PY) bench/job_queue.py
	$(PY) bench/ratelimit.py
	$(PY) bench/pii.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
