# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

.PHONY: install test test-fast demo medium bench lint clean

install: $(STAMP)

# Re-installs only when pyproject.toml or constraints.txt changes; the tested versions come from
# constraints.txt (pip takes torch's CPU wheel from the machine).
$(STAMP): pyproject.toml constraints.txt
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)  # a venv cut short is rebuilt
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,deepspeed,onnx]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import rlspoof, torch, transformers, trl, soundfile"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

# The edit loop: everything but the tests marked slow (training 20+ steps, or processes).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# The demo pipeline of the source papers, as make dependencies (each stage reruns only when its
# inputs change), on the built-in SYNTHETIC corpus:
#   corpus -> SSL pre-training (bonafide speech) -> supervised post-training (old domain, seen
#   attack families) -> embeddings before/after post-training -> `rlspoof compare`: SFT and GRPO
#   (COMPARE=compare_all: also hybrid, mix-frame SFT, LoRA and MLDG-LoRA) fine-tune the
#   post-trained checkpoint on the target domain (one seed here; the recipe has three), scored on
#   target, old and out-of-domain sets with forgetting against the post-trained checkpoint ->
#   runs/compare/report.md.
# PROFILE picks the recipes (recipes/$(PROFILE)), the corpus (data/$(PROFILE)) and the outputs:
#   mini    `make demo`: the small corpus, runs/
#   medium  `make medium`: the medium corpus, twice the pre- and post-training steps, 300
#           fine-tuning steps, three seeds; runs/medium/
# COMPARE picks the compare recipe (recipes/$(PROFILE)/$(COMPARE).yaml): in mini, `compare` is SFT
#   against GRPO (the demo's budget) and `compare_all` every method (the README's headline table:
#   `make demo COMPARE=compare_all DEMO_SEEDS=1234,1,2`); medium's `compare` has every method.
PROFILE     ?= mini
SIZE_mini   := small
SIZE_medium := medium
RUNS_mini   := runs
RUNS_medium := runs/medium
SIZE        := $(SIZE_$(PROFILE))
RUNS        := $(RUNS_$(PROFILE))
ifeq ($(SIZE),)
$(error PROFILE must be mini or medium, got '$(PROFILE)')
endif
CORPUS      := data/$(PROFILE)/corpus.json
ENCODER     := $(RUNS)/pretrained/encoder/model.safetensors
POSTTRAINED := $(RUNS)/posttrained/model.safetensors
EMBEDDINGS  := $(RUNS)/embeddings/embeddings.png
DEMO_SEEDS ?= 1234
COMPARE    ?= compare
# Each stage's wall time is appended here (stage<TAB>seconds); the demo ends by printing the
# latest time of every stage (cached stages keep the time of the run that made them).
TIMES := $(RUNS)/stage_times.tsv
timed = @echo '$(strip $(2))'; mkdir -p $(RUNS); start=$$(date +%s); $(2) && printf '%s\t%s\n' "$(1)" "$$(( $$(date +%s) - start ))" >> $(TIMES)

demo: install $(POSTTRAINED) $(EMBEDDINGS)
	$(call timed,compare,$(BIN)/rlspoof compare recipes/$(PROFILE)/$(COMPARE).yaml --seeds $(DEMO_SEEDS))
	@echo "Wall time per stage (s; $(TIMES)):"; awk -F'\t' '!($$1 in t) {order[++n] = $$1} \
		{t[$$1] = $$2} END {for (i = 1; i <= n; i++) printf "  %-12s %6d\n", order[i], t[order[i]]}' $(TIMES)

medium:
	$(MAKE) demo PROFILE=medium DEMO_SEEDS=1234,1,2

$(CORPUS): $(wildcard rlspoof/data/synth/*.py) | install
	$(call timed,corpus,$(BIN)/rlspoof data synth --size $(SIZE) --out data/$(PROFILE))

$(ENCODER): recipes/$(PROFILE)/pretrain.yaml $(CORPUS)
	$(call timed,pretrain,$(BIN)/rlspoof pretrain recipes/$(PROFILE)/pretrain.yaml --overwrite)

$(POSTTRAINED): recipes/$(PROFILE)/posttrain.yaml $(ENCODER)
	$(call timed,posttrain,$(BIN)/rlspoof train recipes/$(PROFILE)/posttrain.yaml --overwrite)

$(EMBEDDINGS): $(POSTTRAINED)
	$(call timed,embeddings,$(BIN)/rlspoof embed --model pretrained=$(RUNS)/pretrained/encoder \
		--model posttrained=$(RUNS)/posttrained --manifest data/$(PROFILE)/eval.csv --out $(RUNS)/embeddings)

bench: install
	$(BIN)/python benchmarks/baseline_lfcc.py --size small --out benchmarks/results/baseline_lfcc_small.json
	$(BIN)/python benchmarks/metrics_speed.py --out benchmarks/results/metrics_speed.json
	$(BIN)/python benchmarks/eval_throughput.py --out benchmarks/results/eval_throughput.json
	$(BIN)/python benchmarks/grpo_step_time.py --preset tiny --out benchmarks/results/grpo_step_time_tiny_cpu.json
	$(BIN)/python benchmarks/grpo_estimators.py --out benchmarks/results/grpo_estimators.json

lint: install
	$(BIN)/ruff check rlspoof tests benchmarks

clean:
	rm -rf $(VENV) data/mini data/medium runs .pytest_cache
