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

demo: install
	$(BIN)/rlspoof data synth --size small --out data/mini

bench: install
	$(BIN)/python benchmarks/baseline_lfcc.py --size small --out benchmarks/results/baseline_lfcc_small.json
	$(BIN)/python benchmarks/metrics_speed.py --out benchmarks/results/metrics_speed.json
	$(BIN)/python benchmarks/eval_throughput.py --out benchmarks/results/eval_throughput.json

lint: install
	$(BIN)/ruff check rlspoof tests benchmarks

clean:
	rm -rf $(VENV) data/mini .pytest_cache
