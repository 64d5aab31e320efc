# Two entry points: `make test` and `make demo`. Both create or reuse .venv in the repo.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EMOKD  := $(VENV)/bin/emokd
STAMP  := $(VENV)/.emokd-installed

.PHONY: test demo weights install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

weights: $(STAMP)
	$(EMOKD) weights fetch

test: weights
	$(PY) -m pytest -q --durations=25

demo: weights
	$(PY) -m emokd.demo

clean:
	rm -rf $(VENV) demo-output
