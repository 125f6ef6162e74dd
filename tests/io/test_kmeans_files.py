"""KMeansMachine files (emkit's layout, :mod:`emkit.io.kmeans`): ``emkit.io.save``/``load`` and
``save``/``from_hdf5``/``load`` raised "no file layout is registered" for a KMeansMachine."""

import warnings

import h5py
import numpy as np
import pytest
from data_frames import Frame

import emkit.io
from emkit.io import InvalidFileError
from emkit.kmeans import KMeansMachine

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 3)) + np.repeat(RNG.normal(size=(3, 3)) * 5, 100, axis=0)
NAMES = ["mfcc0", "mfcc1", "energy"]


def _fit(machine, data=X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (few iterations: convergence warnings)
        return machine.fit(data)


def _loaded_every_way(machine, path):
    emkit.io.save(machine, path)
    by_method = path.with_name("by_method.h5")
    machine.save(by_method)
    return [emkit.io.load(path), KMeansMachine.from_hdf5(path), KMeansMachine(1).load(by_method),
            emkit.io.load(path, expected=KMeansMachine)]


def test_a_fitted_machine_predicts_the_same_after_a_round_trip(tmp_path):
    machine = _fit(KMeansMachine(3, max_iter=4, random_state=7, init_max_iter=None,
                                 oversampling_factor=3.5, convergence_threshold=1e-3))
    for back in _loaded_every_way(machine, tmp_path / "k.h5"):
        assert type(back) is KMeansMachine
        assert back.get_params() == machine.get_params()
        np.testing.assert_array_equal(back.centroids_, machine.centroids_)
        np.testing.assert_array_equal(back.predict(X), machine.predict(X))
        np.testing.assert_array_equal(back.transform(X), machine.transform(X))
        assert back.average_min_distance == machine.average_min_distance
        assert (back.n_iter_, back.converged_, back.n_features_in_) == (
            machine.n_iter_, machine.converged_, 3)
        assert not hasattr(back, "feature_names_in_")
        with pytest.raises(ValueError, match="read-only"):
            back.centroids_[0, 0] = 1.0  # (as after fit)


def test_parameters_of_every_kind_and_an_unfitted_machine_round_trip(tmp_path):
    init = X[[0, 100, 200]]
    machine = KMeansMachine(3, init_method=init, max_iter=None, random_state=np.random.default_rng(5),
                            checkpoint=tmp_path / "ck.h5")
    (back, *_) = _loaded_every_way(machine, tmp_path / "k.h5")
    assert back.centroids_ is None and back.max_iter is None and back.checkpoint is None
    np.testing.assert_array_equal(back.init_method, init)
    assert back.random_state.random() == np.random.default_rng(5).random()
    (back, *_) = _loaded_every_way(KMeansMachine(2, random_state=None, init_method="random"),
                                   tmp_path / "none.h5")
    assert back.random_state is None and back.init_method == "random" and back.centroids_ is None
    # refitted from the file's parameters: the same centroids as the original
    refit = _fit(KMeansMachine.from_hdf5(tmp_path / "k.h5").set_params(max_iter=3))
    np.testing.assert_array_equal(refit.centroids_, _fit(KMeansMachine(3, init_method=init,
                                                                       max_iter=3)).centroids_)


def test_an_initialised_machine_keeps_no_fit_summary(tmp_path):
    machine = KMeansMachine(3, init_method="k-means++")
    machine.initialize(X)
    back = emkit.io.load(_saved(machine, tmp_path))
    np.testing.assert_array_equal(back.centroids_, machine.centroids_)
    assert back.average_min_distance == np.inf and not hasattr(back, "n_iter_")


def _saved(machine, tmp_path):
    path = tmp_path / "k.h5"
    emkit.io.save(machine, path)
    return path


def test_feature_names_are_kept_and_checked(tmp_path):
    machine = _fit(KMeansMachine(3, max_iter=2), Frame(X, NAMES))
    back = emkit.io.load(_saved(machine, tmp_path))
    assert back.feature_names_in_.dtype == object and list(back.feature_names_in_) == NAMES
    np.testing.assert_array_equal(back.predict(Frame(X, NAMES)), machine.predict(Frame(X, NAMES)))
    with pytest.raises(ValueError, match="X's feature names"):
        back.predict(Frame(X, NAMES).reordered(NAMES[::-1]))


def test_a_newer_layout_is_refused_naming_the_file(tmp_path):
    path = _saved(_fit(KMeansMachine(2, max_iter=1)), tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["emkit_format_version"] = np.int64(2)
    with pytest.raises(InvalidFileError, match=f"^{path}: KMeansMachine file layout version 2 is newer"):
        KMeansMachine.from_hdf5(path)


def test_a_file_of_another_class_is_refused_naming_the_file(tmp_path):
    from emkit.plda import PLDA

    path = tmp_path / "plda.h5"
    PLDA().save(path)
    with pytest.raises(InvalidFileError, match=f"^{path} holds a PLDA, not a KMeansMachine$"):
        KMeansMachine.from_hdf5(path)
    kmeans = _saved(_fit(KMeansMachine(2, max_iter=1)), tmp_path)
    with pytest.raises(InvalidFileError, match=f"^{kmeans} holds a KMeansMachine, not a PLDA$"):
        PLDA.from_hdf5(kmeans)


@pytest.mark.parametrize("change, named, problem", [
    (lambda f: _replace(f, "fitted/centroids", np.full((2, 3), np.nan)), "/fitted/centroids", "holds NaN or infinite values"),
    (lambda f: _replace(f, "fitted/centroids", np.ones((4, 3))), "/fitted/centroids", r"must have shape \(2, \*\)"),
    (lambda f: _replace(f, "fitted/centroids", np.full((2, 3), 1e200)), "/fitted/centroids",
     r"holds values beyond \+-1e\+150 \(distances would overflow\)"),
    (lambda f: _replace(f, "init_method", "k-medians"), "/init_method", "must be one of"),
    (lambda f: _replace(f, "fitted/feature_names", np.array(["a", "b"], dtype=h5py.string_dtype())),
     "/fitted/feature_names", r"must have shape \(3,\)"),
])
def test_damaged_files_are_refused_naming_the_file_and_the_dataset(tmp_path, change, named, problem):
    path = _saved(_fit(KMeansMachine(2, max_iter=2), Frame(X, NAMES)), tmp_path)
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(InvalidFileError, match=f"^{path}: dataset '{named}' {problem}"):
        emkit.io.load(path)


def _replace(f, name, value):
    del f[name]
    f[name] = value


def test_a_loaded_machine_keeps_its_centroids_and_holds_its_distance_constants(tmp_path):
    """The reader's centroids are kept (``copy=False``), read-only; the distance constants are
    computed at load, as after fit (save's read-back, whose machine is thrown away, skips them)."""
    from emkit._kernels.kmeans import CentroidCoefficients

    centroids = np.random.default_rng(8).normal(size=(6, 3))
    machine = KMeansMachine._from_fitted(dict(n_clusters=6), centroids)
    assert not np.shares_memory(machine.centroids_, centroids) and centroids.flags.writeable
    fresh = centroids.copy()
    assert KMeansMachine._from_fitted(dict(n_clusters=6), fresh, copy=False).centroids_ is fresh
    machine.save(tmp_path / "k.h5")
    loaded = KMeansMachine.from_hdf5(tmp_path / "k.h5")
    assert "coefficients" in loaded.__dict__["_derived_cache"]
    coef = loaded._coefficients()
    for dtype in (np.float64, np.float32):
        expected = CentroidCoefficients.from_centroids(centroids, dtype)
        assert expected.minus_two_centred_t.flags.c_contiguous
        assert expected.minus_two_centred_t.dtype == dtype
        assert np.array_equal(expected.minus_two_centred_t, (-2.0 * (centroids - centroids.mean(
            axis=0)).T).astype(dtype))
    assert np.array_equal(coef.centred, centroids - centroids.mean(axis=0))
    assert not loaded.centroids_.flags.writeable
