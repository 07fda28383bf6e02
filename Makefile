# Everything is installed into .venv by the first target that needs it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install browser serve test test-fast bench check clean

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

# The dashboard's browser tests need a Chromium: MOCKSERVER_CHROMIUM, else Debian's package
# (apt-get install chromium; .ci/run installs it), else the build Playwright downloads.
browser: install
	@if [ -n "$$MOCKSERVER_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 \
		|| command -v chromium-browser >/dev/null 2>&1; then :; \
	else $(BIN)/python -m playwright install chromium; fi

test: install browser
	$(BIN)/python -m pytest -n 2 $(ARGS)

# The quick loop while editing: everything but the tests marked slow (soak, packaging, Schemathesis
# runs, the browser); `make test` and CI run them all.
test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not slow" $(ARGS)

bench: install
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
