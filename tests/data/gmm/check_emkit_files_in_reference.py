"""Load the emkit-written files of ``emkit_written/`` in bob.learn.em 3.3.1 and check their values.

Run with the reference's interpreter (exit status 0 and a last line "all emkit files OK")::

    /work/refenv/venv/bin/python tests/data/gmm/check_emkit_files_in_reference.py

Expected values come from ``emkit_written/expected.npz`` (written with the files by
``write_emkit_files.py``).  Values must be identical (the files store float64 as written).
The reference reloads every machine as "ml" (its quirk 3) and ignores emkit's extra groups.
"""

from __future__ import annotations

import logging
import pathlib
import warnings

import h5py
import numpy as np

import bob.learn.em as bob

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")

HERE = pathlib.Path(__file__).parent / "emkit_written"


def same(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert np.array_equal(a, b), (what, a, b)


def check_machine(name, expected):
    path = HERE / f"{name}.h5"
    loaded = {
        "from_hdf5(path)": bob.GMMMachine.from_hdf5(str(path)),
    }
    with h5py.File(path, "r") as f:
        loaded["from_hdf5(h5py.File)"] = bob.GMMMachine.from_hdf5(f)
    m = bob.GMMMachine(1)
    m.load(str(path))
    loaded["load(path)"] = m
    for how, m in loaded.items():
        what = f"{name} {how}"
        same(m.means, expected[f"{name}__means"], f"{what} means")
        same(m.variances, expected[f"{name}__variances"], f"{what} variances")
        same(m.weights, expected[f"{name}__weights"], f"{what} weights")
        same(m.variance_thresholds, expected[f"{name}__variance_thresholds"],
             f"{what} variance_thresholds")
        same([m.update_means, m.update_variances, m.update_weights], expected[f"{name}__flags"],
             f"{what} update flags")
        same(m.max_fitting_steps, expected[f"{name}__max_fitting_steps"],
             f"{what} max_fitting_steps")
        assert m.n_gaussians == len(expected[f"{name}__weights"]), what
        assert m.trainer == "ml", (what, m.trainer)  # the reference's own reading (quirk 3)
        # the loaded machine is usable: its likelihood is finite on a sample at its means
        assert np.all(np.isfinite(m.log_likelihood(m.means))), what
    print(f"{name}: OK ({', '.join(loaded)})")


def check_stats(expected):
    path = HERE / "stats.h5"
    s1 = bob.GMMStats.from_hdf5(str(path))
    s2 = bob.GMMStats(1, 1)
    s2.load(str(path))
    for how, s in {"from_hdf5": s1, "load": s2}.items():
        what = f"stats {how}"
        same(s.log_likelihood, expected["stats__log_likelihood"], f"{what} log_likelihood")
        same(s.t, expected["stats__t"], f"{what} t")
        same(s.n, expected["stats__n"], f"{what} n")
        same(s.sum_px, expected["stats__sum_px"], f"{what} sum_px")
        same(s.sum_pxx, expected["stats__sum_pxx"], f"{what} sum_pxx")
        assert s.shape == expected["stats__sum_px"].shape, what
    print("stats: OK (from_hdf5, load)")


def main():
    expected = np.load(HERE / "expected.npz")
    for name in ("gmm_ml", "gmm_ml_thr_cd", "gmm_map"):
        check_machine(name, expected)
    check_stats(expected)
    # the MAP file's prior, stored by emkit in the group "ubm", has the same layout
    with h5py.File(HERE / "gmm_map.h5", "r") as f:
        ubm = bob.GMMMachine.from_hdf5(f["ubm"])
    assert ubm.means.shape == expected["gmm_map__means"].shape
    same(ubm.means + 0.25, expected["gmm_map__means"], "gmm_map ubm means")
    print("gmm_map/ubm: OK")
    print("all emkit files OK")


if __name__ == "__main__":
    main()
