# Two commands do all of the set-up:
#   make course   creates .venv if needed, installs everything, runs every notebook headless
#   make test     creates .venv if needed, installs everything, runs the whole test suite
#   make student  writes the student edition (solutions replaced by stubs) into student/ (or DIR=...)
# Options: make course ARGS="--notebooks 01 03 -p num_epochs 5"   PYTHON=python3.12

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup course test lab benchmark student clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

course: $(STAMP)
	$(BIN)/python -m dae_utils.course run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-current-env $(ARGS)

lab: $(STAMP)
	env $$($(BIN)/python -c 'import dae_utils.threads as t; t.main()') $(BIN)/jupyter lab notebooks/

student: $(STAMP)
	$(BIN)/python -m dae_utils.course student --output-dir "$(or $(DIR),student)"

benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py $(ARGS)

clean:
	rm -rf $(VENV) runs checkpoints student .pytest_cache *.egg-info
