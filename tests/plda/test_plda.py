"""PLDA: EM invariants, brute-force Gaussian oracles for the log-likelihood and the LLR, recovery of
generating subspaces, persistence, conventions and bad input.

There is no reference implementation (bob.learn.em 3.x has no PLDA); correctness is shown against
densities built explicitly from the model's covariances with scipy.
"""

import pickle
import re

import numpy as np
import pytest
from _parity import assert_parity
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit.plda import PLDA, PLDAEnrollment, encode_labels

MODELS = ["two-covariance", "simplified", "full"]


def sample_full_plda(rng, D=6, rf=2, rg=2, K=60, per_class=5, sigma=(0.2, 0.5)):
    """Data from x = mu + F h_i + G w_ij + eps; returns X, y and the true parameters."""
    F = rng.normal(size=(D, rf)) * 2
    G = rng.normal(size=(D, rg))
    s = rng.uniform(*sigma, size=D)
    mu = rng.normal(size=D) * 3
    counts = np.full(K, per_class) if np.isscalar(per_class) else np.asarray(per_class)
    y = np.repeat(np.arange(K), counts)
    h = rng.normal(size=(K, rf))
    X = mu + (h @ F.T)[y] + rng.normal(size=(len(y), rg)) @ G.T + rng.normal(size=(len(y), D)) * np.sqrt(s)
    return X, y, dict(F=F, G=G, sigma=s, mu=mu)


def joint_logpdf(plda, vectors):
    """log p(vectors | one common class), from the stacked (n D)-dimensional Gaussian."""
    vectors = np.atleast_2d(vectors)
    n, D = vectors.shape
    B, W = plda.between_covariance_, plda.within_covariance_
    cov = np.kron(np.eye(n), W) + np.kron(np.ones((n, n)), B)
    return multivariate_normal(np.tile(plda.mean_, n), cov).logpdf(vectors.ravel())


def brute_llr(plda, enrol, probe):
    return joint_logpdf(plda, np.vstack([enrol, probe])) - joint_logpdf(plda, enrol) - joint_logpdf(plda, probe)


@pytest.fixture(scope="module")
def data():
    X, y, _ = sample_full_plda(np.random.default_rng(0), per_class=np.tile([2, 3, 5, 8], 15))
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {m: PLDA(model=m, dim_f=2, dim_g=2, max_iterations=30).fit(X, y) for m in MODELS}


# ---------------------------------------------------------------------------------------------
# EM
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("init", ["scatter", "random"])
def test_em_never_decreases_the_log_likelihood(data, model, init):
    X, y = data
    plda = PLDA(model=model, dim_f=2, dim_g=3, init_method=init, random_state=3, max_iterations=60,
                convergence_threshold=None).fit(X, y)
    ll = plda.log_likelihood_
    assert ll.shape == (61,) and plda.n_iter_ == 60
    assert np.all(np.diff(ll) >= -1e-12 * np.abs(ll[:-1])), np.diff(ll).min()
    assert ll[-1] > ll[0] + (1.0 if init == "random" else 1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_recorded_log_likelihood_is_the_brute_force_marginal_likelihood(data, fitted, model):
    X, y = data
    plda = fitted[model]
    brute = sum(joint_logpdf(plda, X[y == c]) for c in np.unique(y))
    assert plda.log_likelihood(X, y) == pytest.approx(brute, rel=1e-11)
    assert plda.log_likelihood_[-1] == pytest.approx(brute / len(X), rel=1e-11)


def test_default_dimensions(data):
    X, y = data
    full = PLDA(model="full", max_iterations=3).fit(X, y)
    assert full.F_.shape == (6, 6) and full.G_.shape == (6, 6) and full.sigma_.shape == (6,)
    few = PLDA(model="simplified", max_iterations=3).fit(X[:9], y[:9])  # 3 classes -> dim_f = 2
    assert few.F_.shape == (6, 2) and few.n_classes_ == 3


def test_convergence_threshold_stops_early(data):
    X, y = data
    plda = PLDA(model="simplified", dim_f=2, max_iterations=500, convergence_threshold=1e-8).fit(X, y)
    assert plda.converged_ and plda.n_iter_ < 500
    assert PLDA(max_iterations=0).fit(X, y).log_likelihood_.shape == (1,)


# ---------------------------------------------------------------------------------------------
# LLR scoring against the ratio of explicit Gaussian densities
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_llr_equals_ratio_of_explicit_gaussian_densities(data, fitted, model):
    X, _ = data
    plda = fitted[model]
    rng = np.random.default_rng(1)
    # model counts {1, 2, 3, 4}: more distinct counts than dim_f=2 (the general kernel path)
    enrol_sets = [X[rng.choice(len(X), k, replace=False)] for k in (1, 2, 3, 4, 2, 1)]
    probes = rng.normal(size=(5, X.shape[1])) * 2 + X.mean(0)
    got = plda.log_likelihood_ratio(enrol_sets, probes)
    want = np.array([[brute_llr(plda, e, p[None]) for p in probes] for e in enrol_sets])
    assert got.shape == (6, 5)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


@pytest.mark.parametrize("counts", [(3, 3, 3), (1, 2, 1, 2), (1, 2, 3, 4, 5)])
def test_every_kernel_path_and_multi_vector_probes(data, fitted, counts):
    """Same count for all models, few distinct counts (one-hot path), many (general path)."""
    X, _ = data
    plda = fitted["full"]
    rng = np.random.default_rng(sum(counts))
    enrol_sets = [rng.normal(size=(k, X.shape[1])) + X.mean(0) for k in counts]
    probe_sets = [rng.normal(size=(k, X.shape[1])) + X.mean(0) for k in (1, 2, 1, 3)]
    probe_enr = plda.enroll(np.vstack(probe_sets), np.repeat(np.arange(4), [1, 2, 1, 3]))
    got = plda.log_likelihood_ratio(enrol_sets, probe_enr)
    want = np.array([[brute_llr(plda, e, p) for p in probe_sets] for e in enrol_sets])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
    # the LLR of two sets is symmetric
    np.testing.assert_allclose(plda.log_likelihood_ratio(probe_enr, enrol_sets), got.T, atol=1e-10)


def test_enrolment_forms_blocks_and_out_agree(fitted):
    plda = fitted["two-covariance"]
    rng = np.random.default_rng(5)
    D = plda.n_features_in_
    E, P = rng.normal(size=(37, D)), rng.normal(size=(23, D))
    full = plda.log_likelihood_ratio(E, P)
    assert full.shape == (37, 23)
    np.testing.assert_allclose(plda.log_likelihood_ratio(list(E[:, None, :]), P), full, atol=1e-12)
    np.testing.assert_allclose(plda.log_likelihood_ratio(plda.enroll(E, np.arange(37)), P), full, atol=1e-12)
    blocked = clone(plda).set_params(block_size=5)
    blocked.__dict__.update({k: v for k, v in plda.__dict__.items() if k.endswith("_")})
    np.testing.assert_allclose(blocked.log_likelihood_ratio(E, P), full, atol=1e-12)
    out32 = np.zeros((37, 23), dtype=np.float32)
    assert plda.log_likelihood_ratio(E, P, out=out32) is out32
    np.testing.assert_allclose(out32, full, rtol=1e-6, atol=1e-5)
    # one model from several vectors: the mean and the count are all that matters
    one = plda.enroll(E[:4])
    assert len(one) == 1 and one.counts[0] == 4 and one.labels is None
    assert_parity(plda.log_likelihood_ratio(one, P), plda.log_likelihood_ratio([E[:4]], P),
                  tol=1e-12)


def test_scores_separate_same_from_different_class():
    rng = np.random.default_rng(2)
    X, y, true = sample_full_plda(rng, D=8, K=200, per_class=6)
    plda = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=50).fit(X, y)
    # 30 new classes from the training data's generator
    h = rng.normal(size=(30, 2))
    enrol = true["mu"] + np.repeat(h @ true["F"].T, 3, 0) + rng.normal(size=(90, 8)) * 0.5
    probe = true["mu"] + h @ true["F"].T + rng.normal(size=(30, 8)) * 0.5
    llr = plda.log_likelihood_ratio(plda.enroll(enrol, np.repeat(np.arange(30), 3)), probe)
    target, nontarget = np.diag(llr), llr[~np.eye(30, dtype=bool)]
    assert np.mean(target[:, None] > nontarget[None, :]) > 0.95


# ---------------------------------------------------------------------------------------------
# recovery of the generating parameters
# ---------------------------------------------------------------------------------------------

#: Tolerance on the largest principal angle between true and estimated subspaces (K = 1000
#: classes of 10 vectors, D = 10); observed: full F 0.32 deg, full G 0.76 deg, simplified F 0.41
#: deg, two-covariance (top-2 eigenvectors of S_b) 0.41 deg.
MAX_ANGLE_DEG = 2.0


@pytest.mark.parametrize("init", ["scatter", "random"])
def test_full_model_recovers_generating_subspaces(init):
    rng = np.random.default_rng(11)
    X, y, true = sample_full_plda(rng, D=10, rf=2, rg=3, K=1000, per_class=10, sigma=(0.1, 0.3))
    plda = PLDA(model="full", dim_f=2, dim_g=3, init_method=init, random_state=0, max_iterations=300,
                convergence_threshold=1e-9).fit(X, y)
    assert np.degrees(subspace_angles(plda.F_, true["F"])).max() < MAX_ANGLE_DEG
    assert np.degrees(subspace_angles(plda.G_, true["G"])).max() < MAX_ANGLE_DEG
    W_true = true["G"] @ true["G"].T + np.diag(true["sigma"])
    W = plda.within_covariance_
    assert np.linalg.norm(W - W_true) / np.linalg.norm(W_true) < 0.05
    B_true = true["F"] @ true["F"].T
    assert np.linalg.norm(plda.between_covariance_ - B_true) / np.linalg.norm(B_true) < 0.15
    np.testing.assert_allclose(plda.mean_, true["mu"], atol=0.2)


def test_simplified_and_two_covariance_recover_their_parameters():
    rng = np.random.default_rng(12)
    D, K, rf = 10, 1000, 2
    F = rng.normal(size=(D, rf)) * 2
    S = np.cov(rng.normal(size=(D, 3 * D)))
    y = np.repeat(np.arange(K), 10)
    X = (rng.normal(size=(K, rf)) @ F.T)[y] + rng.multivariate_normal(np.zeros(D), S, size=len(y)) + 1.0
    simplified = PLDA(model="simplified", dim_f=rf, max_iterations=200, convergence_threshold=1e-10).fit(X, y)
    assert np.degrees(subspace_angles(simplified.F_, F)).max() < MAX_ANGLE_DEG
    assert np.linalg.norm(simplified.sigma_ - S) / np.linalg.norm(S) < 0.05
    two_cov = PLDA(model="two-covariance", max_iterations=300, convergence_threshold=1e-10).fit(X, y)
    assert two_cov.F_.shape == (D, D) and two_cov.sigma_.shape == (D, D)
    w, U = np.linalg.eigh(two_cov.between_covariance_)
    assert w[-3] < 0.01 * w[-2]  # S_b is full rank in the model but close to rank 2 here
    assert np.degrees(subspace_angles(U[:, -2:], F)).max() < MAX_ANGLE_DEG
    assert np.linalg.norm(two_cov.within_covariance_ - S) / np.linalg.norm(S) < 0.05
    # the two models reach (nearly) the same likelihood: two-covariance contains simplified
    assert two_cov.log_likelihood_[-1] >= simplified.log_likelihood_[-1] - 1e-3


# ---------------------------------------------------------------------------------------------
# labels, pipeline, persistence, conventions
# ---------------------------------------------------------------------------------------------


def test_labels_of_any_hashable_type_give_the_same_model(data):
    X, y = data
    ref = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=5).fit(X, y)
    names = np.array([f"spk{c:03d}" for c in y])
    tuples = [("spk", int(c)) for c in y]
    mixed = [int(c) if c % 2 else ("odd", str(c)) for c in y]
    for labels in (names, tuples, mixed, list(y)):
        other = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=5).fit(X, labels)
        np.testing.assert_allclose(other.log_likelihood_, ref.log_likelihood_, rtol=1e-12)
        assert_parity(other.F_, ref.F_, tol=1e-9)
    codes, classes = encode_labels(["b", "a", "b", "c"], 4)
    assert classes == ["b", "a", "c"] and codes.tolist() == [0, 1, 0, 2]
    enr = ref.enroll(X[:4], ["b", "a", "b", "c"])
    assert enr.labels == ["b", "a", "c"] and enr.counts.tolist() == [2, 1, 1]
    np.testing.assert_allclose(enr.means[0], X[[0, 2]].mean(0))


@pytest.mark.parametrize("container", [np.array, list])
def test_nan_labels_are_refused_naming_y_and_the_index(data, container):
    X, y = data
    labels = y.astype(np.float64)
    labels[[7, 11]] = np.nan
    fitted = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=2).fit(X, y)
    for call in (PLDA().fit, fitted.log_likelihood, fitted.enroll):
        with pytest.raises(ValueError, match=re.escape("y[7] is NaN: class labels must not be NaN")):
            call(X, container(labels))


@pytest.mark.parametrize("model", ["two-covariance", "simplified", "full"])
@pytest.mark.parametrize("scale", [1e-6, 1e-4, 1e5])
def test_scores_do_not_depend_on_the_unit_of_the_data(model, scale):
    """The variance floor is relative to the data's variance (an absolute 1e-8 made every LLR
    about 0 for data of spread 1e-5)."""
    rng = np.random.RandomState(0)
    K, n, D = 10, 6, 4
    X = np.repeat(rng.randn(K, D) * 2, n, axis=0) + rng.randn(K * n, D)
    y = np.repeat(np.arange(K), n)

    def llr(a):
        p = PLDA(model=model, max_iterations=6, convergence_threshold=None).fit(X * a, y)
        return p.log_likelihood_ratio(p.enroll(X[:2 * n] * a, y[:2 * n]), X[-5:] * a)

    reference = llr(1.0)
    assert np.abs(reference).min() > 1.0
    np.testing.assert_allclose(llr(scale), reference, rtol=1e-9, atol=1e-9)


def test_empty_training_data_names_x_and_the_estimator():
    with pytest.raises(ValueError, match=re.escape("X has 0 sample(s) (shape=(0, 3)): PLDA needs at least 1")):
        PLDA().fit(np.empty((0, 3)), [])


def _eer(target, nontarget):
    thresholds = np.sort(np.concatenate([target, nontarget]))
    frr = np.searchsorted(np.sort(target), thresholds, side="left") / len(target)
    far = 1 - np.searchsorted(np.sort(nontarget), thresholds, side="left") / len(nontarget)
    i = np.argmin(np.abs(far - frr))
    return 0.5 * (far[i] + frr[i])


def test_lda_length_norm_plda_pipeline_separates_speakers():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    rng = np.random.default_rng(7)
    D, r = 30, 6
    F, G = rng.normal(size=(D, r)), rng.normal(size=(D, 8)) * 0.6

    def speakers(K, n):
        y = np.repeat(np.arange(K), n)
        X = 5 + (rng.normal(size=(K, r)) @ F.T)[y] + rng.normal(size=(K * n, 8)) @ G.T
        return X + rng.normal(size=X.shape) * 0.3, y

    X, y = speakers(80, 8)
    backend = make_pipeline(LinearDiscriminantAnalysis(n_components=12), Normalizer(), PLDA(max_iterations=20))
    backend.fit(X, y)
    Xev, yev = speakers(40, 6)
    enrol, probe = Xev.reshape(40, 6, D)[:, :3].reshape(-1, D), Xev.reshape(40, 6, D)[:, 3:].reshape(-1, D)
    pre, plda = backend[:-1], backend[-1]
    llr = plda.log_likelihood_ratio(plda.enroll(pre.transform(enrol), np.repeat(np.arange(40), 3)),
                                    pre.transform(probe))
    same = np.repeat(np.arange(40), 3)[None, :] == np.arange(40)[:, None]
    eer = _eer(llr[same], llr[~same])
    assert eer < 0.1, eer  # chance is 0.5


@pytest.mark.parametrize("model", MODELS)
def test_hdf5_round_trip(tmp_path, fitted, model):
    import h5py

    plda = fitted[model]
    path = tmp_path / "plda.h5"
    plda.save(path)
    loaded = PLDA.from_hdf5(path)
    assert loaded.get_params() == plda.get_params()
    for name in ("mean_", "F_", "sigma_", "log_likelihood_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(plda, name))
    assert (loaded.G_ is None) == (model != "full")
    assert (loaded.n_iter_, loaded.converged_, loaded.n_classes_) == (plda.n_iter_, plda.converged_, plda.n_classes_)
    rng = np.random.default_rng(0)
    E, P = rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    np.testing.assert_array_equal(loaded.log_likelihood_ratio(E, P), plda.log_likelihood_ratio(E, P))
    with h5py.File(path, "r") as f:
        assert f.attrs["emkit_class"] == "PLDA" and int(f.attrs["emkit_format_version"]) == 1
    other = PLDA(model="simplified").load(path)
    assert other.model == model


def test_hdf5_unfitted_and_wrong_class(tmp_path):
    import h5py

    path = tmp_path / "p.h5"
    PLDA(model="full", dim_f=3, convergence_threshold=None, random_state=4).save(path)
    loaded = PLDA.from_hdf5(path)
    assert loaded.get_params() == PLDA(model="full", dim_f=3, convergence_threshold=None, random_state=4).get_params()
    assert not hasattr(loaded, "mean_")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["emkit_class"] = "GMMMachine"
        f.attrs["emkit_format_version"] = 1
    with pytest.raises(ValueError, match="GMMMachine, not a PLDA"):
        PLDA.from_hdf5(tmp_path / "x.h5")


def test_clone_pickle_and_params(fitted):
    plda = fitted["full"]
    assert clone(plda).get_params() == plda.get_params()
    assert not hasattr(clone(plda), "mean_")
    again = pickle.loads(pickle.dumps(plda))
    E = np.random.default_rng(0).normal(size=(3, 6))
    np.testing.assert_array_equal(again.log_likelihood_ratio(E, E), plda.log_likelihood_ratio(E, E))
    assert PLDA(dim_f=3).set_params(model="full").model == "full"


@parametrize_with_checks([PLDA(max_iterations=3), PLDA(model="full", max_iterations=3),
                          PLDA(model="simplified", init_method="random", random_state=0, max_iterations=3)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_inputs_are_not_modified(data):
    X, y = data
    Xc, yc = X.copy(), y.copy()
    plda = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=2).fit(X, y)
    plda.log_likelihood_ratio(X[:5], X[5:9])
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_bad_training_input(data):
    X, y = data
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        PLDA().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match=re.escape(f"one label per sample ({len(X)}); got {len(X) - 1}")):
        PLDA().fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y"):
        PLDA().fit(X, None)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PLDA().fit(Xn, y)
    with pytest.raises(ValueError, match=r"dim_f must be <= n_features \(6\); got 7"):
        PLDA(model="simplified", dim_f=7).fit(X, y)
    with pytest.raises(ValueError, match=r"dim_g must be <= n_features \(6\); got 9"):
        PLDA(model="full", dim_g=9).fit(X, y)
    with pytest.raises(ValueError, match="model must be one of"):
        PLDA(model="prince").fit(X, y)
    with pytest.raises(ValueError, match="init_method must be one of"):
        PLDA(init_method="pca").fit(X, y)
    with pytest.raises(ValueError, match="within-class covariance W is not positive definite"):
        PLDA(variance_threshold=0.0).fit(np.column_stack([X, X[:, :1]]), y)  # collinear feature


def test_bad_scoring_input(fitted):
    plda = fitted["simplified"]
    good = np.zeros((2, 6))
    with pytest.raises(ValueError, match="models has 5 features"):
        plda.log_likelihood_ratio(np.zeros((2, 5)), good)
    with pytest.raises(ValueError, match="probes has 7 features"):
        plda.log_likelihood_ratio(good, np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"models\[1\] has 4 features"):
        plda.log_likelihood_ratio([np.zeros((2, 6)), np.zeros((3, 4))], good)
    with pytest.raises(ValueError, match="NaN"):
        plda.log_likelihood_ratio(good, np.full((1, 6), np.nan))
    with pytest.raises(ValueError, match="counts must all be >= 1"):
        plda.log_likelihood_ratio(PLDAEnrollment(good, np.array([1.0, 0.0])), good)
    with pytest.raises(ValueError, match=r"out must be a float ndarray of shape \(2, 2\)"):
        plda.log_likelihood_ratio(good, good, out=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X has 3 features"):
        plda.enroll(np.zeros((2, 3)))
    with pytest.raises(AttributeError, match="not fitted"):
        PLDA().log_likelihood_ratio(good, good)
