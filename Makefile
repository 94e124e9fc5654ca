# The two commands of the README: `make demo` and `make test`.
# Everything else here is what they need, installed by the project's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install install-test system-deps lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Debian packages the tests drive for real: chromium (web page tests) and PostgreSQL (score store tests).
system-deps:
	bash scripts/system-deps.sh

## Set up and run the whole product end to end on the embedded defaults.
demo: $(STAMP)
	$(BIN)/dealscore demo

## Install everything the suite needs and run it.
test: $(STAMP) system-deps
	$(BIN)/ruff check src service training tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=600

lint: $(STAMP)
	$(BIN)/ruff check src service training tests bench

bench: $(STAMP)
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) .dealscore build *.egg-info
