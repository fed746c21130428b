# Two entry points for a fresh machine (see README.md):
#   make tour   create .venv, install cnn_helper, run the tour on the default data
#   make test   create .venv, install cnn_helper with its test tools, run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: tour test venv figures

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

tour: venv
	$(PY) -m cnn_helper tour --out tour_figures

test: venv
	$(PY) -m pytest
