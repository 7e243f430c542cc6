# The two commands: `make run` (the main job) and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job: generate VTG-Synth, train the tiny VTG-LLM on CPU, evaluate it on the held-out
# split, compare with a constant-window baseline. The last line printed is the run folder.
run: $(STAMP)
	$(VENV)/bin/vtg run --out work_dirs/main

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
