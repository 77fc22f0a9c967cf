# `make demo` and `make test` set up .venv themselves. torch is pinned first: an unpinned torch
# resolves to a CUDA build with several GB of packages.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2

.PHONY: demo test test-slow generate clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/coreplan compare veca-base dinov3-base --resolutions 256,384,512,768,1024

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS) -m slow

generate: $(VENV)/.installed
	$(PY) -m costmodel.numeric

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
