# Two entry points for a fresh machine (see README.md):
#   make tour   create .venv, install cnn_helper, run the tour on the default data
#   make test   create .venv, install cnn_helper with its test tools, run every test
#   make docs   build the API reference from the docstrings into docs/api (open docs/api/index.html)
# and, after editing a lecture notebook:
#   make sync-notebooks   update its Markdown twin notebooks/text/<name>.md (jupytext)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: tour test venv figures browser-deps sync-notebooks docs

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

tour: venv
	$(PY) -m cnn_helper tour --out tour_figures

# Debian's Chromium for tests/test_browser.py (Playwright, from the `test` extra, drives it; it
# never downloads a browser). Installed only when missing and we are root; otherwise the test says
# what is missing (and is skipped, except on CI).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: /usr/bin/chromium is missing; as root: apt-get install chromium (for tests/test_browser.py)"; \
	  fi; \
	fi

test: venv browser-deps
	$(PY) -m pytest

# The API reference (pdoc, from the docstrings; any warning is an error, as in tests/test_docs.py)
docs: venv
	$(PY) docs/build_api.py docs/api

# Rewrite the Markdown twin notebooks/text/<name>.md of every lecture notebook from the notebook
# (jupytext, paired by notebooks/jupytext.toml). One way: it never writes a notebook.
# tests/test_notebooks.py fails while a notebook and its twin differ.
sync-notebooks:
	@test -x $(VENV)/bin/jupytext || $(MAKE) venv
	$(VENV)/bin/jupytext --quiet --to text//md notebooks/*.ipynb
