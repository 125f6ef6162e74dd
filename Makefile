PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,audio]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/emkit demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/gmm_em.py
	$(PY) benchmarks/kmeans.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
