"""The contracts every estimator builds on: fitted-array storage, the persistence registry and
the EM loop (run_em, resumable_em's n_iter_/converged_/ConvergenceWarning)."""

import inspect
import pickle
import re
import warnings

import h5py
import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import emkit
from emkit._checkpoint import resumable_em
from emkit._em import run_em
from emkit._fitted import FittedArray, PicklesFitted, derived
from emkit.io import InvalidFileError


class _Model(PicklesFitted, BaseEstimator):  # (as the estimators pickle their fitted arrays)
    A = FittedArray("an array (n,)")
    B = FittedArray("another")

    def __init__(self):
        self.calls = 0

    def norm(self):
        def compute():
            self.calls += 1
            return float(np.linalg.norm(self.A))
        return derived(self, "norm", compute)


def test_fitted_array_is_a_read_only_copy_and_missing_is_not_fitted():
    m = _Model()
    with pytest.raises(NotFittedError, match="_Model has no A yet"):
        m.A
    source = np.array([3, 4])
    m.A = source
    source[0] = 0
    assert m.A.dtype == np.float64 and m.A[0] == 3
    with pytest.raises(ValueError, match="read-only"):
        m.A[0] = 1


def test_derived_constants_are_cached_until_any_fitted_array_is_assigned():
    m = _Model()
    m.A = [3.0, 4.0]
    assert m.norm() == 5.0 and m.norm() == 5.0 and m.calls == 1
    m.B = [1.0]
    assert m.norm() == 5.0 and m.calls == 2
    m.A = [6.0, 8.0]
    assert m.norm() == 10.0 and m.calls == 3


def test_pickle_drops_the_cache_and_keeps_arrays_read_only():
    m = _Model()
    m.A = [3.0, 4.0]
    m.norm()
    back = pickle.loads(pickle.dumps(m))
    assert "_derived_cache" not in back.__dict__
    assert not back.A.flags.writeable and back.norm() == 5.0


# -- persistence registry -------------------------------------------------------------------------


def test_save_and_load_dispatch_on_the_stamp(tmp_path):
    stats = emkit.GMMStats.from_arrays([1.0, 2.0], [[1.0], [2.0]], t=3)
    emkit.io.save(stats, tmp_path / "s.h5")
    back = emkit.io.load(tmp_path / "s.h5")
    assert type(back) is emkit.GMMStats and back == stats
    with pytest.raises(InvalidFileError, match=re.escape("holds a GMMStats, not a GMMMachine")):
        emkit.io.load(tmp_path / "s.h5", expected=emkit.GMMMachine)


def test_unknown_or_missing_stamps_are_refused_without_echo(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["emkit_class"] = "SomethingElse"
    with pytest.raises(InvalidFileError, match="holds an emkit SomethingElse, which this emkit cannot load"):
        emkit.io.load(path)
    with h5py.File(path, "w") as f:
        f.attrs["emkit_class"] = "rm -rf /; " * 20
    with pytest.raises(InvalidFileError, match="does not name a class") as info:
        emkit.io.load(path)
    assert "rm -rf" not in str(info.value)
    with h5py.File(path, "w") as f:
        f["data"] = 1
    with pytest.raises(InvalidFileError, match="holds no object emkit can load"):
        emkit.io.load(path)


def test_saving_an_unregistered_class_names_it(tmp_path):
    with pytest.raises(TypeError, match="emkit cannot save a _Model"):
        emkit.io.save(_Model(), tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


# -- the EM loop ----------------------------------------------------------------------------------


def _loop(values):
    """e_step/m_step closures whose m_step returns the next of ``values``."""
    it = iter(values)
    return (lambda: None), (lambda _: next(it))


@pytest.mark.parametrize("values, threshold, cap, n_iter, converged", [
    ([1.0, 2.0, 2.0000001, 5.0], 1e-3, 10, 3, True),   # the first value is never tested
    ([1.0, 2.0, 3.0, 4.0], 1e-3, 3, 3, False),          # stopped at the cap
    ([0.0, 0.0], 1e-3, 5, 2, True),                     # equal zeros count as converged
    ([1.0, 1.0, 1.0], None, 3, 3, False),               # no threshold: runs to the cap
])
def test_run_em_stopping_rule(values, threshold, cap, n_iter, converged):
    e, m = _loop(values)
    result = run_em(e, m, max_iterations=cap, convergence_threshold=threshold, name="t")
    assert (result.n_iter, result.converged) == (n_iter, converged)
    assert result.history == values[:n_iter]


def test_run_em_counts_changes_within_the_rounding_as_converged():
    values = [3e-33, 2.5e-32, 0.0, 2.5e-32]  # distances of points on their centroids, but for rounding
    e, m = _loop(values)
    result = run_em(e, m, max_iterations=4, convergence_threshold=1e-5, name="t", rounding=lambda: 1e-30)
    assert (result.n_iter, result.converged) == (2, True)
    e, m = _loop(values)
    result = run_em(e, m, max_iterations=4, convergence_threshold=1e-5, name="t")
    assert (result.n_iter, result.converged) == (4, False)


def test_run_em_refuses_non_finite_values_and_no_stopping_rule():
    e, m = _loop([1.0, float("nan")])
    with pytest.raises(FloatingPointError, match="became nan at iteration 2"):
        run_em(e, m, max_iterations=5, convergence_threshold=1e-3, name="t")
    with pytest.raises(ValueError, match="Either or both"):
        run_em(e, m, max_iterations=None, convergence_threshold=None, name="t")


class _Estimator:
    checkpoint = None


@pytest.mark.parametrize("values, cap, warns, converged", [([1.0, 2.0, 3.0], 3, True, False),
                                                          ([1.0, 1.0, 1.0], 3, False, True),
                                                          ([1.0], 1, False, False)])  # one pass: untested
def test_resumable_em_reports_and_warns_at_the_cap(values, cap, warns, converged):
    est = _Estimator()
    e, m = _loop(values)
    kwargs = dict(initialize=lambda: None, get_state=dict, set_state=lambda a: None, e_step=e,
                  m_step=m, max_iterations=cap, convergence_threshold=1e-6, name="toy")
    if warns:
        with pytest.warns(ConvergenceWarning, match=r"toy did not converge in 3 iterations"):
            result = resumable_em(est, None, **kwargs)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)  # the suite ignores it by default
            result = resumable_em(est, None, **kwargs)
    assert (result.n_iter, result.converged) == (min(cap, 2 if converged else cap), converged)


def test_one_pass_map_enrolment_does_not_warn():
    from emkit import GMMMachine

    X = np.random.default_rng(0).normal(size=(200, 2))
    ubm = GMMMachine(2, random_state=0, max_fitting_steps=3, convergence_threshold=None).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GMMMachine(2, trainer="map", ubm=ubm, max_fitting_steps=1).fit(X[:50])
    assert (model.n_iter_, model.converged_) == (1, False)


def test_small_products_limits_blas_to_one_thread_and_restores_it():
    from threadpoolctl import threadpool_info

    from emkit._backend import small_products

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()

    @small_products
    def inside():
        return blas_threads()

    assert all(n == 1 for n in inside())
    with small_products():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


_rng = np.random.default_rng(0)
_X3 = _rng.normal(size=(4, 30, 3))
_Z = _rng.normal(size=(40, 3))
_y = np.repeat(np.arange(8), 5)


@pytest.mark.parametrize("fit", [
    lambda X: emkit.GMMMachine(2).fit(X),
    lambda X: emkit.KMeansMachine(2).fit(X),
    lambda X: emkit.Whitening().fit(X),
    lambda X: emkit.PLDA().fit(X, _y[:len(X)]),
    lambda X: emkit.PLDA().fit(_Z, _y).enroll(X),
], ids=["gmm", "kmeans", "whitening", "plda-fit", "plda-enroll"])
def test_inputs_of_the_wrong_shape_name_the_argument_and_the_expected_shape(fit):
    expected = re.escape("X must be a 2-D (n_samples, n_features) array; got ")
    with pytest.raises(ValueError, match=expected + re.escape("shape (4, 30, 3)")):
        fit(_X3)
    with pytest.raises(ValueError, match=expected + re.escape("shape (4, 30, 3) (a list of 4 arrays")):
        fit(list(_X3))
    with pytest.raises(ValueError, match=expected + re.escape(
            "a list of arrays of different lengths: shapes (30, 3), (20, 3)")):
        fit([_X3[0], _X3[1, :20]])
    # a numpy object array of sessions and text got numpy's "setting an array element with a
    # sequence" and scikit-learn's "dtype='numeric' is not compatible...", naming no argument
    sessions = np.empty(2, dtype=object)
    sessions[:] = [_X3[0], _X3[1, :20]]
    with pytest.raises(ValueError, match=expected + re.escape(
            "a numpy object array of arrays of different lengths: shapes (30, 3), (20, 3)")):
        fit(sessions)
    with pytest.raises(ValueError, match=re.escape("X must hold numbers; got text (dtype <U1)")):
        fit([["a", "b", "c"]] * 40)
    # lists of rows and 2-D arrays stay accepted
    fit(_Z.tolist())


def test_public_functions_document_their_parameters_and_shapes():
    import inspect

    from emkit import features, metrics, score_norm
    from emkit.calibration import LinearCalibration

    for method in (emkit.PLDA.from_hdf5, emkit.GMMStats.copy, LinearCalibration.fit_transform):
        assert inspect.getdoc(method), method
    for function, names in ((metrics.per_model, ["p_targets", "c_miss", "c_fa"]),
                            (features.read_trials, ["require_labels"]),
                            (features.write_scores, ["labels"]),
                            (score_norm.snorm, ["(n_models, n_probes)", "(n_models, n_cohort)",
                                                "(n_cohort, n_probes)"]),
                            (score_norm.adaptive_snorm, ["(n_models, n_probes)"])):
        doc = inspect.getdoc(function)
        assert all(name in doc for name in names), function


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, error", [(2.7, TypeError), (True, TypeError), ("64", TypeError),
                                          (0, ValueError), (-3, ValueError)])
def test_block_rows_is_checked_never_coerced_and_nothing_is_set_on_error(value, error):
    before = emkit.get_config()
    with pytest.raises(error, match=re.escape(f"block_rows must be a positive integer; got ")):
        emkit.set_config(progress=not before["progress"], block_rows=value)
    assert emkit.get_config() == before
    with emkit.config_context(block_rows=np.int64(64)):
        assert emkit.get_config()["block_rows"] == 64


def _refused_by_set_config_and_config_context(settings, error, message):
    before = emkit.get_config()
    with pytest.raises(error, match="^" + re.escape(message)):
        emkit.set_config(**settings)
    with pytest.raises(error, match="^" + re.escape(message)):
        with emkit.config_context(**settings):
            pass
    assert emkit.get_config() == before


@pytest.mark.parametrize("settings, error, message", [
    # True was taken as the number 1, an int spill directory as the directory "3", "no" as progress
    (dict(dask_cache_fraction=True), TypeError, "dask_cache_fraction must be a number in (0, 1]; got bool: True"),
    (dict(dask_cache_fraction=np.True_), TypeError, "dask_cache_fraction must be a number in (0, 1]; got bool: "),
    (dict(dask_cache_fraction="0.5"), TypeError, "dask_cache_fraction must be a number in (0, 1]; got str: '0.5'"),
    (dict(dask_cache_fraction=float("nan")), ValueError, "dask_cache_fraction must be a number in (0, 1]; got nan"),
    (dict(dask_cache_fraction=np.float32(1.5)), ValueError, "dask_cache_fraction must be a number in (0, 1]; got "),
    (dict(gselect_top_k=True), TypeError, "gselect_top_k must be None or a positive integer (Gaussians kept per "
                                          "frame); got bool: True"),
    (dict(gselect_top_k=4.0), TypeError, "gselect_top_k must be None or a positive integer"),
    (dict(gselect_min_posterior=False), TypeError, "gselect_min_posterior must be a float in [0, 1); got bool: False"),
    (dict(block_rows=np.True_), TypeError, "block_rows must be a positive integer; got bool: "),
    (dict(spill_directory=3), TypeError, "spill_directory must be a directory path (str or os.PathLike) or None; "
                                         "got int: 3"),
    (dict(spill_directory=["/tmp"]), TypeError, "spill_directory must be a directory path (str or os.PathLike) or "
                                                "None; got list: ['/tmp']"),
    (dict(spill_directory=b"/tmp"), TypeError, "spill_directory must be a directory path"),
    (dict(spill_directory=""), ValueError, "spill_directory is an empty path"),
    (dict(progress="no"), TypeError, "progress must be True or False; got str: 'no'"),
    (dict(dask_worker_heap=2), TypeError, "dask_worker_heap must be True or False; got int: 2"),
    (dict(device_cache=1.0), ValueError, "device_cache must be None, True or False; got 1.0"),
    (dict(array_library=np.array(["torch", "cupy"])), ValueError, "array_library must be 'torch', 'cupy' or None"),
])
def test_settings_refuse_other_types_naming_the_option(settings, error, message):
    _refused_by_set_config_and_config_context(settings, error, message)


def test_settings_take_numpy_scalars_and_paths_as_python_values(tmp_path):
    # np.float32(0.3) and np.int64(1) were refused as dask_cache_fraction (np.float64 passed: a
    # float subclass); numpy booleans were refused as dask_worker_heap
    settings = dict(dask_cache_fraction=np.float32(0.5), gselect_top_k=np.int64(3),
                    gselect_min_posterior=np.float32(0.25), block_rows=np.int32(96),
                    dask_worker_heap=np.False_, progress=np.True_, device_cache=np.False_,
                    spill_directory=tmp_path)
    expected = dict(dask_cache_fraction=0.5, gselect_top_k=3, gselect_min_posterior=0.25, block_rows=96,
                    dask_worker_heap=False, progress=True, device_cache=False, spill_directory=str(tmp_path))
    with emkit.config_context(**settings):
        got = {k: v for k, v in emkit.get_config().items() if k in expected}
    assert got == expected
    assert all(type(got[k]) is type(v) for k, v in expected.items())  # plain Python values
    with emkit.config_context(dask_cache_fraction=np.int64(1), spill_directory=None):
        assert emkit.get_config()["dask_cache_fraction"] == 1.0
        assert emkit.get_config()["spill_directory"] is None


def test_config_contexts_open_in_several_threads_leave_no_setting_behind():
    """Blocks that overlap in two threads and close in another order than they opened: each
    block's settings hold until it closes, and the settings before them come back (the whole
    saved dictionary used to be put back, so one thread's block restored another's setting)."""
    import threading

    before = emkit.get_config()
    entered, a_may_leave, a_left = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with emkit.config_context(block_rows=100):
            entered.set()
            a_may_leave.wait(10)
        a_left.set()

    def second():
        entered.wait(10)
        with emkit.config_context(gselect_top_k=1, block_rows=7):
            seen["inside"] = emkit.get_config()["block_rows"], emkit.get_config()["gselect_top_k"]
            a_may_leave.set()
            a_left.wait(10)
            seen["after the first left"] = emkit.get_config()["block_rows"], emkit.get_config()["gselect_top_k"]

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"inside": (7, 1), "after the first left": (7, 1)}
    assert emkit.get_config() == before


def test_set_config_inside_a_context_holds_after_it():
    before = emkit.get_config()
    try:
        with emkit.config_context(block_rows=8):
            emkit.set_config(block_rows=32)
            assert emkit.get_config()["block_rows"] == 8  # the open block's setting holds
        assert emkit.get_config()["block_rows"] == 32
        with pytest.raises(TypeError, match=r"^config_context\(\) got an unexpected keyword argument 'rows'$"):
            with emkit.config_context(rows=3):
                pass
    finally:
        emkit._config._BASE.update(block_rows=before["block_rows"])
        emkit._config._refresh()
    assert emkit.get_config() == before


def test_a_spill_directory_named_keep_is_set():
    """The string "keep" was set_config's "leave as is" default, so a directory named keep was
    silently ignored (the setting kept its old value)."""
    before = emkit.get_config()
    try:
        with emkit.config_context(spill_directory="keep"):
            assert emkit.get_config()["spill_directory"] == "keep"
        emkit.set_config(spill_directory="keep")
        assert emkit.get_config()["spill_directory"] == "keep"
        emkit.set_config(block_rows=16)  # options left out are left as they are
        assert emkit.get_config()["spill_directory"] == "keep"
    finally:
        emkit._config._BASE.update(spill_directory=before["spill_directory"],
                                   block_rows=before["block_rows"])
        emkit._config._refresh()
    assert emkit.get_config() == before


@pytest.mark.parametrize("settings, error, message", [
    (dict(array_library="keep"), ValueError, "array_library must be 'torch', 'cupy' or None; got 'keep'"),
    (dict(device_cache="keep"), ValueError, "device_cache must be None, True or False; got 'keep'"),
    (dict(gselect_top_k="keep"), TypeError, "gselect_top_k must be None or a positive integer (Gaussians kept "
                                            "per frame); got str: 'keep'"),
])
def test_the_string_keep_is_checked_as_any_other_value(settings, error, message):
    _refused_by_set_config_and_config_context(settings, error, message)


def test_set_config_signature_says_which_options_are_left_unchanged():
    signature = str(inspect.signature(emkit.set_config))
    for name in ("array_library", "device_cache", "gselect_top_k", "spill_directory"):
        assert re.search(name + r": '[^']+' = <unchanged>", signature), (name, signature)
    assert "keep" not in signature


def test_public_submodules_are_attributes_after_a_plain_import():
    """``import emkit; emkit.io.load(path)`` raised AttributeError unless something had imported
    emkit.io already; still nothing heavy is imported by ``import emkit`` itself."""
    import subprocess
    import sys

    code = ("import sys, emkit\n"
            "assert 'emkit.io' not in sys.modules and 'torch' not in sys.modules\n"
            "print(emkit.io.load.__module__, emkit.score_norm.znorm.__name__, "
            "emkit.features.read_features.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["emkit.io._registry", "znorm", "read_features"], out.stderr
