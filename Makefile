# Two commands matter: `make run` (serve) and `make test` (test). Everything else is a step of those.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export SHOP_DATA_DIR ?= $(abspath ../shared/data)
export SHOP_ARTIFACTS_DIR ?= $(CURDIR)/artifacts
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Idle OpenMP threads spin by default; on a shared 2-core machine that slows training ~10x.
export OMP_WAIT_POLICY := PASSIVE
PYTEST_ARGS ?=

.PHONY: venv buf protos data models models-if-absent eval run lint test test-unit test-integration bazel bazel-test \
        k8s-validate load bench bench-scale chaos clean retrain rollout rollback ab-report loop-eval console browser bench-catalog \
        tensorboard

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt
	@echo "==> creating virtualenv and installing pinned dependencies (first time: a few minutes)"
	$(PY_SYS) -m venv $(VENV)
	$(PIP) install --progress-bar on -r requirements.txt
	@# nvidia-pytriton ships the tritonserver binary; its numpy<2 pin must not constrain us.
	$(PIP) install -q --no-deps nvidia-pytriton==0.7.0
	@# Repo root and generated stubs on sys.path (also for Triton's Python-backend stub).
	printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/libs/gen" > $$($(PY) -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/shop_repo.pth
	touch $@

# buf (pinned in package-lock.json) lints protos/ and checks them against the previous commit's (buf.yaml).
buf: node_modules/.package-lock.json
	node_modules/.bin/buf lint
	tools/buf_breaking.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --prefer-offline

protos: libs/gen/.stamp
libs/gen/.stamp: $(VENV)/.stamp $(shell find protos -name '*.proto')
	$(PY) tools/gen_protos.py
	touch $@

data: protos
	$(PY) -m libs.catalog.prepare

models: data
	$(PY) -m training.train

models-if-absent: data
	@if $(PY) -m training.train --check >/dev/null 2>&1; then echo "==> models present"; \
	elif $(PY) -m training.bundles adopt >/dev/null 2>&1 && $(PY) -m training.train --check >/dev/null 2>&1; then \
	  echo "==> models present (bundle 1 made from them)"; \
	else echo "==> models absent: training (about 5 minutes on 2 cores)"; $(PY) -m training.train; fi

eval: models-if-absent
	$(PY) -m training.evaluate

run: models-if-absent
	$(PY) -m tools.stack

# ruff (pinned in requirements.txt, configured in pyproject.toml): lint rules and the one code format.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint buf models-if-absent browser
	$(PY) -m pytest tests $(PYTEST_ARGS)

# The console (services/console) beside `make run`: http://127.0.0.1:8080/ against the gateway make run serves.
console: protos
	$(PY) -m services.console

# Debian's Chromium for the console's browser tests (Playwright drives it; its own browser download cannot work
# offline). Installed when missing and we are root; otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && { echo "==> installing Debian's chromium"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "==> no chromium (not root, or apt-get failed): the browser tests will skip"; }

test-unit: protos
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Starts Triton and the services on 127.0.0.1 (tests/integration).
test-integration: models-if-absent
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# The learning loop (README, "State and the learning loop"): recorded purchases -> bundle N+1 -> served.
RETRAIN_ARGS ?=
retrain: models-if-absent
	$(PY) -m training.retrain $(RETRAIN_ARGS)

ROLLOUT_ARGS ?=
rollout:
	$(PY) -m tools.rollout $(ROLLOUT_ARGS)

rollback:
	$(PY) -m tools.rollout --rollback $(ROLLOUT_ARGS)

ab-report: protos
	$(PY) -m tools.ab_report

# Training curves: every `make models` / `make retrain` run writes TensorBoard event files under runs/<run>/
# (training/train/tracking.py); the bundle manifest names its run.
TB_PORT ?= 6006
tensorboard: venv
	@mkdir -p runs
	$(VENV)/bin/tensorboard --logdir runs --host 127.0.0.1 --port $(TB_PORT)

# Several minutes: replays 2 weeks through a private stack, retrains, scores (reports/loop.*).
loop-eval: models-if-absent
	$(PY) -m training.loop_eval

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Bazel 4.2.3 from Debian's bazel-bootstrap (WORKSPACE and tools/bazel/ are written for it), installed on first use.
bazel:
	@command -v bazel >/dev/null 2>&1 || { echo "==> installing Debian's bazel-bootstrap (Bazel 4.2.3)"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bazel-bootstrap; }

# Bazel generates its own stubs from protos/; it only needs the venv (tools/bazel/python.sh).
bazel-test: venv bazel
	bazel test //...

k8s-validate: venv
	$(PY) -m deploy.k8s.validate

LOAD_ARGS ?=
BENCH_ARGS ?=
CHAOS_ARGS ?=
# Fault suite (loadtest/chaos.py): hostile requests, Triton and inner-service kills, 10x overload; reports/chaos.*.
# CHAOS_ARGS="--soak-s 600" adds the 10-minute soak.
chaos: models-if-absent
	$(PY) -m loadtest.chaos $(CHAOS_ARGS)

load: models-if-absent
	$(PY) -m loadtest.driver $(LOAD_ARGS)

bench: models-if-absent
	$(PY) -m loadtest.bench $(BENCH_ARGS)

bench-scale: models-if-absent
	$(PY) -m loadtest.scale $(SCALE_ARGS)

# Catalogue freshness on two replicas sharing a throwaway PostgreSQL database (reports/catalog.*).
CATALOG_ARGS ?=
bench-catalog: models-if-absent
	$(PY) -m loadtest.catalog $(CATALOG_ARGS)

clean:
	rm -rf build libs/gen bazel-*
