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

# Debian packages the tests drive: chromium for the review app's browser tests (Playwright's own browser download
# cannot work here), bindfs for a real FUSE filesystem, where the review database must be refused
TEST_PACKAGES := /usr/bin/chromium:chromium /usr/bin/bindfs:bindfs
MISSING = $(strip $(foreach p,$(TEST_PACKAGES),$(if $(wildcard $(word 1,$(subst :, ,$(p)))),,$(word 2,$(subst :, ,$(p))))))
test-packages:
	@test -z "$(MISSING)" || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(MISSING) > /dev/null) \
		|| (echo "make test needs Debian's $(MISSING): apt-get install $(MISSING) (as root)" >&2; exit 1)

# two processes: most of the suite waits (Ray start-ups, clusters, servers); each test file stays on one process
# and the cluster drills on one (tests/conftest.py: xdist groups)
test: setup test-packages
	$(PY) -m pytest -q -n 2 --dist loadgroup

.PHONY: setup sample test test-packages
