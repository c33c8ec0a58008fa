# Two commands do all of the set-up:
#   make course   creates .venv if needed, installs everything, runs every notebook headless
#   make test     creates .venv if needed, installs everything, runs the whole test suite
#   make student  writes the student edition (solutions replaced by stubs) into student/ (or DIR=...)
#   make checkpoints DIR=...   trains every model the notebooks use into DIR, once, for a class to share
# Options: make course ARGS="--notebooks 01 03 -p num_epochs 5"   PYTHON=python3.12

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup course test lab benchmark student checkpoints clean

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

# Notebook 3 trains the course's model (notebooks 4 and 5 load it), notebook 6 its seven others, notebook 7 the VAE.
checkpoints: $(STAMP)
	$(BIN)/python -m dae_utils.course run --notebooks 03 06 07 -p checkpoint_dir "$(or $(DIR),checkpoints)" $(ARGS)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py $(ARGS)

clean:
	rm -rf $(VENV) runs checkpoints student .pytest_cache *.egg-info
