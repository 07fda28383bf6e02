# Everything is installed into .venv by the first target that needs it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install serve test bench check clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

serve: install
	$(BIN)/mockserver serve $(ARGS)

check: install
	$(BIN)/mockserver check

test: install
	$(BIN)/python -m pytest -n 2 $(ARGS)

bench: install
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
