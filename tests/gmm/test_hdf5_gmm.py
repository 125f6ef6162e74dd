"""HDF5 files of GMMMachine and GMMStats: the reference's, the legacy bob 2.x layout, and emkit's.

* ``ref_*.h5``: written by bob.learn.em 3.3.1 (``tests/data/gmm/make_fixtures.py``); they load in
  emkit with identical values.
* ``legacy_*.h5``: the bob 2.x layout, made by hand with h5py in the same script, with 1-element
  fields as bob 2.x wrote them and a variant with scalar fields (which the reference cannot read
  for machines; COMPATIBILITY item 30).
* ``emkit_written/*.h5``: written by emkit (``write_emkit_files.py``) and checked in the reference
  by ``check_emkit_files_in_reference.py``; here they are written again and must be identical.
"""

import importlib.util
import os

import h5py
import numpy as np
import pytest
from _parity import DATA, assert_parity

import emkit.io
from emkit.gmm import GMMMachine
from emkit.io import InvalidFileError
from emkit.stats import GMMStats

HERE = DATA / "gmm"
REF = np.load(HERE / "hdf5.npz")


def _assert_machine(m, prefix, npz=REF):
    np.testing.assert_array_equal(m.means, npz[f"{prefix}__means"])
    np.testing.assert_array_equal(m.variances, npz[f"{prefix}__variances"])
    np.testing.assert_array_equal(m.weights, npz[f"{prefix}__weights"])
    if f"{prefix}__variance_thresholds" in npz:
        np.testing.assert_array_equal(m.variance_thresholds, npz[f"{prefix}__variance_thresholds"])
        assert np.shape(m.variance_thresholds) == npz[f"{prefix}__variance_thresholds"].shape
    assert m.n_gaussians == len(npz[f"{prefix}__weights"])
    assert m.means.dtype == m.variances.dtype == np.float64


def _assert_stats(s, prefix, npz=REF):
    assert s.log_likelihood == npz[f"{prefix}__ll"]
    assert np.ndim(s.log_likelihood) == 0
    assert s.t == int(npz[f"{prefix}__t"])
    np.testing.assert_array_equal(s.n, npz[f"{prefix}__n"])
    np.testing.assert_array_equal(s.sum_px, npz[f"{prefix}__sum_px"])
    np.testing.assert_array_equal(s.sum_pxx, npz[f"{prefix}__sum_pxx"])
    assert s.shape == npz[f"{prefix}__sum_px"].shape


def _ubm():
    ubm = GMMMachine(len(REF["map_ubm__weights"]))
    ubm.means = REF["map_ubm__means"].copy()
    ubm.variances = REF["map_ubm__variances"].copy()
    ubm.weights = REF["map_ubm__weights"].copy()
    return ubm


# ---------------------------------------------------------------------------------------------
# files written by the reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("thr", ["scalar", "d", "cd"])
def test_reference_ml_machine_loads(thr):
    path = HERE / f"ref_gmm_ml_thr_{thr}.h5"
    prefix = f"ml_thr_{thr}"
    for m in (GMMMachine.from_hdf5(path), GMMMachine.from_hdf5(str(path))):
        _assert_machine(m, prefix)
        assert m.trainer == "ml" and m.ubm is None
        flags = [m.update_means, m.update_variances, m.update_weights]
        assert flags == list(REF[f"{prefix}__flags"])
        assert m.max_fitting_steps == int(REF[f"{prefix}__max_fitting_steps"])
        # the saved threshold is restored (the reference's reader always used 1e-5)
        assert m.convergence_threshold == 1e-4
    with h5py.File(path, "r") as f:
        _assert_machine(GMMMachine.from_hdf5(f), prefix)
    loaded = GMMMachine(1)
    loaded.load(path)
    _assert_machine(loaded, prefix)


def test_reference_map_machine_loads_as_map_with_its_ubm():
    path = HERE / "ref_gmm_map.h5"
    ubm = _ubm()
    m = GMMMachine.from_hdf5(path, ubm=ubm)
    _assert_machine(m, "map")
    assert m.trainer == "map" and m.ubm is ubm
    assert [m.update_means, m.update_variances, m.update_weights] == list(REF["map__flags"])
    assert m.max_fitting_steps == int(REF["map__max_fitting_steps"])
    assert str(REF["map__reference_reloads_as"]) == "ml"  # the reference lost the trainer (quirk 3)
    # the reference's file holds no prior: loading a MAP machine needs one, which emkit.io.load
    # cannot take
    for load in (GMMMachine.from_hdf5, emkit.io.load):
        with pytest.raises(InvalidFileError) as info:
            load(path)
        assert str(info.value) == (f"{path}: a MAP GMMMachine without its UBM (a bob.learn.em file); "
                                   "load it with GMMMachine.from_hdf5(path, ubm=UBM)")
    # load() into a machine that has a UBM takes it (the reference's load could not fail here)
    machine = GMMMachine(len(ubm.weights), trainer="map", ubm=ubm)
    machine.load(path)
    _assert_machine(machine, "map")
    assert machine.trainer == "map" and machine.ubm is ubm
    with pytest.raises(InvalidFileError, match="without its UBM"):
        GMMMachine(1).load(path)


def test_weights_that_do_not_sum_to_one_are_not_saved(tmp_path):
    # the readers refuse such a file: it is not written (an existing file is left as it was)
    m = GMMMachine(2)
    m.means, m.variances, m.weights = np.zeros((2, 3)), np.ones((2, 3)), np.array([3.0, 3.0])
    (tmp_path / "m.h5").write_bytes(b"before")
    with pytest.raises(ValueError, match=r"GMMMachine.weights sum to 6: a model file holds weights summing to 1"):
        m.save(tmp_path / "m.h5")
    assert (tmp_path / "m.h5").read_bytes() == b"before" and os.listdir(tmp_path) == ["m.h5"]
    m.weights = np.array([0.5, 0.5])
    m.save(tmp_path / "m.h5")
    np.testing.assert_array_equal(GMMMachine.from_hdf5(tmp_path / "m.h5").weights, [0.5, 0.5])


def test_reference_stats_load():
    path = HERE / "ref_stats.h5"
    s = GMMStats.from_hdf5(path)
    _assert_stats(s, "stats")
    assert isinstance(s.t, (int, np.integer))
    other = GMMStats(1, 1)
    other.load(path)
    _assert_stats(other, "stats")


# ---------------------------------------------------------------------------------------------
# legacy bob 2.x layout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["legacy_gmm", "legacy_gmm_scalar"])
def test_legacy_machine_loads(variant):
    m = GMMMachine.from_hdf5(HERE / f"{variant}.h5")
    _assert_machine(m, "legacy_source")
    assert m.trainer == "ml"
    if variant == "legacy_gmm":  # what the reference itself read from that file
        _assert_machine(m, "legacy_gmm")
    else:  # the reference could not read scalar fields
        assert str(REF["legacy_gmm_scalar__reference_error"]) == "IndexError"


@pytest.mark.parametrize("variant", ["legacy_stats", "legacy_stats_scalar"])
def test_legacy_stats_load(variant):
    s = GMMStats.from_hdf5(HERE / f"{variant}.h5")
    _assert_stats(s, "legacy_stats_source")
    # the reference kept a 1-element array as log_likelihood for the bob 2.x file (quirk 30)
    assert tuple(REF[f"{variant}__ll_shape"]) == ((1,) if variant == "legacy_stats" else ())
    ref_ll = REF[f"{variant}__ll"]
    assert s.log_likelihood == ref_ll.reshape(-1)[0]
    np.testing.assert_array_equal(s.sum_pxx, REF[f"{variant}__sum_pxx"])


# ---------------------------------------------------------------------------------------------
# files written by emkit
# ---------------------------------------------------------------------------------------------


def _writer_module():
    spec = importlib.util.spec_from_file_location("write_emkit_files",
                                                  HERE / "write_emkit_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _h5_items(path):
    items = {}
    with h5py.File(path, "r") as f:
        items["/"] = ("group", dict(f.attrs))

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                dtype = obj.dtype.str if obj.dtype.kind != "O" else "str"
                items[name] = ("dataset", dtype, obj.shape, obj[()], dict(obj.attrs))
            else:
                items[name] = ("group", dict(obj.attrs))

        f.visititems(visit)
    return items


def _same(a, b) -> bool:
    """Same type and value (NaN equal to NaN: emkit stores None as NaN)."""
    floating = np.asarray(a).dtype.kind == "f"
    return type(a) is type(b) and np.array_equal(a, b, equal_nan=floating)


def _assert_same_attrs(a, b, where):
    assert sorted(a) == sorted(b), where
    for k in a:
        assert _same(a[k], b[k]), (where, k, a[k], b[k])


def test_emkit_written_files_do_not_drift(tmp_path):
    """Writing the same objects again gives the kept files' groups, datasets and attributes."""
    writer = _writer_module()
    paths = writer.write_all(tmp_path)
    kept = HERE / "emkit_written"
    assert sorted(p.name for p in kept.glob("*.h5")) == sorted(p.name for p in paths.values())
    for name, path in paths.items():
        new, old = _h5_items(path), _h5_items(kept / f"{name}.h5")
        assert sorted(new) == sorted(old), name
        for key in new:
            where = f"{name}:{key}"
            assert new[key][0] == old[key][0], where
            if new[key][0] == "group":
                _assert_same_attrs(new[key][1], old[key][1], where)
                continue
            _, dtype, shape, value, attrs = new[key]
            assert (dtype, shape) == old[key][1:3], where
            assert _same(value, old[key][3]), where
            _assert_same_attrs(attrs, old[key][4], where)


def test_emkit_written_files_load_in_emkit():
    kept = HERE / "emkit_written"
    expected = np.load(kept / "expected.npz")
    for name in ("gmm_ml", "gmm_ml_thr_cd", "gmm_map"):
        m = GMMMachine.from_hdf5(kept / f"{name}.h5")
        np.testing.assert_array_equal(m.means, expected[f"{name}__means"])
        np.testing.assert_array_equal(m.variances, expected[f"{name}__variances"])
        np.testing.assert_array_equal(m.weights, expected[f"{name}__weights"])
        np.testing.assert_array_equal(m.variance_thresholds,
                                      expected[f"{name}__variance_thresholds"])
        flags = [m.update_means, m.update_variances, m.update_weights]
        assert flags == list(expected[f"{name}__flags"])
        assert m.max_fitting_steps == int(expected[f"{name}__max_fitting_steps"])
    s = GMMStats.from_hdf5(kept / "stats.h5")
    for field in ("log_likelihood", "t", "n", "sum_px", "sum_pxx"):
        np.testing.assert_array_equal(getattr(s, field), expected[f"stats__{field}"])
    # the layout the reference reads: its attributes and datasets are there
    with h5py.File(kept / "gmm_map.h5", "r") as f:
        assert f.attrs["file_version"] == "1.0"
        assert f.attrs["writer_class"] == "<class 'bob.learn.em.GMMMachine'>"
        assert f["trainer"][()] == b"map"
        for name in ("n_gaussians", "convergence_threshold", "max_fitting_steps", "weights",
                     "update_means", "update_variances", "update_weights", "gaussians/means",
                     "gaussians/variances", "gaussians/variance_thresholds"):
            assert name in f, name
    with h5py.File(kept / "stats.h5", "r") as f:
        assert f.attrs["writer_class"] == "<class 'bob.learn.em.GMMStats'>"
        assert f["T"].dtype == np.int64 and f["log_likelihood"].dtype == np.float64


def _params(machine):
    p = machine.get_params(deep=False)
    p.pop("ubm")
    return p


def _assert_params_equal(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert type(a[k]) is type(b[k]) or np.isscalar(a[k]), (k, a[k], b[k])
        assert np.array_equal(a[k], b[k]) if a[k] is not None else b[k] is None, (k, a[k], b[k])


@pytest.mark.parametrize("relevance,alpha",
                         [(None, 0.3), (7.5, 0.5), (None, np.array([0.2, 0.4, 0.6]))])
def test_map_machine_round_trips_as_map_with_all_parameters(tmp_path, relevance, alpha):
    ubm = GMMMachine(3, convergence_threshold=1e-3, max_fitting_steps=11, update_weights=True)
    rng = np.random.RandomState(0)
    ubm.means, ubm.variances = rng.normal(size=(3, 2)), rng.uniform(0.5, 2, size=(3, 2))
    ubm.variance_thresholds = np.array([1e-3, 2e-3])
    m = GMMMachine(3, trainer="map", ubm=ubm, convergence_threshold=None, max_fitting_steps=4,
                   random_state=None, weights=np.array([0.2, 0.3, 0.5]), update_means=False,
                   update_variances=True, update_weights=True, mean_var_update_threshold=1e-9,
                   map_alpha=alpha, map_relevance_factor=relevance, compute_dtype="float32")
    m.means = ubm.means + 0.5
    m.weights = np.array([0.1, 0.6, 0.3])  # live weights differ from the constructor argument
    path = tmp_path / "map.h5"
    m.save(path)
    back = GMMMachine.from_hdf5(path)
    assert back.trainer == "map"
    _assert_params_equal(_params(back), _params(m))
    for attr in ("means", "variances", "weights", "variance_thresholds"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(m, attr))
    assert back.ubm is not None and back.ubm.trainer == "ml"
    _assert_params_equal(_params(back.ubm), _params(ubm))
    for attr in ("means", "variances", "weights", "variance_thresholds"):
        np.testing.assert_array_equal(getattr(back.ubm, attr), getattr(ubm, attr))
    # a given ubm takes precedence over the stored one
    other = GMMMachine.from_hdf5(path, ubm=ubm)
    assert other.ubm is ubm and other.trainer == "map"
    # and it adapts like the original
    X = rng.normal(size=(40, 2))
    assert_parity(back.fit(X).means, m.fit(X).means, tol=1e-12)


def test_variances_below_the_update_threshold_round_trip_exactly(tmp_path):
    """They were floored at mean_var_update_threshold on load (a new machine's floor), before
    the saved thresholds were set: other log-likelihoods (1.8 nats a frame in the audit)."""
    m = GMMMachine(2, mean_var_update_threshold=1e-3)
    m.variance_thresholds = 1e-6
    m.means, m.weights = np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([0.4, 0.6])
    m.variances = np.array([[5.8e-5, 2e-3], [1e-4, 1.0]])
    m.save(tmp_path / "m.h5")
    back = GMMMachine.from_hdf5(tmp_path / "m.h5")
    np.testing.assert_array_equal(back.variances, m.variances)
    X = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(back.log_likelihood(X), m.log_likelihood(X))
    loaded = GMMMachine(2)
    loaded.load(tmp_path / "m.h5")
    np.testing.assert_array_equal(loaded.variances, m.variances)


def test_load_into_a_fitted_machine_keeps_nothing_of_its_fit(tmp_path):
    """load updated the machine's attributes: a fit's n_features_in_ and n_iter_ stayed with the
    loaded machine (n_features_in_ is now that of the file's means: 3, not the fit's 5)."""
    from emkit import IVectorMachine

    X = np.random.default_rng(0).normal(size=(60, 5))
    fitted = GMMMachine(2, max_fitting_steps=2).fit(X)
    assert fitted.n_features_in_ == 5
    fitted.load(HERE / "ref_gmm_ml_thr_d.h5")
    assert fitted.n_features_in_ == fitted.means.shape[1] == 3
    for name in ("n_iter_", "converged_"):
        assert not hasattr(fitted, name), name
    ubm = GMMMachine(2, max_fitting_steps=2).fit(X)
    iv = IVectorMachine(ubm, dim_t=2, max_iterations=1).fit(ubm.transform([X[:30], X[30:]]))
    iv.save(tmp_path / "iv.h5")
    iv.n_features_in_ = 99  # (a stale attribute of the machine replaced)
    iv.load(tmp_path / "iv.h5")
    assert getattr(iv, "n_features_in_", None) != 99


@pytest.mark.parametrize("kind", ["machine", "stats"])
def test_a_gmm_file_of_a_newer_emkit_layout_is_refused(tmp_path, kind):
    """(the other layouts were refused; GMM and GMMStats files loaded whatever their version)"""
    obj = GMMMachine.from_hdf5(HERE / "ref_gmm_ml_thr_d.h5") if kind == "machine" else \
        GMMStats.from_hdf5(HERE / "ref_stats.h5")
    obj.save(tmp_path / "new.h5")
    with h5py.File(tmp_path / "new.h5", "a") as f:
        f.attrs["emkit_format_version"] = 99
    with pytest.raises(InvalidFileError, match="layout version 99 is newer than this emkit reads "
                                               "\\(<= 1\\); upgrade emkit"):
        type(obj).from_hdf5(tmp_path / "new.h5")


def test_ml_machine_round_trip_with_none_limits(tmp_path):
    m = GMMMachine(2, convergence_threshold=1e-4, max_fitting_steps=None, random_state=5)
    m.means, m.variances = np.zeros((2, 1)), np.ones((2, 1))
    m.save(tmp_path / "m.h5")
    back = GMMMachine.from_hdf5(tmp_path / "m.h5")
    assert back.max_fitting_steps is None and back.convergence_threshold == 1e-4
    assert back.random_state == 5 and back.ubm is None and back.trainer == "ml"


def test_save_into_an_open_file_and_group(tmp_path):
    s = GMMStats.from_hdf5(HERE / "ref_stats.h5")
    with h5py.File(tmp_path / "two.h5", "w") as f:
        s.save(f.create_group("stats"))
        GMMMachine.from_hdf5(HERE / "ref_gmm_ml_thr_d.h5").save(f.create_group("machine"))
    with h5py.File(tmp_path / "two.h5", "r") as f:
        _assert_stats(GMMStats.from_hdf5(f["stats"]), "stats")
        _assert_machine(GMMMachine.from_hdf5(f["machine"]), "ml_thr_d")


def test_a_group_holding_a_saved_object_is_refused_before_anything_is_written(tmp_path):
    """The second save failed halfway (h5py's 'name already exists'), with the first object's
    class stamp already replaced: neither could be read."""
    import emkit.io
    from emkit.plda import PLDA

    ubm = GMMMachine.from_hdf5(HERE / "ref_gmm_ml_thr_d.h5")
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["user_data"] = np.arange(3)  # a group of other things is written into, as before
        emkit.io.save(ubm, f)
        with pytest.raises(ValueError, match="t.h5: group '/' already holds a saved object "
                                             "\\(attribute 'emkit_class'\\); save into a new group"):
            emkit.io.save(PLDA(), f)
    _assert_machine(emkit.io.load(tmp_path / "t.h5"), "ml_thr_d")


# ---------------------------------------------------------------------------------------------
# atomic writes and errors
# ---------------------------------------------------------------------------------------------


def _failing_setitem(monkeypatch, name):
    original = h5py.Group.__setitem__

    def setitem(self, key, value):
        if key == name:
            raise OSError(f"simulated failure while writing {key!r}")
        return original(self, key, value)

    monkeypatch.setattr(h5py.Group, "__setitem__", setitem)


@pytest.mark.parametrize("kind,dataset", [("stats", "sumPx"), ("machine", "gaussians/means"),
                                          ("machine", "update_weights")])
def test_failing_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, kind, dataset):
    obj = (GMMStats.from_hdf5(HERE / "ref_stats.h5") if kind == "stats"
           else GMMMachine.from_hdf5(HERE / "ref_gmm_map.h5", ubm=_ubm()))
    key = dataset.split("/")[-1]
    fresh, existing = tmp_path / "fresh.h5", tmp_path / "existing.h5"
    existing.write_bytes((HERE / "ref_stats.h5").read_bytes())
    before = existing.read_bytes()
    _failing_setitem(monkeypatch, key)
    with pytest.raises(OSError, match="simulated failure"):
        obj.save(fresh)
    with pytest.raises(OSError, match="simulated failure"):
        obj.save(existing)
    monkeypatch.undo()
    assert not fresh.exists()
    assert existing.read_bytes() == before
    _assert_stats(GMMStats.from_hdf5(existing), "stats")
    assert sorted(os.listdir(tmp_path)) == ["existing.h5"]  # no temporary file left behind


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        GMMMachine.from_hdf5(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        GMMStats.from_hdf5(tmp_path / "nope.h5")


def test_file_of_another_class_is_refused():
    with pytest.raises(ValueError, match="GMMMachine"):
        GMMMachine.from_hdf5(HERE / "ref_stats.h5")
    with pytest.raises(ValueError, match="GMMStats"):
        GMMStats.from_hdf5(HERE / "ref_gmm_ml_thr_scalar.h5")
    with pytest.raises(ValueError, match="GMMMachine"):
        GMMMachine.from_hdf5(HERE / "legacy_stats.h5")
    with pytest.raises(ValueError, match="GMMStats"):
        GMMStats.from_hdf5(HERE / "legacy_gmm.h5")


# ---------------------------------------------------------------------------------------------
# issue 12: persistence by registry
# ---------------------------------------------------------------------------------------------


def test_machines_and_stats_go_through_the_registry_with_the_ubm_nested(tmp_path):
    import emkit.io

    m = GMMMachine.from_hdf5(HERE / "ref_gmm_map.h5", ubm=_ubm())
    emkit.io.save(m, tmp_path / "map.h5")
    back = emkit.io.load(tmp_path / "map.h5", expected=GMMMachine)
    assert back.trainer == "map" and back == m and back.ubm == m.ubm
    assert isinstance(emkit.io.load(HERE / "ref_stats.h5"), GMMStats)
    with h5py.File(tmp_path / "map.h5", "a") as f:  # a UBM group linked into itself
        del f["ubm"]
        f["ubm"] = f["/"]
    from emkit.io import InvalidFileError

    with pytest.raises(InvalidFileError, match="nests UBMs more than 4 deep"):
        GMMMachine.from_hdf5(tmp_path / "map.h5")


def test_the_gmm_layout_sets_no_attribute_of_the_objects_it_reads_or_writes():
    import ast
    import pathlib

    import emkit.io.gmm as layout

    tree = ast.parse(pathlib.Path(layout.__file__).read_text())
    targets = [t for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    targets += [e for t in targets if isinstance(t, ast.Tuple) for e in t.elts]
    assert [ast.unparse(t) for t in targets if isinstance(t, ast.Attribute)] == []


@pytest.mark.parametrize("floor", [0.5, np.array([0.5, 0.1]), np.array([[0.5, 0.1], [0.1, 0.5]])])
def test_variances_a_file_holds_below_its_floor_are_floored_on_load(tmp_path, floor):
    """A load keeps the reader's variances without a copy only where none is below the floor; a
    file with some below it (written by hand, or another tool) loads floored, as it always did."""
    m = GMMMachine(2)
    m.means, m.weights = np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([0.4, 0.6])
    m.variance_thresholds = 1e-6
    m.variances = np.array([[0.2, 2.0], [0.3, 0.05]])
    m.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f["gaussians/variance_thresholds"]
        f["gaussians/variance_thresholds"] = floor
    back = GMMMachine.from_hdf5(tmp_path / "m.h5")
    np.testing.assert_array_equal(back.variances, np.maximum(floor, m.variances))
    np.testing.assert_array_equal(back.variance_thresholds, floor)
    assert not back.variances.flags.writeable and not back.means.flags.writeable
    assert np.min(back.variances - np.broadcast_to(floor, (2, 2))) == 0.0
