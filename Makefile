# Set-up and everyday commands. `make demo` and `make test` each create .venv
# on first use (Python 3.11+) and are quick to re-run once it exists: the
# install step re-runs only when setup.cfg or pyproject.toml change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
DEMO_MODEL := lipmip/data/digits_mlp.npz
DEMO_DATA  := lipmip/data/digits_test.npz
# extras installed for the test suite (torch pinned to the CPU build in setup.cfg)
TEST_EXTRAS := test,torch,jax-models,dask,report

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

$(VENV)/.core-installed: $(BIN)/python setup.cfg pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(BIN)/python setup.cfg pyproject.toml
	$(PIP) install --quiet -e ".[$(TEST_EXTRAS)]"
	touch $@ $(VENV)/.core-installed

venv: $(VENV)/.core-installed

demo: $(VENV)/.core-installed
	$(BIN)/lipmip info $(DEMO_MODEL)
	@echo
	$(BIN)/lipmip bound $(DEMO_MODEL) --center $(DEMO_DATA) --index 0 --radius 0.05 --ball inf --margin top2
	@echo
	$(BIN)/lipmip bound $(DEMO_MODEL) --center $(DEMO_DATA) --index 0 --radius 0.05 --ball inf --margin top2 --method enumerate
	@echo
	$(BIN)/lipmip bound $(DEMO_MODEL) --center $(DEMO_DATA) --index 0 --radius 0.05 --ball 2 --margin top2

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
