"""Shared test set-up: ``tests/`` mirrors the package (one folder per part of emkit); helpers
shared by several folders live in ``tests/support/`` (parity tolerances, fixture cases, file
writers, CLI helpers) and are importable by their module name from every test."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent / "support"))
