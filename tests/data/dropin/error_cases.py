"""Bad (and unusual but valid) calls made the reference's way, for the error-type comparison
of ``tests/core/test_dropin_scripts.py``: ``cases(em)`` maps a name to a call; ``make_fixtures.py``
records what bob.learn.em 3.3.1 raised (or ``OK``) in ``outcomes.json``."""

import os
import tempfile

import numpy as np


def cases(em):
    """The calls, written against ``em`` (``bob.learn.em`` or ``emkit``)."""
    X = np.random.RandomState(0).normal(size=(40, 3))
    init = X[:2].copy()

    def ubm(C=2):
        g = em.GMMMachine(C)
        g.means, g.variances = X[:C].copy(), np.ones((C, 3))
        return g

    def stats():
        return ubm().acc_stats(X)

    st, y4 = [ubm().acc_stats(X[i::4]) for i in range(4)], [0, 0, 1, 1]

    def km():
        return em.KMeansMachine(2, init_method=init.copy())

    def saved(obj, name):
        path = os.path.join(tempfile.mkdtemp(), name)
        obj.save(path)
        return path

    return {
        "kmeans_0": lambda: em.KMeansMachine(0),
        "kmeans_init_str": lambda: em.KMeansMachine(2, init_method="foo").fit(X),
        "kmeans_init_int": lambda: em.KMeansMachine(2, init_method=5).fit(X),
        "kmeans_init_shape_k": lambda: em.KMeansMachine(2, init_method=X[:3]).fit(X),
        "kmeans_init_shape_d": lambda: em.KMeansMachine(2, init_method=X[:2, :2]).fit(X),
        "kmeans_1d": lambda: em.KMeansMachine(2).fit(X[:, 0]),
        "kmeans_nan": lambda: em.KMeansMachine(2).fit(np.vstack([X, [np.nan] * 3])),
        "kmeans_unfitted_transform": lambda: em.KMeansMachine(2).transform(X),
        "gmm_map_no_ubm": lambda: em.GMMMachine(2, trainer="map"),
        "gmm_ubm_mismatch": lambda: em.GMMMachine(3, ubm=ubm()),
        "gmm_both_none": lambda: (
            em.GMMMachine(2, convergence_threshold=None, max_fitting_steps=None)),
        "gmm_means_unset": lambda: em.GMMMachine(2).means,
        "gmm_variances_unset": lambda: em.GMMMachine(2).variances,
        "gmm_empty_fit": lambda: em.GMMMachine(2).fit(np.zeros((0, 3))),
        "gmm_nan_fit": lambda: em.GMMMachine(2).fit(np.vstack([X, [np.nan] * 3])),
        "gmm_init_no_data": lambda: em.GMMMachine(2).initialize_gaussians(None),
        "gmm_ll_wrong_dim": lambda: ubm().log_likelihood(X[:, :2]),
        "gmm_accstats_wrong_dim": lambda: ubm().acc_stats(X[:, :2]),
        "gmm_unfitted_ll": lambda: em.GMMMachine(2).log_likelihood(X),
        "stats_add_mismatch": lambda: em.GMMStats(2, 3) + em.GMMStats(3, 3),
        "stats_iadd_mismatch": lambda: em.GMMStats(2, 3).__iadd__(em.GMMStats(2, 4)),
        "ls_1d_models": lambda: em.linear_scoring(np.zeros(3), ubm(), [stats()]),
        "ls_empty_models": lambda: em.linear_scoring([], ubm(), [stats()]),
        "ls_bad_offsets": lambda: (
            em.linear_scoring(np.zeros((1, 2, 3)), ubm(), [stats()], np.zeros((1, 6)))),
        "isv_enroll_bare": lambda: em.ISVMachine(2, ubm=ubm()).enroll(stats()),
        "isv_score_bare": lambda: em.ISVMachine(2, ubm=ubm()).score(np.zeros((1, 6)), stats()),
        "isv_fit_len_mismatch": lambda: (
            em.ISVMachine(2, ubm=ubm()).fit_using_array(X[:4], [0, 1, 1])),
        "isv_fit_bad_labels": lambda: em.ISVMachine(2, ubm=ubm()).fit([stats(), stats()], [1, 2]),
        "isv_U_unset": lambda: em.ISVMachine(2).U,
        "isv_ubm_kwargs_none": lambda: em.ISVMachine(2).fit_using_array(X, np.arange(40) % 2),
        "jfa_enroll_bare": lambda: em.JFAMachine(2, 1, ubm=ubm()).enroll(stats()),
        "ivector_transform_frames": lambda: em.IVectorMachine(ubm()).transform(X),
        "ivector_zero_iter": lambda: em.IVectorMachine(ubm(), max_iterations=0).fit([stats()]),
        "ivstats_add": lambda: em.ivector.IVectorStats(2, 3, 2) + em.ivector.IVectorStats(2, 3, 3),
        "whitening_1": lambda: em.Whitening().fit(X[:1]),
        "whitening_singular": lambda: em.Whitening().fit(np.hstack([X, X[:, :1]])),
        "wccn_str_labels": lambda: em.WCCN().fit(X, ["a"] * 20 + ["b"] * 20),
        "wccn_singular": lambda: em.WCCN().fit(np.hstack([X, X[:, :1]]), np.arange(40) % 3),
        "wccn_unfitted": lambda: em.WCCN().transform(X),
        "gmmstats_from_missing_file": lambda: em.GMMStats.from_hdf5("/nonexistent/x.h5"),
        "gmm_from_missing_file": lambda: em.GMMMachine.from_hdf5("/nonexistent/x.h5"),
        "kmeans np.int64 K": lambda: em.KMeansMachine(np.int64(2), init_method=init.copy()).fit(X),
        "kmeans max_iter None": lambda: (
            em.KMeansMachine(2, init_method=init.copy(), max_iter=None).fit(X)),
        "kmeans max_iter float": lambda: (
            em.KMeansMachine(2, init_method=init.copy(), max_iter=20.0).fit(X)),
        "kmeans thr None": lambda: (
            em.KMeansMachine(2, init_method=init.copy(), convergence_threshold=None,
                max_iter=5).fit(X)),
        "kmeans thr int 0": lambda: (
            em.KMeansMachine(2, init_method=init.copy(), convergence_threshold=0).fit(X)),
        "kmeans init list": lambda: em.KMeansMachine(2, init_method=init.tolist()).fit(X),
        "kmeans X list": lambda: em.KMeansMachine(2, init_method=init.copy()).fit(X.tolist()),
        "kmeans X int": lambda: (
            em.KMeansMachine(2, init_method=init.copy()).fit((X * 10).astype(int))),
        "kmeans init_max_iter None": lambda: em.KMeansMachine(2, init_max_iter=None).fit(X),
        "gmm np.int64 C": lambda: em.GMMMachine(np.int64(2), k_means_trainer=km()).fit(X),
        "gmm steps float": lambda: (
            em.GMMMachine(2, max_fitting_steps=5.0, k_means_trainer=km()).fit(X)),
        "gmm steps None": lambda: (
            em.GMMMachine(2, max_fitting_steps=None, k_means_trainer=km()).fit(X)),
        "gmm thr 0 steps 3": lambda: (
            em.GMMMachine(2, convergence_threshold=0, max_fitting_steps=3,
                k_means_trainer=km()).fit(X)),
        "gmm weights list": lambda: em.GMMMachine(2, weights=[0.3, 0.7]),
        "gmm map rel int": lambda: (
            em.GMMMachine(2, trainer="map", ubm=ubm(), map_relevance_factor=4).fit(X)),
        "gmm map alpha arr": lambda: (
            em.GMMMachine(2, trainer="map", ubm=ubm(), map_relevance_factor=None,
                map_alpha=np.array([0.2, 0.8])).fit(X)),
        "gmm mvut 0": lambda: (
            em.GMMMachine(2, mean_var_update_threshold=0.0, k_means_trainer=km()).fit(X)),
        "gmm var thr vec": lambda: setattr(ubm(), "variance_thresholds", np.array([0.1, 0.1, 0.1])),
        "gmm var thr cd": lambda: setattr(ubm(), "variance_thresholds", np.full((2, 3), 0.1)),
        "gmm means int": lambda: setattr(ubm(), "means", np.zeros((2, 3), dtype=int)),
        "gmm variances negative": lambda: setattr(ubm(), "variances", -np.ones((2, 3))),
        "gmm weights zero": lambda: setattr(ubm(), "weights", np.array([0.0, 1.0])),
        "gmm weights unnormalised": lambda: setattr(ubm(), "weights", np.array([3.0, 3.0])),
        "gmm X float32": lambda: ubm().acc_stats(X.astype(np.float32)),
        "gmm X list": lambda: ubm().acc_stats(X.tolist()),
        "gmm X empty": lambda: ubm().acc_stats(np.zeros((0, 3))),
        "isv np.int64 r": lambda: (
            em.ISVMachine(np.int64(2), ubm=ubm(), em_iterations=np.int64(2)).fit(st, y4)),
        "isv rel int": lambda: (
            em.ISVMachine(2, ubm=ubm(), relevance_factor=4, em_iterations=1).fit(st, y4)),
        "isv random_state None": lambda: (
            em.ISVMachine(2, ubm=ubm(), random_state=None, em_iterations=1).fit(st, y4)),
        "isv labels np": lambda: (
            em.ISVMachine(2, ubm=ubm(), em_iterations=1).fit(st, np.array([0, 0, 1, 1]))),
        "isv em 0": lambda: em.ISVMachine(2, ubm=ubm(), em_iterations=0).fit(st, y4),
        "isv stats np array": lambda: (
            em.ISVMachine(2, ubm=ubm(), em_iterations=1).fit(np.array(st, dtype=object), [0, 0,
                1, 1])),
        "isv ubm_kwargs": lambda: (
            em.ISVMachine(2, ubm_kwargs=dict(n_gaussians=2, k_means_trainer=km()),
                em_iterations=1).fit_using_array(X.reshape(4, 10, 3), y4)),
        "isv r_U 0": lambda: em.ISVMachine(0, ubm=ubm()),
        "jfa r_V np": lambda: em.JFAMachine(2, np.int64(1), ubm=ubm(), em_iterations=1).fit(st, y4),
        "ivec dim_t np": lambda: (
            em.IVectorMachine(ubm(), dim_t=np.int64(2), max_iterations=1).fit(st)),
        "ivec sigma False": lambda: (
            em.IVectorMachine(ubm(), update_sigma=False, max_iterations=1).fit(st)),
        "ivec iter float": lambda: em.IVectorMachine(ubm(), max_iterations=2.0).fit(st),
        "ivec floor 0": lambda: (
            em.IVectorMachine(ubm(), variance_floor=0, max_iterations=1).fit(st)),
        "wccn pinv": lambda: em.WCCN(pinv=True).fit(X, np.arange(40) % 2),
        "wccn list": lambda: em.WCCN().fit(X.tolist(), list(np.arange(40) % 2)),
        "whitening pinv": lambda: em.Whitening(pinv=True).fit(X),
        "whitening fit_transform": lambda: em.Whitening().fit_transform(X),
        "wccn fit_transform": lambda: em.WCCN().fit_transform(X, np.arange(40) % 2),
        "stats like": lambda: em.GMMStats(2, 3, like=np.zeros(1)),
        "stats np sizes": lambda: em.GMMStats(np.int64(2), np.int64(3)),
        "whitening_singular_pinv": lambda: (
            em.Whitening(pinv=True).fit(np.hstack([X, X[:, :1]]))),
        "wccn_singular_pinv": lambda: (
            em.WCCN(pinv=True).fit(np.hstack([X, X[:, :1]]), np.arange(40) % 3)),
        "gmm_from_stats_file": lambda: em.GMMMachine.from_hdf5(saved(stats(), "s.h5")),
        "stats_from_gmm_file": lambda: em.GMMStats.from_hdf5(saved(ubm(), "g.h5")),
    }
