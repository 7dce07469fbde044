# The two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PKGS := flopcli flopdata vitcore flopmeter runloop sslmethods segtransfer flopstudy
PYPROJECTS := pyproject.toml $(foreach p,$(PKGS),packages/$(p)/pyproject.toml)
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test test-fast lint docs system-deps clean

# Debian packages: Fashion-MNIST (the embedded demo data). Installed when we are root; otherwise say how.
system-deps:
	@if [ -f $(FMNIST) ]; then :; \
	elif [ "$$(id -u)" = "0" ]; then \
	  echo "installing Debian package dataset-fashion-mnist"; \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) || \
	  echo "WARNING: could not install dataset-fashion-mnist; tests that need it will be skipped"; \
	else \
	  echo "NOTE: not root; run 'sudo apt-get install dataset-fashion-mnist' for the embedded demo data"; \
	fi

$(STAMP): $(PYPROJECTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(foreach p,$(PKGS),-e packages/$(p)[test]) -e .[dev]
	touch $(STAMP)

demo: system-deps $(STAMP)
	$(PY) tools/demo.py

# Everything, slow end-to-end tests included (CI runs this).
test: system-deps $(STAMP)
	$(PY) -m pytest

# Skip tests marked slow (for quick iteration).
test-fast: system-deps $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# API reference from the docstrings (pdoc) into docs/api/ (not committed; tests/test_api_docs.py builds it too).
docs: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m pdoc $(PKGS) -o docs/api

clean:
	rm -rf $(VENV) .pytest_cache
