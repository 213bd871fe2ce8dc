# Everything runs from a local virtual environment that the targets create on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SCENARIO ?= scenarios/heterogeneous.yaml
PYTEST_ARGS ?=

.PHONY: help venv run test lint typecheck unit integration system bench soak up down wheels image clean provision swarm-up swarm-down

help:
	@echo "make run        run the main job on the default scenario ($(SCENARIO))"
	@echo "make test       lint, type-check and run every test tier"
	@echo "make bench      benchmarks, as ratios side by side in one run"
	@echo "make soak       1,000 iterations with random faults: lost, wrong, RSS slope, fds"
	@echo "make up / down  the containerised testbed (needs Docker)"
	@echo "make wheels     offline wheelhouse for the image (PLATFORM=linux/arm64 for a Pi cluster)"
	@echo "make image      the node image (PLATFORM=linux/arm64: hgc-edge:latest-arm64)"
	@echo "make swarm-up / swarm-down   a Swarm of SWARM_ENGINES dockerd engines on this machine (root)"

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp

run: venv
	$(VENV)/bin/hgc run $(SCENARIO)

lint: venv
	$(VENV)/bin/ruff check common services hgc tests bench
	$(VENV)/bin/ruff format --check common services hgc tests bench

typecheck: venv
	$(VENV)/bin/mypy common services hgc tests/unit/services

# CI=true (set by .ci/run) provisions Docker, compose, the base image and Prometheus first,
# so the container tests run instead of skipping.
provision:
	@if [ "$$CI" = "true" ] || [ "$$HGC_PROVISION" = "1" ]; then bash scripts/provision.sh; fi

test: venv lint typecheck provision
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

integration: venv
	$(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

system: venv provision
	$(PY) -m pytest -q tests/system $(PYTEST_ARGS)

bench: venv
	$(PY) -m bench

# >= 1,000 iterations on a real local cluster with random worker kills/restarts and pauses
SOAK_ITERATIONS ?= 1000
soak: venv
	$(PY) -m hgc.testbed.soak --iterations $(SOAK_ITERATIONS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs build *.egg-info

# --- containerised testbed (docs/containers.md) -----------------------------------------------
PLATFORM   ?= linux/amd64
WHEELHOUSE ?= wheelhouse
# linux/arm64 (Raspberry Pi): tagged hgc-edge:latest-arm64 and hgc-edge:<version>-arm64, the
# per-architecture tags a multi-arch manifest is made of (docs/raspberry-pi.md).
ARCH       := $(word 2,$(subst /, ,$(PLATFORM)))
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE      ?= $(if $(filter arm64,$(ARCH)),hgc-edge:latest-arm64,hgc-edge:latest)
HGC_BASE_IMAGE_ARM64 ?= $(shell docker image inspect hgc-base:bookworm-arm64 >/dev/null 2>&1 \
                    && echo hgc-base:bookworm-arm64 || echo python:3.11-slim-bookworm)
export HGC_BASE_IMAGE_ARM64
# The official slim image for users; the locally built base where no registry is reachable.
HGC_BASE_IMAGE ?= $(shell docker image inspect hgc-base:bookworm >/dev/null 2>&1 \
                    && echo hgc-base:bookworm || echo python:3.11-slim-bookworm)
export HGC_BASE_IMAGE

wheels: venv
	PYTHON=$(PY) bash scripts/wheels.sh $(PLATFORM) $(WHEELHOUSE)

# One image for every node of a stack (scripts/stack.sh): `make up` builds it once, brings the
# stack up (official Prometheus + Grafana with a registry; without one a locally built
# Prometheus and no Grafana, said in one line), follows the master and writes the run folder
# (runs/$(STACK_NAME)/: record, summary, report). STACK_SCENARIO=FILE generates STACK first
# (hgc compose FILE -o STACK $(STACK_ARGS)); BUILD=0 uses IMAGE as it is; WAIT=0 returns at
# once; HGC_OFFLINE=1|0 skips the registry probe.
STACK          ?= compose/default.yaml
STACK_NAME     ?= hgc
STACK_SCENARIO ?=
STACK_ARGS     ?=
RUNS_DIR       ?= runs/$(STACK_NAME)
BUILD          ?= 1
WAIT           ?= 1
STACK_ENV = IMAGE=$(IMAGE) STACK=$(STACK) STACK_NAME=$(STACK_NAME) STACK_SCENARIO=$(STACK_SCENARIO) \
            STACK_ARGS="$(STACK_ARGS)" RUNS_DIR=$(RUNS_DIR) BUILD=$(BUILD) WAIT=$(WAIT) \
            PYTHON=$(PY) WHEELHOUSE=$(WHEELHOUSE) PLATFORM=$(PLATFORM) VERSION=$(VERSION)

image: venv
	$(STACK_ENV) bash scripts/stack.sh image

up: venv
	$(STACK_ENV) bash scripts/stack.sh up

down:
	$(STACK_ENV) bash scripts/stack.sh down

# --- multi-engine Swarm on one machine (root): SWARM_ENGINES dockerd engines, each in its own
# network namespace on 10.231.0.0/24, joined into a Swarm and labelled for the stack
# (hgc/testbed/engines.py, docs/raspberry-pi.md). SWARM_IMAGES are loaded into every engine.
SWARM_ENGINES ?= 3
SWARM_EDGES   ?= 3
SWARM_IMAGES  ?= $(IMAGE)
swarm-up: venv
	$(PY) -m hgc.testbed.engines up --engines $(SWARM_ENGINES) --edges $(SWARM_EDGES) \
	    $(foreach i,$(SWARM_IMAGES),--image $(i))

swarm-down: venv
	$(PY) -m hgc.testbed.engines down
