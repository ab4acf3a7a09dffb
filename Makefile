# Two entry points: `make paper` runs the daemon on the embedded paper config,
# `make test` runs the whole suite. Both create .venv and install when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: paper test install bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,cluster]'
	@touch $(STAMP)

install: $(STAMP)

paper: $(STAMP)
	$(BIN)/hedgebot run --config config/paper.toml

test: $(STAMP)
	$(BIN)/python -m tests.run_suite

bench: $(STAMP)
	$(BIN)/python bench/_run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
