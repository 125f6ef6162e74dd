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
# setuptools in the venv.  build/ goes first: setuptools copies into build/lib but never deletes
# there, so a module removed or renamed since the last build would still be in the wheel.
dist: $(STAMP)
	rm -rf build dist
	$(PY) -m pip wheel --no-deps -w dist .
	$(PY) -m pip install --quiet 'setuptools>=77'
	$(PY) -c "from setuptools import build_meta; build_meta.build_sdist('dist')"

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
