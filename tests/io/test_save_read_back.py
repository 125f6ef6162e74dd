"""``save`` reads back what it wrote without a second copy of the model (:mod:`emkit.io.read_back`):
the datasets are compared block by block with the arrays written, and the reader builds the
object from read-only views of them; a load keeps the arrays its reader read.  What the read-back
refuses: tests/io/test_unloadable_saves.py."""

import gc
import hashlib
import tracemalloc

import _model_files as mf
import h5py
import numpy as np
import pytest

import emkit.io
from emkit import PLDA, GMMMachine, ISVMachine, IVectorMachine, KMeansMachine, Whitening
from emkit.experiment import EnrolledModels
from emkit.io import read_back
from emkit.io._registry import register
from emkit.io.h5 import read_array, read_stamp, write_stamp
from emkit.io.read_back import ReadBackMismatch, reading_back, write_array

MB = 2**20


def _ubm(C, D):
    rng = np.random.default_rng(0)
    ubm = GMMMachine(C)
    ubm.means = rng.normal(size=(C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = np.full(C, 1.0 / C)
    return ubm


# each model holds 40 MB in one array (two for a GMM), and little else
def _ivector():
    machine = IVectorMachine(_ubm(100, 50), 1000)
    machine.T = np.random.default_rng(1).normal(size=(100, 50, 1000))
    machine.sigma = np.ones((100, 50))
    return machine, machine.T


def _isv():
    machine = ISVMachine(100, ubm=_ubm(1000, 50))
    machine.U = np.random.default_rng(2).normal(size=(50_000, 100))
    machine.D = np.ones(50_000)
    return machine, machine.U


def _enrolled():
    means = np.random.default_rng(3).normal(size=(100, 1000, 50))
    models = EnrolledModels("gmm-map", [f"model{i}" for i in range(100)], {"means": means},
                            _ubm(1000, 50), {"relevance_factor": 4.0})
    return models, means


def _gmm():
    # means and variances of 20 MB each; variances above a (D,) floor, kept as they are
    machine = _ubm(50_000, 50)
    machine.variance_thresholds = np.full(50, 0.5)
    return machine, machine.means, machine.variances


def _kmeans():
    centroids = np.random.default_rng(4).normal(size=(100_000, 50))
    machine = KMeansMachine._from_fitted(dict(n_clusters=100_000), centroids)
    return machine, machine.centroids_


def _plda():
    D, rng = 2300, np.random.default_rng(5)
    plda = PLDA._from_fitted(mean=rng.normal(size=D), F=rng.normal(size=(D, D)),
                             G=rng.normal(size=(D, 10)), sigma=np.ones(D),
                             log_likelihood=np.zeros(1), n_iter=0, converged=False, n_classes=2,
                             model="full", dim_f=D, dim_g=10)
    return plda, plda.F_


def _whitening():
    weights = np.random.default_rng(6).normal(size=(2300, 2300))
    white = Whitening._from_fitted(weights, np.zeros(2300))
    return white, white.weights


LARGE = {"IVectorMachine T": _ivector, "ISVMachine U": _isv, "EnrolledModels means": _enrolled,
         "GMMMachine means variances": _gmm, "KMeansMachine centroids_": _kmeans,
         "PLDA F_": _plda, "Whitening weights": _whitening}


def _traced_peak(run):
    """Peak of the memory traced (tracemalloc) while ``run()`` runs, counting what was allocated
    before it, and what ``run`` returned."""
    gc.collect()
    tracemalloc.reset_peak()
    out = run()
    return tracemalloc.get_traced_memory()[1], out


@pytest.fixture
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


def _derived_bytes(model) -> int:
    """The bytes of the constants a model derived from its arrays, and holds (a k-means machine
    computes its distance constants when fitted or loaded: two more arrays of its centroids'
    size): the model's own, not a copy."""
    return sum(a.nbytes for key, a in _arrays(model).items() if key.startswith("_derived_cache"))


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array)).hexdigest()


def _stored(model, name):
    return model.arrays[name] if isinstance(model, EnrolledModels) else getattr(model, name)


@pytest.mark.parametrize("make", list(LARGE))
def test_save_holds_no_second_copy_of_the_largest_array(tmp_path, make, traced):
    """Before: the read-back held the file's arrays and the copies the object made of them: a save
    of the i-vector machine peaked at 3x its T (and its RSS +414 MB for a 197 MB T), a GMM's at
    2.5x its means and variances, a PLDA's 2.1x its F, a Whitening's 2x its weights, a k-means
    machine's 7x its centroids (its distance constants, 2x, computed for the machine read back)."""
    model, *largest = LARGE[make]()
    held = sum(a.nbytes for a in largest)
    assert held >= 40e6
    peak, _ = _traced_peak(lambda: emkit.io.save(model, tmp_path / "model.h5"))
    allowed = 1.3 * held + _derived_bytes(model)
    assert peak < allowed, f"{peak / MB:.1f} MB traced, {held / MB:.1f} MB held"
    loaded = emkit.io.load(tmp_path / "model.h5")  # (the file holds the model)
    for name, array in zip(make.split()[1:], largest):
        assert np.array_equal(_stored(loaded, name), array), name


@pytest.mark.parametrize("make", list(LARGE))
def test_load_holds_one_copy_of_the_largest_array(tmp_path, make, traced):
    """Before: the machine copied the arrays its reader had just read (2x T, or U, at the peak;
    2.5x a GMM's means and variances: the variances floored into a new array, then copied; 2.1x
    a PLDA's F, 2x a Whitening's weights; 5x k-means centroids, whose distance constants, 2x,
    are the machine's)."""
    model, *largest = LARGE[make]()
    emkit.io.save(model, tmp_path / "model.h5")
    expected = [_digest(a) for a in largest]  # (copies would count in the peak)
    nbytes = sum(a.nbytes for a in largest)
    del model, largest
    peak, loaded = _traced_peak(lambda: emkit.io.load(tmp_path / "model.h5"))
    allowed = 1.3 * nbytes + _derived_bytes(loaded)
    assert peak < allowed, f"{peak / MB:.1f} MB traced for {nbytes / MB:.1f} MB"
    for name, values in zip(make.split()[1:], expected):
        stored = _stored(loaded, name)
        assert _digest(stored) == values, name
        # fitted arrays are read-only, as after fit; enrolled models' arrays writable, as they were
        assert stored.flags.writeable == isinstance(loaded, EnrolledModels), name


def _arrays(obj, prefix="", depth=0):
    """The numpy arrays an emkit object holds in its attributes, in dicts there and in the emkit
    objects it holds (a backend's i-vector machine...), by path."""
    found = {}
    for key, value in vars(obj).items():
        for sub, item in (value.items() if isinstance(value, dict) else [("", value)]):
            name = f"{prefix}{key}[{sub}]" if sub else f"{prefix}{key}"
            if isinstance(item, np.ndarray):
                found[name] = item
            elif type(item).__module__.startswith("emkit") and hasattr(item, "__dict__") \
                    and depth < 3:
                found.update(_arrays(item, f"{name}.", depth + 1))
    return found


@pytest.mark.parametrize("kind", list(mf.BUILDERS))
def test_save_leaves_the_models_arrays_as_they_were(tmp_path, kind):
    """The reader builds the object read back from views of the model's own arrays: the model's
    arrays keep their values and flags (a writable array stays writable)."""
    model = mf.BUILDERS[kind]()
    before = {k: (a.copy(), a.flags.writeable) for k, a in _arrays(model).items()}
    assert before
    model.save(tmp_path / "model.h5")
    after = _arrays(model)
    assert after.keys() == before.keys()
    for key, (values, writeable) in before.items():
        assert np.array_equal(after[key], values) and after[key].flags.writeable == writeable, key
    assert type(mf.LOADERS[kind](tmp_path / "model.h5")) is type(model)


class _Changing:
    """A model whose writer changes the array it wrote before the read-back (as a failing disk,
    or another writer of the file, would change the file)."""


def _write_changing(obj, group):
    write_stamp(group, "_TestChangingArray", 1)
    values = np.zeros(6)
    write_array(group, "x", values)
    values[4] = -0.0  # the same number, other bits


def _read_changing(group, cls):
    read_stamp(group, "_TestChangingArray", 1)
    read_array(group, "x", shape=(6,))
    return cls()


register(_Changing, "_TestChangingArray", write=_write_changing, read=_read_changing)


@pytest.mark.parametrize("into", ["path", "open group"])
def test_a_dataset_that_does_not_read_back_what_was_written_is_not_saved(tmp_path, into,
                                                                       monkeypatch):
    monkeypatch.setattr(read_back, "BLOCK_BYTES", 16)  # the third block of two values differs
    match = r"nothing was written: dataset '(/inner)?/x' does not read back the values written " \
            r"into it \(they differ in the block from index \(4,\)\)"
    if into == "path":
        with pytest.raises(ReadBackMismatch, match=match):
            emkit.io.save(_Changing(), tmp_path / "model.h5")
        assert list(tmp_path.iterdir()) == []
        return
    with h5py.File(tmp_path / "model.h5", "w") as f:
        inner = f.create_group("inner")
        with pytest.raises(ReadBackMismatch, match=match):
            emkit.io.save(_Changing(), inner)
        assert list(inner) == [] and not inner.attrs


def test_outside_a_save_arrays_are_read_whole(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        values = np.arange(4.0)
        write_array(f, "x", values)
        values[0] = 9.0  # (not remembered: no save under way)
        read = read_array(f, "x")
        assert read.flags.writeable and read.tolist() == [0.0, 1.0, 2.0, 3.0]
        with reading_back():
            write_array(f, "y", values)
            read = read_array(f, "y")
            assert not read.flags.writeable and np.shares_memory(read, values)
            assert values.flags.writeable  # (a view of it is read-only, not the array)


@pytest.mark.parametrize("shape", [(), (0,), (5, 0), (7,), (10, 3), (2, 5, 7), (1, 100), (3, 1, 9)])
@pytest.mark.parametrize("budget", [1, 8, 24, 56, 10_000])
def test_blocks_cover_every_value_once_within_the_budget(shape, budget):
    seen = np.zeros(shape, dtype=int)
    for block in read_back._blocks(shape, 8, budget):
        assert seen[block].size * 8 <= max(budget, 8) or seen.size == 0
        seen[block] += 1
    assert np.all(seen == 1)
