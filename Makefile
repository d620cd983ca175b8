# GridConv Lab: `make run` (main job) and `make test` (whole suite) set up everything they need.
VENV    ?= .venv
PYTHON  ?= python3
TORCH   ?= torch==2.13.0
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.gridconv-installed

.PHONY: setup run test browser-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q $(TORCH)
	$(VENV)/bin/pip install --disable-pip-version-check -q -e ".[dev]"
	touch $@

setup: $(STAMP)

# Main job: train the paper's D-GridConv on the built-in pose generator and print its evaluation.
run: setup
	$(VENV)/bin/gridconv train

# Debian's Chromium for the JupyterLab browser tests (needs root; without it those tests skip).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing and not root: browser tests will be skipped"; fi; fi

test: setup browser-deps
	$(PY) -m pytest

clean:
	rm -rf $(VENV) artifacts build
