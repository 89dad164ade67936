# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

.PHONY: install test demo bench lint clean

install: $(STAMP)

# Re-installs only when pyproject.toml changes; pip takes torch's CPU wheel from the machine.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,deepspeed]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import rlspoof, torch, transformers, trl, soundfile"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

# The demo pipeline, as make dependencies: each stage reruns only when its inputs change.
# Built-in SYNTHETIC corpus -> SSL pre-training -> `rlspoof compare`: SFT, GRPO and the
# SFT-then-GRPO hybrid from the same checkpoint (one seed here; the recipe has three), scored on
# in-domain and out-of-domain sets -> runs/compare/report.md with tables and figures.
CORPUS  := data/mini/corpus.json
ENCODER := runs/pretrained/encoder/model.safetensors
DEMO_SEEDS ?= 1234

demo: install $(ENCODER)
	$(BIN)/rlspoof compare recipes/mini/compare.yaml --seeds $(DEMO_SEEDS)

$(CORPUS): | install
	$(BIN)/rlspoof data synth --size small --out data/mini

$(ENCODER): recipes/mini/pretrain.yaml $(CORPUS)
	$(BIN)/rlspoof pretrain recipes/mini/pretrain.yaml

bench: install
	$(BIN)/python benchmarks/baseline_lfcc.py --size small --out benchmarks/results/baseline_lfcc_small.json
	$(BIN)/python benchmarks/metrics_speed.py --out benchmarks/results/metrics_speed.json
	$(BIN)/python benchmarks/eval_throughput.py --out benchmarks/results/eval_throughput.json
	$(BIN)/python benchmarks/grpo_step_time.py --preset tiny --out benchmarks/results/grpo_step_time_tiny_cpu.json
	$(BIN)/python benchmarks/grpo_estimators.py --out benchmarks/results/grpo_estimators.json

lint: install
	$(BIN)/ruff check rlspoof tests benchmarks

clean:
	rm -rf $(VENV) data/mini runs .pytest_cache
