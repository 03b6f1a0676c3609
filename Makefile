# The two commands a fresh clone needs: `make serve` and `make test`. Each sets up only what is
# missing (a virtual environment, torch's CPU wheel, odeviz; Debian's Chromium for the tests) and
# then runs; a second call finds everything in place and starts at once. Set-up is redone when
# pyproject.toml changes (the stamp files below are older than it).
# Extra arguments: make serve ARGS="--port 5007", make test ARGS="-x tests/test_solve.py".

PYTHON ?= python3
VENV := .venv
# The CPU wheel of torch first: a bare torch requirement would pull a CUDA build of several GB.
TORCH := torch==2.13.0
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
ARGS ?=

# Recipes run the environment's own python, odeviz and jupyter.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)

.PHONY: serve test test-setup

serve: $(VENV)/.installed
	odeviz serve $(ARGS)

# The README's test command, after what it needs (CI runs these same two steps: .ci/run).
test: test-setup
	python -m pytest -v $(ARGS)

test-setup: $(VENV)/.installed-test $(CHROMIUM)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	python -m pip install -q $(TORCH)
	python -m pip install -q -e .
	touch $@

# The test extra includes everything `serve` needs, so it marks that as installed too.
$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	python -m pip install -q $(TORCH)
	python -m pip install -q -e ".[test]"
	touch $(VENV)/.installed $@

# Playwright drives Debian's Chromium; it cannot download a browser of its own here.
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium
