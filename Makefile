# `make demo` and `make test` set up .venv themselves. torch is pinned first: an unpinned torch
# resolves to a CUDA build with several GB of packages.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2

.PHONY: demo test test-slow docs planner validate-quick clean gpu-wheels gpu-rehearsal gpu-campaign

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
	$(VENV)/bin/coreplan serve veca-small --device cpu-epyc-2core --resolution 512 --dtype fp32 \
		--rate 2.5 --slo-ms 2000 --max-batch 1 --out docs/serve-cpu.png --force

# The planner page (`coreplan explore`, default grid) and the README's two screenshots of it, taken
# by headless Chromium (Debian's `chromium`; BROWSER overrides) at 1280 px and at phone width.
BROWSER ?= chromium
PLANNER_STATE := model=veca-base&device=l4&dtype=fp16&runtime=compiled&cores=16&resolution=768&batch=16&latency=200&memory=6&demand=2000
SHOT = $(BROWSER) --headless --no-sandbox --disable-gpu --hide-scrollbars
planner: $(VENV)/.installed
	$(VENV)/bin/coreplan explore --out planner.html --force
	$(SHOT) --window-size=1280,800 --screenshot=docs/planner-1280.png "file://$(CURDIR)/planner.html#$(PLANNER_STATE)"
	$(SHOT) --window-size=390,1900 --screenshot=docs/planner-phone.png "file://$(CURDIR)/planner.html#$(PLANNER_STATE)"

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS) -m slow

# The GPU campaign (README, "The first GPU run"). The GPU machine has torch, transformers, timm,
# typer, numpy, pandas and sympy but no fvcore and no network: its pure-Python wheels travel in
# .whl/ (fvcore and what it needs that the machine lacks).
CARRIED = fvcore==0.1.5.post20221221 iopath==0.1.10 yacs==0.1.8 termcolor==3.3.0
gpu-wheels: $(VENV)/.installed
	rm -rf .whl && mkdir -p .whl
	$(PY) -m pip wheel -q --no-deps -w .whl $(CARRIED)
	ls .whl

# A fresh environment like the GPU machine's image (no altair, no fvcore but the carried wheels,
# the project run from the checkout) runs the campaign's CPU rehearsal. REHEARSAL_TORCH: the
# device runs torch 2.11; the registries here hold no CPU build of it, so the pinned one is used.
REHEARSAL_VENV ?= .venv-rehearsal
REHEARSAL_TORCH ?= $(TORCH_SPEC)
gpu-rehearsal: gpu-wheels
	rm -rf $(REHEARSAL_VENV) rehearsal-out
	python3 -m venv $(REHEARSAL_VENV)
	$(REHEARSAL_VENV)/bin/pip install -q "$(REHEARSAL_TORCH)"
	$(REHEARSAL_VENV)/bin/pip install -q numpy pandas sympy typer rich transformers pyyaml tqdm \
		tabulate portalocker pillow
	$(REHEARSAL_VENV)/bin/python -m pip install -q --no-index --no-deps --no-compile \
		--target $(REHEARSAL_VENV)/carried .whl/*.whl
	! $(REHEARSAL_VENV)/bin/python -c "import altair" 2>/dev/null
	PYTHONPATH=$(REHEARSAL_VENV)/carried:. $(REHEARSAL_VENV)/bin/python -c \
		"import fvcore; assert '/carried/' in fvcore.__file__, fvcore.__file__"
	PYTHONPATH=$(REHEARSAL_VENV)/carried:. $(REHEARSAL_VENV)/bin/python \
		benchmarks/gpu_campaign.py --out rehearsal-out --device cpu --rehearse --budget-s 55
	PYTHONPATH=$(REHEARSAL_VENV)/carried:. $(REHEARSAL_VENV)/bin/python -c \
		"from costmodel.measurements import read_measurements as r; rows = r('rehearsal-out/validate.csv'); \
		assert any(x.macs_fvcore for x in rows), 'fvcore counted nothing'; print(len(rows), 'rows')"

# On the GPU machine, from the checkout with .whl/ carried (nothing is installed there).
CAMPAIGN_OUT ?= campaign-out
gpu-campaign:
	python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
		--target /tmp/site .whl/*.whl
	PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 benchmarks/gpu_campaign.py \
		--out $(CAMPAIGN_OUT) --device cuda --budget-s 480

clean:
	rm -rf $(VENV) $(REHEARSAL_VENV) rehearsal-out .pytest_cache .hypothesis *.egg-info
