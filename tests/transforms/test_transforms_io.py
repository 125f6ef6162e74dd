"""Whitening, WCCN and LDA built from plain arrays (``_from_fitted``) and saved through the
persistence registry (:mod:`emkit.io.transforms`): round trips, the layout, refusals."""

import ast
import pathlib

import h5py
import numpy as np
import pytest

import emkit
import emkit.io
from emkit.io import InvalidFileError
from emkit.io import transforms as layout
from emkit.lda import LDA
from emkit.wccn import WCCN
from emkit.whitening import Whitening

SRC = pathlib.Path(emkit.__file__).parent


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(6), 5)
    X = rng.normal(size=(6, 4))[y] * 3 + rng.normal(size=(30, 4))
    return X, y


def _fitted(data):
    X, y = data
    return {"Whitening": Whitening().fit(X), "WCCN": WCCN().fit(X, y), "LDA": LDA(2).fit(X, y)}


def test_from_fitted_rebuilds_equal_transforms(data):
    X, y = data
    fitted = _fitted(data)
    white = Whitening._from_fitted(fitted["Whitening"].weights, fitted["Whitening"].input_subtract)
    wccn = WCCN._from_fitted(fitted["WCCN"].weights, classes=fitted["WCCN"].classes_)
    lda = LDA._from_fitted(fitted["LDA"].weights, fitted["LDA"].input_subtract,
                           fitted["LDA"].eigenvalues_)
    for name, rebuilt in (("Whitening", white), ("WCCN", wccn), ("LDA", lda)):
        np.testing.assert_array_equal(rebuilt.transform(X), fitted[name].transform(X))
        assert rebuilt.n_features_in_ == 4
    assert list(white.get_feature_names_out()) == [f"whitening{i}" for i in range(4)]
    assert list(wccn.get_feature_names_out()) == [f"wccn{i}" for i in range(4)]
    assert (wccn.input_subtract, wccn.input_divide) == (0.0, 1.0)
    np.testing.assert_array_equal(wccn.classes_, np.arange(6))
    assert lda.n_components == 2 and not hasattr(WCCN._from_fitted(np.eye(2)), "classes_")


def test_fitted_arrays_are_read_only_copies(data):
    for obj in _fitted(data).values():
        assert not obj.weights.flags.writeable
    weights = np.eye(3)
    white = Whitening._from_fitted(weights, np.zeros(3))
    weights[0, 0] = 5.0
    assert white.weights[0, 0] == 1.0
    with pytest.raises(ValueError):
        white.weights[0, 0] = 2.0


@pytest.mark.parametrize("call, message", [
    (lambda: Whitening._from_fitted(np.ones((2, 3)), np.zeros(2)), r"weights must be a square \(D, D\) matrix; got shape \(2, 3\)"),
    (lambda: WCCN._from_fitted(np.eye(2), np.zeros(3)), r"input_subtract must be a number or of shape \(2,\); got shape \(3,\)"),
    (lambda: Whitening._from_fitted(np.eye(2), np.zeros(2), 0.0), "input_divide must be a finite non-zero number"),
    (lambda: WCCN._from_fitted(np.full((2, 2), np.nan)), "must hold finite values"),
    (lambda: LDA._from_fitted(np.ones((3, 2)), np.zeros(3), np.ones(3)), r"eigenvalues \(k,\); got shapes \(3, 2\), \(3,\) and \(3,\)"),
])
def test_from_fitted_refuses_inconsistent_arrays(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", ["Whitening", "WCCN", "LDA"])
def test_registry_round_trip(data, tmp_path, name):
    X, _ = data
    obj = _fitted(data)[name]
    emkit.io.save(obj, tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert (f.attrs["emkit_class"], int(f.attrs["emkit_format_version"])) == (name, 1)
    back = emkit.io.load(tmp_path / "t.h5")
    assert type(back) is type(obj) and back.n_features_in_ == obj.n_features_in_
    np.testing.assert_array_equal(back.transform(X), obj.transform(X))
    assert type(emkit.io.load(tmp_path / "t.h5", expected=type(obj))) is type(obj)
    with h5py.File(tmp_path / "nested.h5", "w") as f:  # inside another object's file
        emkit.io._registry.save_into(f, "step", obj)
    with h5py.File(tmp_path / "nested.h5", "r") as f:
        nested = emkit.io._registry.load_from(f, "step", type(obj))
    np.testing.assert_array_equal(nested.weights, obj.weights)


def test_round_trip_of_parameters_labels_and_unfitted(data, tmp_path):
    X, y = data
    for labels, expected in ((y, np.arange(6)), (np.array([f"s{v}" for v in y]), [f"s{v}" for v in range(6)]),
                             ([(v, v) for v in y], None)):
        emkit.io.save(WCCN(pinv=True).fit(X, labels), tmp_path / "w.h5")
        back = emkit.io.load(tmp_path / "w.h5")
        assert back.pinv is True
        if expected is None:  # labels that are not numbers or text are not stored
            assert not hasattr(back, "classes_")
        else:
            assert list(back.classes_) == list(expected)
    for obj in (Whitening(pinv=True), WCCN(), LDA(3)):
        emkit.io.save(obj, tmp_path / "u.h5")
        back = emkit.io.load(tmp_path / "u.h5")
        assert type(back) is type(obj) and not hasattr(back, "weights")
    assert emkit.io.load(tmp_path / "u.h5").n_components == 3
    assert emkit.io.load(tmp_path / "u.h5", LDA).n_components == 3


def test_lda_save_and_from_hdf5_keep_their_signatures(data, tmp_path):
    X, y = data
    lda = LDA(2).fit(X, y)
    lda.save(tmp_path / "lda.h5")
    np.testing.assert_array_equal(LDA.from_hdf5(tmp_path / "lda.h5").transform(X), lda.transform(X))
    with h5py.File(tmp_path / "w.h5", "w") as f:
        emkit.io._registry.save_into(f, "w", Whitening().fit(X))
    with h5py.File(tmp_path / "w.h5", "r") as f, pytest.raises(InvalidFileError, match="holds an emkit Whitening, not a LDA"):
        LDA.from_hdf5(f["w"])


def test_unstamped_groups_of_earlier_system_files(data, tmp_path):
    """The ``whitening``/``wccn``/``lda`` groups that IVectorBackend files held before the stamp."""
    X, y = data
    fitted = _fitted(data)
    with h5py.File(tmp_path / "old.h5", "w") as f:
        for name in ("Whitening", "WCCN"):
            g = f.create_group(name)
            g["weights"], g["input_subtract"] = fitted[name].weights, fitted[name].input_subtract
            g["input_divide"] = 1.0
        g = f.create_group("LDA")
        g["weights"], g["input_subtract"] = fitted["LDA"].weights, fitted["LDA"].input_subtract
        g["eigenvalues"] = fitted["LDA"].eigenvalues_
    with h5py.File(tmp_path / "old.h5", "r") as f:
        for name, read, cls in (("Whitening", layout.read_whitening, Whitening),
                                ("WCCN", layout.read_wccn, WCCN), ("LDA", layout.read_lda, LDA)):
            back = read(f[name], cls)
            np.testing.assert_array_equal(back.transform(X), fitted[name].transform(X))
        np.testing.assert_array_equal(LDA.from_hdf5(f["LDA"]).weights, fitted["LDA"].weights)
        with pytest.raises(InvalidFileError, match="not a WCCN"):  # the registry needs the stamp
            emkit.io._registry.load_from(f, "WCCN", WCCN)


def _edit(path, edit):
    with h5py.File(path, "a") as f:
        edit(f)


@pytest.mark.parametrize("name, edit, message", [
    ("Whitening", lambda f: f.attrs.__setitem__("emkit_format_version", 2), "version 2 is newer"),
    ("Whitening", lambda f: (f.__delitem__("weights"), f.__setitem__("weights", np.ones((4, 3)))), "must be a square matrix"),
    ("WCCN", lambda f: (f.__delitem__("input_divide"), f.__setitem__("input_divide", 0.0)), "input_divide.*must not be 0"),
    ("WCCN", lambda f: f["weights"].__setitem__((0, 0), np.nan), "NaN or infinite"),
    ("WCCN", lambda f: (f.__delitem__("input_subtract"), f.__setitem__("input_subtract", np.zeros(5))), r"must have shape \(4,\)"),
    ("Whitening", lambda f: (f.__delitem__("weights"), f.__setitem__("weights", h5py.ExternalLink("/etc/passwd", "/x"))), "external link"),
    ("LDA", lambda f: (f.__delitem__("n_components"), f.__setitem__("n_components", np.int64(3))), r"weights.*must have shape \(\*, 3\)"),
    ("LDA", lambda f: (f.__delitem__("eigenvalues"), f.__setitem__("eigenvalues", np.ones(3))), r"eigenvalues.*must have shape \(2,\)"),
    ("WCCN", lambda f: (f.__delitem__("classes"), f.__setitem__("classes", np.zeros((0,)))), "must hold at least one label"),
])
def test_damaged_files_are_refused_naming_the_file(data, tmp_path, name, edit, message):
    path = tmp_path / "bad.h5"
    emkit.io.save(_fitted(data)[name], path)
    _edit(path, edit)
    with pytest.raises(InvalidFileError, match=message) as info:
        emkit.io.load(path)
    assert str(path) in str(info.value)
    (tmp_path / "other.h5").write_bytes(path.read_bytes())
    with pytest.raises(InvalidFileError, match=f"holds a {name}, not a PLDA"):
        emkit.io.load(tmp_path / "other.h5", expected="PLDA")


@pytest.mark.parametrize("module", ["transforms.py", "plda.py"])
def test_layout_modules_import_no_estimator(module):
    tree = ast.parse((SRC / "io" / module).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    io_helpers = ("h5", "errors", "fit_summary", "random_state", "read_back")  # emkit.io's own
    assert all(m in ("__future__", "h5py", "numpy") or m.startswith(io_helpers)
               for m in [m or "" for m in imported]), imported


@pytest.mark.parametrize("cls", [Whitening, WCCN, LDA])
def test_from_fitted_copies_unless_told_and_a_load_keeps_the_readers_weights(cls, tmp_path):
    """``_from_fitted`` copies what it is given (the caller's array stays its own, writable); the
    file readers pass ``copy=False``: a loaded transform holds the weights they read, read-only
    (no second copy of a (D, D) matrix while it loads)."""
    rng = np.random.default_rng(7)
    weights = np.linalg.qr(rng.normal(size=(4, 4)))[0] + 3 * np.eye(4)
    extra = (rng.normal(size=4), np.ones(4)) if cls is LDA else (rng.normal(size=4),)
    given = cls._from_fitted(weights, *extra)
    assert not np.shares_memory(given.weights, weights) and weights.flags.writeable
    fresh = weights.copy()
    kept = cls._from_fitted(fresh, *extra, copy=False)
    assert kept.weights is fresh and not fresh.flags.writeable
    emkit.io.save(given, tmp_path / "t.h5")
    loaded = emkit.io.load(tmp_path / "t.h5")
    assert np.array_equal(loaded.weights, weights) and not loaded.weights.flags.writeable
