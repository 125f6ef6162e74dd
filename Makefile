PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench dist clean

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

# build/ first: setuptools copies into build/lib but never deletes there, so a module removed or
# renamed since the last build would still be in the wheel
dist: $(STAMP)
	rm -rf build dist
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
