"""Reference-style user code, written once against a module ``em`` that is either
``bob.learn.em`` (3.3.1, by ``make_fixtures.py``) or ``emkit`` (by
``tests/core/test_dropin_scripts.py``): the drop-in promise is that only the import line changes.

Each function is a script as users wrote them with the reference's documented API and returns
its results as a dict of float64 arrays.  Random initialisations the reference makes with
library-specific streams (k-means||) are replaced by explicit initial centroids, as a user
wanting reproducible numbers would; ISV/JFA draw U/V from ``random_state`` and the i-vector
machine from numpy's global RNG seeded by the user, as in the reference's own tests.
"""

import numpy as np

C, D = 4, 3


def _frames(rng, centres, n, offset):
    """``n`` frames from the mixture of ``centres`` moved by a speaker/session ``offset``."""
    component = rng.randint(0, len(centres), size=n)
    return centres[component] + offset + rng.normal(0.0, 0.7, (n, centres.shape[1]))


def _corpus():
    rng = np.random.RandomState(3)
    centres = rng.normal(0.0, 4.0, (C, D))
    background = _frames(rng, centres, 400, 0.0)
    speakers = rng.normal(0.0, 1.0, (3, D))
    sessions, labels = [], []
    for speaker, offset in enumerate(speakers):
        for _ in range(4):
            sessions.append(_frames(rng, centres, 60, offset + rng.normal(0.0, 0.3, D)))
            labels.append(speaker)
    probes = [_frames(rng, centres, 50, speakers[s] + rng.normal(0.0, 0.3, D)) for s in (0, 1, 2)]
    return background, sessions, np.array(labels), probes


def gmm_pipeline(em):
    """k-means -> ML UBM (means, variances, weights) -> MAP adaptation -> statistics."""
    background, sessions, labels, probes = _corpus()
    init = background[[0, 100, 200, 300]].copy()
    out = {}
    kmeans = em.KMeansMachine(C, init_method=init.copy(), max_iter=50,
                              convergence_threshold=1e-7).fit(background)
    out["kmeans_centroids"] = kmeans.centroids_
    out["kmeans_variances"], out["kmeans_weights"] = \
        kmeans.get_variances_and_weights_for_each_cluster(background)
    out["kmeans_transform"] = kmeans.transform(probes[0][:5])
    out["kmeans_predict"] = kmeans.predict(probes[0][:5]).astype(np.float64)

    ubm = em.GMMMachine(C, trainer="ml", k_means_trainer=em.KMeansMachine(C, init_method=init),
                        update_means=True, update_variances=True, update_weights=True,
                        max_fitting_steps=200, convergence_threshold=1e-7)
    ubm.fit(background)
    out["ubm_means"], out["ubm_variances"], out["ubm_weights"] = \
        ubm.means, ubm.variances, ubm.weights
    out["ubm_log_likelihood"] = ubm.log_likelihood(probes[1][:7])
    out["ubm_log_weighted_likelihood"] = ubm.log_weighted_likelihood(probes[1][:7])

    adapted = em.GMMMachine(C, trainer="map", ubm=ubm, map_relevance_factor=4.0)
    adapted.fit(np.vstack(sessions[:4]))
    out["map_means"] = adapted.means
    one_pass = em.GMMMachine(C, trainer="map", ubm=ubm, max_fitting_steps=1,
                             map_relevance_factor=None, map_alpha=0.3, update_weights=True)
    one_pass.fit(sessions[4])
    out["map_alpha_means"], out["map_alpha_weights"] = one_pass.means, one_pass.weights

    stats = ubm.transform(sessions)  # one GMMStats per session
    total = em.GMMStats(C, D)
    for s in stats:
        total += s
    out["stats_n"], out["stats_sum_px"], out["stats_sum_pxx"] = total.n, total.sum_px, total.sum_pxx
    out["stats_log_likelihood"] = np.array([total.log_likelihood, total.t])
    single = ubm.acc_stats(probes[2])
    out["acc_stats_n"], out["acc_stats_sum_px"] = single.n, single.sum_px
    return out


def _trained(em):
    background, sessions, labels, probes = _corpus()
    init = background[[0, 100, 200, 300]].copy()
    ubm = em.GMMMachine(C, k_means_trainer=em.KMeansMachine(C, init_method=init),
                        update_variances=True, update_weights=True, max_fitting_steps=200,
                        convergence_threshold=1e-7).fit(background)
    return ubm, ubm.transform(sessions), labels, [ubm.acc_stats(p) for p in probes], sessions, probes


def factor_analysis(em):
    """ISV and JFA: train, enrol (statistics and frames), score (statistics and frames)."""
    ubm, stats, labels, probe_stats, sessions, probes = _trained(em)
    out = {}
    isv = em.ISVMachine(2, ubm=ubm, em_iterations=5, relevance_factor=4.0, random_state=0)
    isv.fit(stats, labels)
    out["isv_U"], out["isv_D"] = isv.U, isv.D
    model = isv.enroll([s for s, k in zip(stats, labels) if k == 0])
    out["isv_model"] = model
    out["isv_scores"] = np.array([isv.score(model, [p]) for p in probe_stats])
    frames_model = isv.enroll_using_array(np.vstack(sessions[4:8]))
    out["isv_model_from_frames"] = frames_model
    out["isv_score_from_frames"] = np.array([isv.score_using_array(frames_model, [probes[1]])])

    jfa = em.JFAMachine(2, 1, ubm=ubm, em_iterations=5, relevance_factor=4.0, random_state=0)
    jfa.fit(stats, labels)
    out["jfa_U"], out["jfa_V"], out["jfa_D"] = jfa.U, jfa.V, jfa.D
    latent_y, latent_z = jfa.enroll([s for s, k in zip(stats, labels) if k == 1])
    out["jfa_y"], out["jfa_z"] = latent_y, latent_z
    out["jfa_scores"] = np.array([jfa.score((latent_y, latent_z), [p]) for p in probe_stats])
    return out


def ivector_backend(em):
    """i-vectors (global RNG seeded by the user) -> whitening -> WCCN."""
    ubm, stats, labels, probe_stats, _, _ = _trained(em)
    out = {}
    np.random.seed(0)
    machine = em.IVectorMachine(ubm, dim_t=2, max_iterations=5).fit(stats)
    out["ivector_T"], out["ivector_sigma"] = machine.T, machine.sigma
    train = np.array(machine.transform(stats))
    out["ivectors"] = train
    out["ivector_probe"] = machine.project(probe_stats[0])
    whitening = em.Whitening().fit(train)
    white = whitening.transform(train)
    out["whitening_weights"], out["whitened"] = whitening.weights, white
    wccn = em.WCCN().fit(white, labels)
    out["wccn_weights"] = wccn.weights
    out["wccn_transform"] = np.array(wccn.transform(white))
    return out


def linear_scoring_forms(em):
    """``linear_scoring`` with every argument form the reference accepts."""
    ubm, stats, labels, probe_stats, sessions, _ = _trained(em)
    models = []
    for speaker in range(3):
        model = em.GMMMachine(C, trainer="map", ubm=ubm, max_fitting_steps=1)
        models.append(model.fit(np.vstack([f for f, k in zip(sessions, labels) if k == speaker])))
    means = np.array([m.means for m in models])
    rng = np.random.RandomState(5)
    offsets = rng.normal(0.0, 0.1, (len(probe_stats), C, D))
    out = {
        "machines": em.linear_scoring(models, ubm, probe_stats),
        "array_3d": em.linear_scoring(means, ubm, probe_stats),
        "list_of_arrays": em.linear_scoring(list(means), ubm, probe_stats),
        "single_model": em.linear_scoring(means[0], ubm, probe_stats),
        "single_stats": em.linear_scoring(means, ubm, probe_stats[0]),
        "normalised": em.linear_scoring(means, ubm, probe_stats, frame_length_normalization=True),
        "offsets_pcd": em.linear_scoring(means, ubm, probe_stats, offsets),
        "offsets_cd": em.linear_scoring(means, ubm, probe_stats, offsets[0]),
        "offsets_list": em.linear_scoring(means, ubm, probe_stats, list(offsets), True),
        "offsets_scalar": em.linear_scoring(means, ubm, probe_stats, 0.25),
        "map_machine_as_ubm": em.linear_scoring(models, models[0], probe_stats),
        "positional_keywords": em.linear_scoring(
            models_means=means, ubm=ubm, test_stats=probe_stats, test_channel_offsets=offsets,
            frame_length_normalization=True),
    }
    return out


def arrays_and_dask(em):
    """The same models from dask arrays and from frame arrays (``fit_using_array``)."""
    import dask.array as da

    background, sessions, labels, probes = _corpus()
    init = background[[0, 100, 200, 300]].copy()
    lazy = da.from_array(background, chunks=(130, D))
    out = {}
    kmeans = em.KMeansMachine(C, init_method=init.copy(), max_iter=50,
                              convergence_threshold=1e-8).fit(lazy)
    out["kmeans_centroids"] = kmeans.centroids_
    ubm = em.GMMMachine(C, k_means_trainer=em.KMeansMachine(C, init_method=init),
                        update_variances=True, update_weights=True,
                        convergence_threshold=1e-5).fit(lazy)
    out["ubm_means"], out["ubm_variances"], out["ubm_weights"] = \
        ubm.means, ubm.variances, ubm.weights
    out["ubm_log_likelihood"] = np.asarray(ubm.log_likelihood(da.from_array(probes[0])))
    # sessions of equal length as one (sessions, frames, D) array, as fit_using_array takes them
    isv = em.ISVMachine(2, ubm=ubm, em_iterations=3, random_state=1)
    isv.fit_using_array(np.array(sessions), labels)
    out["isv_U"] = isv.U
    out["isv_score"] = np.array([isv.score_using_array(isv.enroll_using_array(sessions[0]),
                                                        [probes[0]])])
    return out


def module_functions(em):
    """The module-level helpers: chunked k-means variances, log-likelihood reductions and the
    M-steps called the way the reference's ``gmm.m_step`` calls them."""
    background, sessions, _, probes = _corpus()
    kmeans = em.KMeansMachine(C, init_method=background[[0, 100, 200, 300]].copy()).fit(background)
    chunks = np.array_split(background, 3)
    partial = [em.kmeans.accumulate_indices_means_vars(c, kmeans.centroids_) for c in chunks]
    out = {}
    out["chunked_variances"], out["chunked_weights"] = \
        em.kmeans.reduce_indices_means_vars(partial)
    out["chunk0_means_sum"], out["chunk0_variances_sum"] = partial[0][1], partial[0][2]
    ubm, _, _, _, _, _ = _trained(em)
    lwl = em.gmm.log_weighted_likelihood(probes[0][:6], ubm)
    out["logaddexp_reduce"] = em.gmm.logaddexp_reduce(lwl)
    out["reduce_loglikelihood"] = em.gmm.reduce_loglikelihood(lwl)
    for trainer in ("ml", "map"):
        machine = em.GMMMachine(C, trainer=trainer, ubm=ubm, update_variances=trainer == "ml",
                                update_weights=True)
        step = em.gmm.map_gmm_m_step if machine.trainer == "map" else em.gmm.ml_gmm_m_step
        step(machine=machine, statistics=ubm.acc_stats(sessions[0]), update_means=True,
             update_variances=machine.update_variances, update_weights=True,
             mean_var_update_threshold=machine.mean_var_update_threshold,
             reynolds_adaptation=True, alpha=0.5, relevance_factor=4)
        out[f"{trainer}_step_means"], out[f"{trainer}_step_weights"] = \
            machine.means, machine.weights
        out[f"{trainer}_step_variances"] = machine.variances
    return out


SCRIPTS = [gmm_pipeline, factor_analysis, ivector_backend, linear_scoring_forms, arrays_and_dask,
           module_functions]
