"""Fixtures for the k-means, GMM, linear-scoring parity and HDF5 tests, made with bob.learn.em 3.3.1

Run with the reference's interpreter (it writes next to this file)::

    /work/refenv/venv/bin/python tests/data/gmm/make_fixtures.py

The reference is used only as a numerical oracle: every run starts from initial parameters drawn
here with fixed seeds, and the results are stored in ``.npz`` files read by
``tests/test_parity_*.py``.  It also writes reference HDF5 files (``ref_*.h5``) and hand-made
legacy bob 2.x files (``legacy_*.h5``, layout of section 4.3 / 5.8 of the reference notes) for
``tests/test_hdf5_gmm.py``.

Two places where the fixture deliberately does *not* feed the reference exactly what emkit gets:

* k-means on float32 data: the reference sums the members of each cluster in float32
  (``np.sum`` over a float32 slice), a precision defect that emkit fixes by accumulating in float64.
  The reference is therefore fitted on ``X32.astype(np.float64)`` while the test gives emkit the
  float32 array itself.  (GMM code paths promote float32 to float64 exactly in the reference, so
  they are fed ``X32`` as it is.)
* MAP with ``update_variances``: emkit fixes the variance update (COMPATIBILITY item 1: the prior
  term is ``var_ubm + mu_ubm**2``, Reynolds et al. 2000 eq. 13, the reference adds ``mu_ubm``).
  For those runs the reference's MAP M-step is wrapped: it runs with ``update_variances=False``
  (so weights and means are the reference's) and the variances are then set with the corrected
  formula written out below, through the reference's flooring setter.  E-steps, alpha,
  convergence test and iteration count stay the reference's.  The statistics of the first MAP
  E-step are also stored so that a test can recompute the corrected one-step variances by hand.
"""

from __future__ import annotations

import itertools
import logging
import pathlib
import warnings

import h5py
import numpy as np

import bob.learn.em as bob
from bob.learn.em import gmm as bob_gmm
from bob.learn.em import kmeans as bob_kmeans

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")

HERE = pathlib.Path(__file__).parent

FLAGS = list(itertools.product([False, True], repeat=3))  # (means, variances, weights)


def flag_name(flags):
    return "".join("mvw"[i] if f else "x" for i, f in enumerate(flags))


# ----------------------------------------------------------------------------------------------
# data sets (seeded)
# ----------------------------------------------------------------------------------------------


def _mixture(rng, sizes, centers, scales):
    centers = np.asarray(centers, dtype=float)
    X = np.concatenate([rng.normal(c, s, size=(n, centers.shape[1]))
                        for n, c, s in zip(sizes, centers, scales)])
    return X[rng.permutation(len(X))]


def make_datasets():
    """name -> dict(X, X_test, X_map, means0, variances0, weights0)."""
    specs = {
        # uneven cluster sizes, offset from the origin
        "blobs": dict(seed=1, sizes=[200, 110, 60, 30],
                      centers=[[5, 5, 5], [8, 3, 6], [2, 7, 4], [6, 9, 1]],
                      scales=[1.0, 0.7, 1.2, 0.5]),
        "d1": dict(seed=2, sizes=[120, 80, 40], centers=[[-3.0], [0.5], [4.0]],
                   scales=[1.0, 0.6, 1.5]),
        "c1": dict(seed=3, sizes=[150], centers=[[1.0, -2.0, 3.0, 0.5]], scales=[1.3]),
        "f32": dict(seed=4, sizes=[150, 100, 50], centers=None, scales=[1.0, 0.8, 1.3], dim=5),
    }
    out = {}
    for name, s in specs.items():
        rng = np.random.RandomState(s["seed"])
        centers = s["centers"]
        if centers is None:
            centers = rng.uniform(-4, 4, size=(len(s["sizes"]), s["dim"]))
        centers = np.asarray(centers, dtype=float)
        C, D = centers.shape
        X = _mixture(rng, s["sizes"], centers, s["scales"])
        X_test = _mixture(rng, [max(n // 10, 2) for n in s["sizes"]], centers, s["scales"])
        # MAP data: another speaker, shifted centers, other proportions
        X_map = _mixture(rng, [max(n // 3, 5) for n in s["sizes"][::-1]], centers + 0.5,
                         s["scales"])
        means0 = centers + rng.normal(0, 0.3, size=(C, D))
        variances0 = rng.uniform(0.5, 2.0, size=(C, D))
        weights0 = rng.dirichlet(5 * np.ones(C))
        if name == "f32":
            X, X_test, X_map = (a.astype(np.float32) for a in (X, X_test, X_map))
        out[name] = dict(X=X, X_test=X_test, X_map=X_map, means0=means0, variances0=variances0,
                         weights0=weights0)
    return out


# ----------------------------------------------------------------------------------------------
# helpers around the reference
# ----------------------------------------------------------------------------------------------


class CallCounter:
    """Replace ``module.name`` by a wrapper counting calls (the fit loops look it up globally)."""

    def __init__(self, module, name, wrapper=None):
        self.module, self.name = module, name
        self.original = getattr(module, name)
        self.wrapper = wrapper
        self.calls = 0

    def __enter__(self):
        def counted(*args, **kwargs):
            self.calls += 1
            if self.wrapper is not None:
                return self.wrapper(self.original, *args, **kwargs)
            return self.original(*args, **kwargs)

        setattr(self.module, self.name, counted)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.original)


def reynolds_variances(machine, stats, alpha):
    """Reynolds et al. (2000) eq. 13, the corrected MAP variance emkit implements, written out."""
    ubm = machine.ubm
    n = stats.n
    prior_second = ubm.variances + ubm.means**2
    weak = n < machine.mean_var_update_threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        data_second = stats.sum_pxx / n[:, None]
    second = np.where(weak[:, None], prior_second,
                      alpha[:, None] * data_second + (1 - alpha[:, None]) * prior_second)
    return second - machine.means**2


def corrected_map_step(original, machine, statistics, update_means=True, update_variances=False,
                       update_weights=False, reynolds_adaptation=True, relevance_factor=4,
                       alpha=0.5, mean_var_update_threshold=np.finfo(float).eps):
    original(machine, statistics, update_means=update_means, update_variances=False,
             update_weights=update_weights, reynolds_adaptation=reynolds_adaptation,
             relevance_factor=relevance_factor, alpha=alpha,
             mean_var_update_threshold=mean_var_update_threshold)
    if update_variances:
        if reynolds_adaptation:
            a = statistics.n / (statistics.n + relevance_factor)
        elif hasattr(alpha, "ndim"):
            a = alpha
        else:
            a = np.full((machine.n_gaussians,), alpha)
        machine.variances = reynolds_variances(machine, statistics, a)  # floored by the setter


def ref_gmm(C, means, variances, weights, **kwargs):
    m = bob.GMMMachine(C, **kwargs)
    m.means = np.array(means, copy=True)
    m.variances = np.array(variances, copy=True)
    m.weights = np.array(weights, copy=True)
    return m


def put_stats(out, key, s):
    out[f"{key}__ll"] = np.asarray(s.log_likelihood, dtype=float)
    out[f"{key}__t"] = np.asarray(s.t)
    out[f"{key}__n"] = np.asarray(s.n)
    out[f"{key}__sum_px"] = np.asarray(s.sum_px)
    out[f"{key}__sum_pxx"] = np.asarray(s.sum_pxx)


def put_machine(out, key, m, n_iter=None):
    out[f"{key}__means"] = np.asarray(m.means)
    out[f"{key}__variances"] = np.asarray(m.variances)
    out[f"{key}__weights"] = np.asarray(m.weights)
    if n_iter is not None:
        out[f"{key}__n_iter"] = np.asarray(n_iter)


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------

KMEANS_STEPS = {"steps": 2, "conv": 200}
GMM_STEPS = {"steps": 3, "conv": 200}
MAP_STEPS = {"steps": 3, "conv": 200}
MAP_CONFIGS = {  # name -> (map_relevance_factor, map_alpha)
    "rel": (4, 0.5),
    "alpha": (None, 0.3),
}


def kmeans_fixtures(data):
    out = {}
    for name, d in data.items():
        X = d["X"].astype(np.float64)  # float32 case: see the module docstring
        C = len(d["means0"])
        for label, max_iter in KMEANS_STEPS.items():
            km = bob.KMeansMachine(C, init_method=np.array(d["means0"]), max_iter=max_iter)
            with CallCounter(bob_kmeans, "m_step") as counter:
                km.fit(X)
            assert np.isfinite(km.centroids_).all(), (name, "empty cluster in parity data")
            key = f"{name}__{label}"
            out[f"{key}__centroids"] = km.centroids_
            out[f"{key}__average_min_distance"] = np.asarray(km.average_min_distance)
            out[f"{key}__n_iter"] = np.asarray(counter.calls)
            if label == "conv":
                assert counter.calls < max_iter, (name, "k-means did not converge")
                out[f"{key}__transform_train"] = km.transform(d["X"])
                out[f"{key}__transform_test"] = km.transform(d["X_test"])
                out[f"{key}__transform_one"] = km.transform(d["X_test"][0])
                out[f"{key}__predict_train"] = km.predict(d["X"])
                out[f"{key}__predict_test"] = km.predict(d["X_test"])
                var, w = km.get_variances_and_weights_for_each_cluster(X)
                out[f"{key}__cluster_variances"] = var
                out[f"{key}__cluster_weights"] = w
    return out


#: Updating variances but not means uses the *old* means (quirk 14, kept): ``E_c[x^2] - mu_old^2``
#: goes negative as soon as mu_old is off the cluster's mean, the setter floors it to EPS and the
#: likelihood blows up (about -5e15 after one step on "blobs"), where neither implementation's
#: numbers mean anything.  Those two flag combinations therefore start from the reference's
#: converged ML means (variances inflated 1.5x, so that something happens), and skip "blobs", on
#: which even that start collapses a variance to the floor.
VARIANCE_WITHOUT_MEANS_SKIP = {"blobs"}


def gmm_ml_fixtures(data):
    out = {}
    for name, d in data.items():
        C = len(d["means0"])
        full = ref_gmm(C, d["means0"], d["variances0"], d["weights0"], update_variances=True,
                       update_weights=True)
        full.fit(d["X"])
        v_start = (full.means.copy(), 1.5 * full.variances, d["weights0"])
        out[f"{name}__v_start__means"], out[f"{name}__v_start__variances"] = v_start[:2]
        for flags in FLAGS:
            variance_without_means = flags[1] and not flags[0]
            if variance_without_means and name in VARIANCE_WITHOUT_MEANS_SKIP:
                continue
            start = (v_start if variance_without_means
                     else (d["means0"], d["variances0"], d["weights0"]))
            for label, steps in GMM_STEPS.items():
                m = ref_gmm(C, *start, max_fitting_steps=steps, update_means=flags[0],
                            update_variances=flags[1], update_weights=flags[2])
                with CallCounter(bob_gmm, "m_step") as counter:
                    m.fit(d["X"])
                if label == "conv":
                    assert counter.calls < steps, (name, flags, "ML did not converge")
                assert np.min(m.variances) > 1e-3, (name, flags, "a variance hit the floor")
                put_machine(out, f"{name}__{flag_name(flags)}__{label}", m, counter.calls)
    return out


def _map_machine(d, relevance, alpha, flags, steps):
    C = len(d["means0"])
    ubm = ref_gmm(C, d["means0"], d["variances0"], d["weights0"])
    return bob.GMMMachine(C, trainer="map", ubm=ubm, max_fitting_steps=steps,
                          update_means=flags[0], update_variances=flags[1], update_weights=flags[2],
                          map_relevance_factor=relevance, map_alpha=alpha)


def gmm_map_fixtures(data):
    out = {}
    for name, d in data.items():
        C = len(d["means0"])
        configs = dict(MAP_CONFIGS)
        configs["alpha_array"] = (None, np.linspace(0.2, 0.8, C))
        out[f"{name}__alpha_array"] = configs["alpha_array"][1]
        for cfg, (relevance, alpha) in configs.items():
            flag_set = FLAGS if cfg != "alpha_array" else [(True, True, True)]
            for flags in flag_set:
                if cfg == "rel" and flags[1] and not flags[0]:
                    # variances about the UBM means with alpha_c -> 1 for well-populated Gaussians
                    # go negative and are floored (blobs, c1, f32): covered by "alpha" instead
                    continue
                for label, steps in MAP_STEPS.items():
                    if label == "conv" and flags[1] and not flags[0]:
                        # without mean updates the variance iteration oscillates on blobs and
                        # never converges (and floors a variance at step 3): two steps are compared
                        continue
                    if flags[1] and not flags[0]:
                        steps = 2
                    m = _map_machine(d, relevance, alpha, flags, steps)
                    with CallCounter(bob_gmm, "map_gmm_m_step", corrected_map_step), \
                            CallCounter(bob_gmm, "m_step") as counter:
                        m.fit(d["X_map"])
                    if label == "conv":
                        assert counter.calls < steps, (name, cfg, flags, "MAP did not converge")
                    assert np.min(m.variances) > 1e-3, (name, cfg, flags, "a variance was floored")
                    key = f"{name}__{cfg}__{flag_name(flags)}__{label}"
                    put_machine(out, key, m, counter.calls)
        # one plain (unpatched) reference step, and the statistics it used, for the by-hand check
        for cfg, (relevance, alpha) in MAP_CONFIGS.items():
            m = _map_machine(d, relevance, alpha, (True, True, True), 1)
            put_stats(out, f"{name}__{cfg}__first_stats", bob_gmm.e_step(d["X_map"], m))
            m.fit(d["X_map"])
            put_machine(out, f"{name}__{cfg}__one_step_reference", m)
    return out


def sessions(d):
    X = d["X"]
    return [X[:17], X[17:18], X[18:58], X[:0]]


def gmm_stats_fixtures(data):
    out = {}
    for name, d in data.items():
        C = len(d["means0"])
        m = ref_gmm(C, d["means0"], d["variances0"], d["weights0"])
        X = d["X"]
        put_stats(out, f"{name}__acc", m.acc_stats(X))
        put_stats(out, f"{name}__e_step", bob_gmm.e_step(X, m))
        out[f"{name}__log_likelihood"] = m.log_likelihood(X)
        out[f"{name}__log_likelihood_test"] = m.log_likelihood(d["X_test"])
        out[f"{name}__log_likelihood_one"] = m.log_likelihood(X[0])
        out[f"{name}__log_weighted_likelihood"] = m.log_weighted_likelihood(X)
        for i, s in enumerate(m.transform(sessions(d))):
            put_stats(out, f"{name}__session{i}", s)
        for i, s in enumerate(m.transform(X[:5])):
            put_stats(out, f"{name}__row{i}", s)
    return out


LS_DATASETS = ["blobs", "d1"]


def linear_scoring_fixtures(data):
    out = {}
    for name in LS_DATASETS:
        d = data[name]
        C, D = d["means0"].shape
        rng = np.random.RandomState(100 + len(name))
        ubm = ref_gmm(C, d["means0"], d["variances0"], d["weights0"])
        models = d["means0"] + rng.normal(0, 0.2, size=(3, C, D))
        Xp = d["X_map"]
        probes = ubm.transform([Xp[:30], Xp[30:85], Xp[85:97], Xp[:0]])
        P = len(probes)
        offsets = {"none": 0, "scalar": 0.25, "cd": rng.normal(0, 0.1, size=(C, D)),
                   "pcd": rng.normal(0, 0.1, size=(P, C, D))}
        out[f"{name}__models"] = models
        for k, v in offsets.items():
            out[f"{name}__offset_{k}"] = np.asarray(v, dtype=float)
        for i, s in enumerate(probes):
            put_stats(out, f"{name}__probe{i}", s)
        machines = []
        for mu in models:
            mm = bob.GMMMachine(C)
            mm.means = mu.copy()
            mm.variances = d["variances0"].copy()
            machines.append(mm)
        map_machine = bob.GMMMachine(C, trainer="map", ubm=ubm)
        for fln in (False, True):
            f = f"fln{int(fln)}"
            for k, v in offsets.items():
                out[f"{name}__array__{k}__{f}"] = bob.linear_scoring(models, ubm, probes, v, fln)
            out[f"{name}__array__plist__{f}"] = bob.linear_scoring(
                models, ubm, probes, list(offsets["pcd"]), fln)
            out[f"{name}__machines__{f}"] = bob.linear_scoring(machines, ubm, probes, 0, fln)
            out[f"{name}__list__{f}"] = bob.linear_scoring(list(models), ubm, probes, 0, fln)
            out[f"{name}__single_model__{f}"] = bob.linear_scoring(models[0], ubm, probes, 0, fln)
            out[f"{name}__single_stats__{f}"] = bob.linear_scoring(models, ubm, probes[0], 0, fln)
            out[f"{name}__single_both__{f}"] = bob.linear_scoring(models[1], ubm, probes[2],
                                                                    offsets["cd"], fln)
            out[f"{name}__map_ubm__{f}"] = bob.linear_scoring(models, map_machine, probes,
                                                                offsets["pcd"], fln)
        # the documented flat (P, C*D) offsets do not broadcast in the reference (quirk 27)
        try:
            bob.linear_scoring(models, ubm, probes, offsets["pcd"].reshape(P, C * D))
            out[f"{name}__flat_offsets_fail_in_reference"] = np.asarray(False)
        except ValueError:
            out[f"{name}__flat_offsets_fail_in_reference"] = np.asarray(True)
    return out


# ----------------------------------------------------------------------------------------------
# HDF5
# ----------------------------------------------------------------------------------------------


def hdf5_fixtures(data):
    d = data["blobs"]
    C, D = d["means0"].shape
    out = {}
    thresholds = {"scalar": 1e-3, "d": np.linspace(1e-3, 3e-3, D),
                  "cd": np.linspace(1e-3, 5e-3, C * D).reshape(C, D)}
    for label, thr in thresholds.items():
        m = ref_gmm(C, d["means0"], d["variances0"], d["weights0"], max_fitting_steps=17,
                    convergence_threshold=1e-4, update_variances=True, update_weights=label == "d")
        m.variance_thresholds = thr
        m.fit(d["X"])
        path = HERE / f"ref_gmm_ml_thr_{label}.h5"
        with h5py.File(path, "w") as f:
            m.save(f)
        put_machine(out, f"ml_thr_{label}", m)
        out[f"ml_thr_{label}__variance_thresholds"] = np.asarray(m.variance_thresholds)
        out[f"ml_thr_{label}__flags"] = np.array([m.update_means, m.update_variances,
                                                  m.update_weights])
        out[f"ml_thr_{label}__max_fitting_steps"] = np.asarray(m.max_fitting_steps)
        back = bob.GMMMachine.from_hdf5(str(path))
        assert back.is_similar_to(m, 0, 0)

    ubm = ref_gmm(C, d["means0"], d["variances0"], d["weights0"])
    mp = bob.GMMMachine(C, trainer="map", ubm=ubm, max_fitting_steps=4, update_weights=True,
                        map_relevance_factor=None, map_alpha=0.3)
    mp.fit(d["X_map"])
    with h5py.File(HERE / "ref_gmm_map.h5", "w") as f:
        mp.save(f)
    put_machine(out, "map", mp)
    put_machine(out, "map_ubm", ubm)
    out["map__variance_thresholds"] = np.asarray(mp.variance_thresholds)
    out["map__flags"] = np.array([mp.update_means, mp.update_variances, mp.update_weights])
    out["map__max_fitting_steps"] = np.asarray(mp.max_fitting_steps)
    back = bob.GMMMachine.from_hdf5(str(HERE / "ref_gmm_map.h5"), ubm=ubm)
    out["map__reference_reloads_as"] = np.asarray(back.trainer)  # "ml": quirk 3

    stats = ubm.acc_stats(d["X"])
    with h5py.File(HERE / "ref_stats.h5", "w") as f:
        stats.save(f)
    put_stats(out, "stats", stats)

    # legacy bob 2.x layouts, built by hand
    lm = ref_gmm(C, d["means0"], d["variances0"], d["weights0"])
    lthr = np.linspace(1e-4, 2e-4, C * D).reshape(C, D)
    for scalar in (False, True):
        path = HERE / f"legacy_gmm{'_scalar' if scalar else ''}.h5"

        def num(v, dtype):
            return np.asarray(v, dtype=dtype) if scalar else np.asarray([v], dtype=dtype)

        with h5py.File(path, "w") as f:
            f["m_n_gaussians"] = num(C, np.int64)
            f["m_n_inputs"] = num(D, np.int64)
            f["m_weights"] = lm.weights
            for i in range(C):
                g = f.create_group(f"m_gaussians{i}")
                g["m_mean"] = lm.means[i]
                g["m_variance"] = lm.variances[i]
                g["m_variance_thresholds"] = lthr[i]
                g["g_norm"] = num(lm.g_norms[i], np.float64)
                g["m_n_inputs"] = num(D, np.int64)
        try:
            back = bob.GMMMachine.from_hdf5(str(path))
            key = f"legacy_gmm{'_scalar' if scalar else ''}"
            put_machine(out, key, back)
            out[f"{key}__variance_thresholds"] = np.asarray(back.variance_thresholds)
        except Exception as e:  # the reference cannot read scalar fields (quirk 30)
            out["legacy_gmm_scalar__reference_error"] = np.asarray(type(e).__name__)
    put_machine(out, "legacy_source", lm)
    out["legacy_source__variance_thresholds"] = lthr

    ls = ubm.acc_stats(d["X_test"])
    for scalar in (False, True):
        path = HERE / f"legacy_stats{'_scalar' if scalar else ''}.h5"

        def num(v, dtype):
            return np.asarray(v, dtype=dtype) if scalar else np.asarray([v], dtype=dtype)

        with h5py.File(path, "w") as f:
            f["n_gaussians"] = num(C, np.int64)
            f["n_inputs"] = num(D, np.int64)
            f["log_liklihood"] = num(ls.log_likelihood, np.float64)  # (sic)
            f["T"] = num(ls.t, np.int64)
            f["n"] = ls.n
            # flat supervectors in the scalar variant: the reader reshapes them
            f["sumPx"] = ls.sum_px.reshape(-1) if scalar else ls.sum_px
            f["sumPxx"] = ls.sum_pxx.reshape(-1) if scalar else ls.sum_pxx
        back = bob.GMMStats.from_hdf5(str(path))
        key = f"legacy_stats{'_scalar' if scalar else ''}"
        put_stats(out, key, back)
        out[f"{key}__ll_shape"] = np.asarray(np.shape(back.log_likelihood))
    put_stats(out, "legacy_stats_source", ls)
    return out


def main():
    data = make_datasets()
    flat = {}
    for name, d in data.items():
        for k, v in d.items():
            flat[f"{name}__{k}"] = v
    np.savez(HERE / "datasets.npz", **flat)
    for fname, fn in [("kmeans.npz", kmeans_fixtures), ("gmm_ml.npz", gmm_ml_fixtures),
                      ("gmm_map.npz", gmm_map_fixtures), ("gmm_stats.npz", gmm_stats_fixtures),
                      ("linear_scoring.npz", linear_scoring_fixtures), ("hdf5.npz", hdf5_fixtures)]:
        out = fn(data)
        np.savez(HERE / fname, **out)
        print(f"{fname}: {len(out)} arrays")


if __name__ == "__main__":
    main()
