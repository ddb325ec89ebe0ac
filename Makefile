# Two commands on a fresh clone: `make demo` and `make test` (python3 >= 3.11, make, git).
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test test-fast lint format bench bench-inference clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamp files make re-runs instant; they are rebuilt when the dependencies change.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[test]'
	@touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/aekit train ae --data digits --latent 2 --hidden 64,32 --epochs 100 --lr 3e-3 \
		--set random_state=0 --out runs/demo --overwrite --threads 1
	$(VENV)/bin/aekit report runs/demo --threads 1

test: $(VENV)/.installed-test
	$(PY) -m pytest

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -m "not slow"

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check src tests benchmarks examples docs/tutorials
	$(VENV)/bin/ruff format --check src tests benchmarks examples docs/tutorials

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format src tests benchmarks examples docs/tutorials
	$(VENV)/bin/ruff check --fix src tests benchmarks examples docs/tutorials

bench: $(VENV)/.installed
	$(PY) benchmarks/train_speed.py

# Inference rows/s of aekit's chunk rule against fixed chunks (about 2.5 minutes, one thread).
bench-inference: $(VENV)/.installed
	$(PY) benchmarks/inference.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
