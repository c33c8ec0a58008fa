# Two commands do all of the set-up:
#   make course   creates .venv if needed, installs everything, runs every notebook headless
#   make test     creates .venv if needed, installs everything, runs the whole test suite
#   make student  writes the student edition (solutions replaced by stubs) into student/ (or DIR=...)
#   make checkpoints DIR=...   trains every model the notebooks use into DIR, once, for a class to share
#   make grade DIR=... ASSIGNMENT=...   autogrades a class's submissions in parallel (WORKERS=N, SCHEDULER=tcp://...)
#   make site     builds the course site (the notebooks with their committed outputs, and the pages in book/)
#                 into site/, offline; open site/index.html
# Options: make course ARGS="--notebooks 01 03 -p num_epochs 5"   PYTHON=python3.12

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

SITE_STAMP := $(VENV)/.site-installed

.PHONY: setup course test lab benchmark student checkpoints grade site clean

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
	$(BIN)/python -m dae_utils.course student --output-dir "$(or $(DIR),student)" $(if $(CORE),--core)

# Notebook 3 trains the course's model (notebooks 4 and 5 load it), notebook 6 its seven others, notebook 7 the VAE.
checkpoints: $(STAMP)
	$(BIN)/python -m dae_utils.course run --notebooks 03 06 07 -p checkpoint_dir "$(or $(DIR),checkpoints)" $(ARGS)

# nbgrader's autograde, N submissions at once, resumable, each in a read-only sandbox (book/instructors.md).
grade: $(STAMP)
	$(BIN)/python -m dae_utils.course grade --course-dir "$(DIR)" --assignment $(ASSIGNMENT) \
		$(if $(WORKERS),--workers $(WORKERS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(ARGS)

# The site's packages are an extra, so the two set-up commands stay lean. Every Sphinx warning is an error.
$(SITE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[site]"
	touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html -d site/.doctrees -c book . site
	@echo "The course site is in site/: open site/index.html in a browser."

benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py $(ARGS)

clean:
	rm -rf $(VENV) runs checkpoints student site .pytest_cache *.egg-info
