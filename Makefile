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

# the review app's browser tests drive Debian's chromium (Playwright's own browser download cannot work here)
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null) \
		|| (echo "make test needs Debian's chromium: apt-get install chromium (as root)" >&2; exit 1)

test: setup browser
	$(PY) -m pytest -q

.PHONY: setup sample test browser
