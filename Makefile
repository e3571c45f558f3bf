# The README's two commands: `make sample` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/installed

sample: setup
	$(PY) -m factory run configs/sample.yaml --overwrite
	$(PY) -m factory prepare configs/sample_prepare.yaml --overwrite

test: setup
	$(PY) -m pytest -q

.PHONY: setup sample test
