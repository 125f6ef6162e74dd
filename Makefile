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

# The wheel, then the sdist (with the tests and the files they read: MANIFEST.in), the latter
# through setuptools' own backend, which needs no build front-end but the build-system's
# setuptools >= 77: it is installed into a throwaway venv (from the package index, so the first
# build needs the network), not into $(VENV), where a newer setuptools would also turn on the
# slow wheel and sdist tests.  build/ goes first: setuptools copies into build/lib but never
# deletes there, so a module removed or renamed since the last build would still be in the
# wheel.  Build from a clean checkout: MANIFEST.in's grafts take every file under tests/, docs/,
# examples/, scripts/ and benchmarks/, untracked ones included.
dist: $(STAMP)
	rm -rf build dist
	$(PY) -m pip wheel --no-deps -w dist .
	tmp=$$(mktemp -d) && $(PYTHON) -m venv $$tmp \
	  && $$tmp/bin/python -m pip install --quiet 'setuptools>=77' \
	  && $$tmp/bin/python -c "from setuptools import build_meta; build_meta.build_sdist('dist')"; \
	  status=$$?; rm -rf $$tmp; exit $$status

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
