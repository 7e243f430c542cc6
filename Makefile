# The two commands: `make run` (the main job) and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-fast clean

# make run needs the package; make test also its test extra (pytest, hypothesis, gradio, selenium).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# The main job: generate VTG-Synth, train the tiny VTG-LLM on CPU, evaluate it on the held-out
# split, compare with a constant-window baseline. The last line printed is the run folder.
run: $(STAMP)
	$(VENV)/bin/vtg run --out work_dirs/main

test: $(TEST_STAMP)
	$(PY) -m pytest -q

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
