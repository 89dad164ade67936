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
# Built-in SYNTHETIC corpus -> SSL pre-training -> SFT / GRPO / hybrid from the same
# checkpoint -> side-by-side evaluation on in-domain and out-of-domain sets.
CORPUS  := data/mini/corpus.json
ENCODER := runs/pretrained/encoder/model.safetensors
METHODS := sft grpo hybrid_sft_then_grpo
EVAL_SETS := --set dev=data/mini/dev.csv --set eval=data/mini/eval.csv \
             --set unseen_attack=data/mini/eval_unseen_attack.csv --set channel=data/mini/eval_channel.csv

demo: install $(foreach m,$(METHODS),runs/$(m)/model.safetensors)
	$(BIN)/rlspoof eval $(foreach m,$(METHODS),--model $(m)=runs/$(m)) $(EVAL_SETS) --out runs/demo_eval

$(CORPUS): | install
	$(BIN)/rlspoof data synth --size small --out data/mini

$(ENCODER): recipes/mini/pretrain.yaml $(CORPUS)
	$(BIN)/rlspoof pretrain recipes/mini/pretrain.yaml

runs/%/model.safetensors: recipes/mini/%.yaml $(ENCODER)
	$(BIN)/rlspoof train $<

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
