# `make demo` and `make test` set up .venv themselves. torch is pinned first: an unpinned torch
# resolves to a CUDA build with several GB of packages.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2

.PHONY: demo test test-slow docs validate-quick clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# The main job: plan veca-base at 1024 px, batch 8, bf16 under 25 ms and 10 GB on three devices,
# with the dense DINOv3-base baseline and the fleet for 5,000 images/s.
demo: $(VENV)/.installed
	$(VENV)/bin/coreplan plan veca-base --device h100-sxm,l4,jetson-agx-orin --resolution 1024 \
		--batch 8 --dtype bf16 --latency-ms 25 --memory-gb 10 --demand 5000 || [ $$? -eq 3 ]

validate-quick: $(VENV)/.installed
	$(VENV)/bin/coreplan validate --quick --out results-quick.csv

# The README's charts, regenerated from the public API (not drawn by hand).
docs: $(VENV)/.installed
	$(VENV)/bin/coreplan chart scaling --models veca-base,dinov3-base --out docs/cost-scaling.png --force
	$(VENV)/bin/coreplan chart validation --out docs/validation-cpu.png --force
	$(VENV)/bin/coreplan chart frontier --model veca-base --devices h100-sxm,l4,jetson-agx-orin \
		--resolution 1024 --out docs/frontier.png --force
	$(VENV)/bin/coreplan serve veca-small --device cpu-2core --resolution 512 --dtype fp32 \
		--rate 2.5 --slo-ms 2000 --max-batch 1 --out docs/serve-cpu.png --force

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS) -m slow

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
