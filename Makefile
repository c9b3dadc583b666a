# Two entry points on a fresh machine: `make demo` and `make test`. Both create or refresh the
# virtual environment first; re-running is cheap once nothing changed.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch that these machines have on disk. GPU users: make TORCH_SPEC="torch" ...
# (or any spec of a CUDA build) before anything else installs torch.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.idc-installed
export FIFTYONE_DO_NOT_TRACK ?= true
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# The bundled mongod is 6.0, the oldest MongoDB FiftyOne supports; it works, so skip the nag.
export FIFTYONE_DATABASE_VALIDATION ?= false

.PHONY: install demo test lint format pretrain-tiny pretrain-tiny-photo benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/ensure-java.sh scripts/ensure-mongod.sh scripts/ensure-browser.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,fiftyone]"
	bash scripts/ensure-java.sh
	bash scripts/ensure-mongod.sh $(PY)
	bash scripts/ensure-browser.sh
	touch $(STAMP)

demo: install
	$(VENV)/bin/idc demo --out runs/demo
	$(PY) -m fiftyone_plugin.demo --demo-dir runs/demo

test: install lint
	$(PY) -m pytest -q --durations=30

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

pretrain-tiny: install
	$(VENV)/bin/idc pretrain-tiny --out idc_engine/assets/tiny-blip2-shapes

# Two processes, one per core, each half of every batch (the same run as one process). Resumable: after an
# interruption, run it again with ARGS=--resume (the pairs and checkpoints stay in the work folder).
pretrain-tiny-photo: install
	$(VENV)/bin/torchrun --standalone --nproc_per_node 2 -m idc_engine.cli pretrain-tiny-photo \
		--out idc_engine/assets/tiny-blip2-photo --work-dir runs/pretrain-tiny-photo $(ARGS)

benchmark: install
	$(PY) benchmarks/tiny_preset.py --out runs/benchmarks

clean:
	rm -rf runs .pytest_cache .ruff_cache
