"""Write the emkit-made HDF5 fixtures of ``emkit_written/`` (run once with emkit's interpreter).

    .venv/bin/python tests/data/gmm/write_emkit_files.py

The objects are built from fixed values (``datasets.npz`` and ``gmm_stats.npz`` of this folder),
so writing them again gives the same datasets: ``tests/test_hdf5_gmm.py`` does exactly that and
compares with the kept files, so the layout cannot drift without the test noticing.
``check_emkit_files_in_reference.py`` (run with the reference's interpreter) loads the kept files
in bob.learn.em 3.3.1 and checks the values against ``emkit_written/expected.npz``.
"""

from __future__ import annotations

import pathlib

import numpy as np

HERE = pathlib.Path(__file__).parent
OUT = HERE / "emkit_written"


def _machine(GMMMachine, data, name, **kwargs):
    means = data[f"{name}__means0"]
    m = GMMMachine(len(means), **kwargs)
    m.means = means.copy()
    m.variances = data[f"{name}__variances0"].copy()
    m.weights = data[f"{name}__weights0"].copy()
    return m


def build_objects():
    """name -> (object, expected values).  Only fixed inputs: no training, no randomness."""
    from emkit.gmm import GMMMachine
    from emkit.stats import GMMStats

    data = np.load(HERE / "datasets.npz")
    stats_fx = np.load(HERE / "gmm_stats.npz")
    objects = {}

    ml = _machine(GMMMachine, data, "blobs", convergence_threshold=1e-6, max_fitting_steps=50,
                  update_variances=True)
    ml.variance_thresholds = 1e-4
    objects["gmm_ml"] = ml

    # D = 1, per-Gaussian-and-feature thresholds, one variance below its threshold (floored)
    ml_cd = _machine(GMMMachine, data, "d1", max_fitting_steps=9, update_weights=True)
    variances = ml_cd.variances.copy()
    variances[1, 0] = 1e-9
    ml_cd.variances = variances
    ml_cd.variance_thresholds = np.array([[1e-3], [2e-3], [3e-3]])
    objects["gmm_ml_thr_cd"] = ml_cd

    ubm = _machine(GMMMachine, data, "f32")
    ubm.variance_thresholds = np.full(ubm.means.shape[1], 1e-5)  # (D,)
    mp = GMMMachine(len(ubm.means), trainer="map", ubm=ubm, convergence_threshold=1e-7,
                    max_fitting_steps=7, random_state=3, update_means=True, update_variances=True,
                    update_weights=True, mean_var_update_threshold=1e-12, map_alpha=0.3,
                    map_relevance_factor=None)
    mp.means = ubm.means + 0.25
    mp.weights = np.array([0.5, 0.3, 0.2])
    objects["gmm_map"] = mp

    key = "blobs__acc"
    s = GMMStats(*stats_fx[f"{key}__sum_px"].shape)
    s.init_fields(float(stats_fx[f"{key}__ll"]), int(stats_fx[f"{key}__t"]),
                  stats_fx[f"{key}__n"].copy(), stats_fx[f"{key}__sum_px"].copy(),
                  stats_fx[f"{key}__sum_pxx"].copy())
    objects["stats"] = s
    return objects


def expected_values(objects) -> dict:
    out = {}
    for name, obj in objects.items():
        if name == "stats":
            out.update({f"stats__{k}": np.asarray(v) for k, v in [
                ("log_likelihood", obj.log_likelihood), ("t", obj.t), ("n", obj.n),
                ("sum_px", obj.sum_px), ("sum_pxx", obj.sum_pxx)]})
            continue
        out[f"{name}__means"] = np.asarray(obj.means)
        out[f"{name}__variances"] = np.asarray(obj.variances)
        out[f"{name}__weights"] = np.asarray(obj.weights)
        out[f"{name}__variance_thresholds"] = np.asarray(obj.variance_thresholds, dtype=float)
        out[f"{name}__flags"] = np.array([obj.update_means, obj.update_variances,
                                          obj.update_weights])
        out[f"{name}__max_fitting_steps"] = np.asarray(obj.max_fitting_steps)
    return out


def write_all(directory, objects=None) -> dict:
    """Write every object as ``<name>.h5`` into ``directory``; return name -> path."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    objects = build_objects() if objects is None else objects
    paths = {}
    for name, obj in objects.items():
        paths[name] = directory / f"{name}.h5"
        obj.save(paths[name])
    return paths


def main():
    objects = build_objects()
    write_all(OUT, objects)
    np.savez(OUT / "expected.npz", **expected_values(objects))
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")


if __name__ == "__main__":
    main()
