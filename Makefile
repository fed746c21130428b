# Two entry points for a fresh machine (see README.md):
#   make tour   create .venv, install cnn_helper with the CPU-only TensorFlow (not its test
#               tools), run the tour on the embedded default data
#   make test   create .venv, install cnn_helper with its test tools, run every test (the lecture
#               notebooks twice: as they are and under a proxy for another CPU)
#   make docs   build the docs site into docs/site: the user guide (docs/guide) and the API reference
#               from the docstrings (open docs/site/index.html)
# and, after editing a lecture notebook:
#   make sync-notebooks   update its Markdown twin notebooks/text/<name>.md (jupytext)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: tour test venv figures debian-deps sync-notebooks docs

# The package with the CPU-only TensorFlow (the `cpu` extra: what the tour needs), then its test
# tools (Ray, Jupyter, Playwright, ...). setup.cfg itself lists no TensorFlow distribution, so that
# `pip install -e .` keeps the one a GPU machine or Colab has. tests/constraints.txt holds the
# TensorFlow release the committed notebooks were executed with.
$(VENV)/.package: setup.cfg pyproject.toml tests/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c tests/constraints.txt -e ".[cpu]"
	touch $@

$(VENV)/.installed: $(VENV)/.package
	$(PY) -m pip install --quiet -c tests/constraints.txt -e ".[cpu,test]"
	touch $@

venv: $(VENV)/.installed

tour: $(VENV)/.package
	$(PY) -m cnn_helper tour --data-source bundled --out tour_figures

# Debian packages the tests use: Chromium for tests/test_browser.py (Playwright, from the `test`
# extra, drives it; it never downloads a browser) and dataset-fashion-mnist (the full Fashion-MNIST
# for cnn_helper.data.load_fashion_mnist and the Ray tests). Installed only when missing and we are
# root; otherwise the tests say what is missing (and are skipped, except on CI).
debian-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing Debian packages:$$missing; as root: apt-get install$$missing"; \
	  fi; \
	fi

# Every test, then the lecture notebooks again under a proxy for another CPU, where TensorFlow sums
# in another order: Eigen's kernels instead of oneDNN's, one thread per op. nbval passes there
# because notebooks/conftest.py tolerates one unit in a printed number's last digit. (The two
# changes were two runs until the notebooks grew to nine: one run keeps the suite under 15 minutes.)
PROXY_CPU := TF_ENABLE_ONEDNN_OPTS=0 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
test: venv debian-deps
	$(PY) -m pytest
	$(PROXY_CPU) $(PY) -m pytest notebooks

# The docs site: the user guide (docs/guide/*.md) and the API reference (pdoc, from the
# docstrings), formulas by the vendored KaTeX; any warning is an error, as in tests/test_docs.py
docs: venv
	$(PY) docs/build_docs.py docs/site

# Rewrite the Markdown twin notebooks/text/<name>.md of every lecture notebook from the notebook
# (jupytext, paired by notebooks/jupytext.toml). One way: it never writes a notebook.
# tests/test_notebooks.py fails while a notebook and its twin differ.
sync-notebooks:
	@test -x $(VENV)/bin/jupytext || $(MAKE) venv
	$(VENV)/bin/jupytext --quiet --to text//md notebooks/*.ipynb
