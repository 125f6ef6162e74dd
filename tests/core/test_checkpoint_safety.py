"""A checkpoint resumes only the run that wrote it: every byte of the data, the labels and every
parameter are compared, and a mismatch says what differs.  Interrupted saves leave no litter."""

import copy
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import emkit._em
from emkit import GMMMachine, GMMStats, ISVMachine, IVectorMachine, JFAMachine, KMeansMachine
from emkit._checkpoint import Checkpoint, CheckpointMismatchError, TrainingInput
from emkit.io.atomic import _HOST, _TEMPORARY, _name_key, remove_stale_temporaries
from emkit._fingerprint import data_fingerprint, labels_fingerprint

DATA = re.escape("the training data X differ")
LABELS = re.escape("the labels y differ")
AFRESH = re.escape("delete the file or pass another checkpoint path")


def _frames(n=600, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n // 3, d)) + s for s in (0, 4, 8)])


@pytest.fixture(scope="module")
def ubm():
    return GMMMachine(3, max_fitting_steps=3).fit(_frames())


@pytest.fixture(scope="module")
def sessions(ubm):
    """30 sessions of GMMStats and their labels (6 classes)."""
    return ubm.transform(np.array_split(_frames(seed=1), 30)), list(np.arange(30) % 6)


def _copy_stats(stats):
    return [copy.deepcopy(s) for s in stats]


# -- one estimator at a time: make, fit, and the parameter a test changes ------------------------
def _gmm(path, **kw):
    params = dict(update_variances=True, update_weights=True, max_fitting_steps=3, convergence_threshold=None)
    return GMMMachine(3, checkpoint=path, **{**params, **kw})


def _kmeans(path, **kw):
    return KMeansMachine(3, checkpoint=path, **{"max_iter": 3, "convergence_threshold": None, **kw})


def _fit_frames(make, path, X, **kw):
    return make(path, **kw).fit(X)


@pytest.fixture
def spy_run_em(monkeypatch):
    """Counts the EM loops that actually run (a finished checkpoint runs none)."""
    calls = []
    original = emkit._em.run_em

    def run_em(*args, **kwargs):
        calls.append(kwargs.get("name"))
        return original(*args, **kwargs)

    monkeypatch.setattr(emkit._em, "run_em", run_em)
    return calls


@pytest.mark.parametrize("make", [_gmm, _kmeans], ids=["gmm", "kmeans"])
def test_frames_one_row_changed_is_refused_and_the_same_data_resumes(tmp_path, make, spy_run_em):
    X = _frames()
    path = tmp_path / "run.h5"
    first = _fit_frames(make, path, X)
    loops = len(spy_run_em)
    again = _fit_frames(make, path, X.copy())  # same values, another array: resumes, no training
    assert len(spy_run_em) == loops
    assert again.n_iter_ == first.n_iter_ == 3
    # one value of one row that the old 16-row sample did not cover
    changed = X.copy()
    changed[37, 1] += 1e-9
    expected = f"another training run: {DATA}. To start afresh, {AFRESH}"
    with pytest.raises(CheckpointMismatchError, match=expected):
        _fit_frames(make, path, changed)
    with pytest.raises(ValueError, match=DATA):  # a ValueError, as documented
        _fit_frames(make, path, X[::-1].copy())  # same rows, other order
    assert len(spy_run_em) == loops


@pytest.mark.parametrize("make, name, value", [(_gmm, "update_weights", False),
                                               (_gmm, "mean_var_update_threshold", 1e-3),
                                               (_kmeans, "max_iter", 4), (_kmeans, "random_state", 1)],
                         ids=["gmm-update_weights", "gmm-mean_var_update_threshold", "kmeans-max_iter",
                              "kmeans-random_state"])
def test_frames_changed_hyperparameter_is_named(tmp_path, make, name, value):
    X = _frames()
    _fit_frames(make, tmp_path / "run.h5", X)
    with pytest.raises(CheckpointMismatchError) as info:
        _fit_frames(make, tmp_path / "run.h5", X, **{name: value})
    assert info.value.differences == [f"the parameters differ ({name})"]


def test_gmm_initial_gaussians_are_part_of_the_run(tmp_path):
    X = _frames()
    _gmm(tmp_path / "run.h5").fit(X)
    other = _gmm(tmp_path / "run.h5")
    other.means = X[:3]
    with pytest.raises(CheckpointMismatchError, match=re.escape("parameters differ (initial Gaussians)")):
        other.fit(X)


@pytest.mark.parametrize("name, value, message", [
    ("weights", 0.0, "weights must be >= 0, not all zero"),
    ("variances", -1.0, "variances must be > 0"),
])
def test_a_tampered_training_state_is_refused_naming_the_checkpoint(tmp_path, name, value, message):
    # a finished checkpoint with zero weights gave a UBM of zero weights (a file no reader
    # takes); negative variances were floored silently
    import h5py

    from emkit.io import InvalidFileError

    path = tmp_path / "ck.h5"
    X = _frames()
    _fit_frames(_gmm, path, X)
    with h5py.File(path, "r+") as f:
        f["state"][name][...] = value
        del f.attrs["state_digest"]  # (as a checkpoint of an earlier version: the digest catches it first)
    with pytest.raises(InvalidFileError, match=re.escape(f"{path}: the training state it holds is not usable "
                                                         f"({message}")):
        _fit_frames(_gmm, path, X)


def test_data_and_parameters_changed_are_both_reported(tmp_path):
    X = _frames()
    _kmeans(tmp_path / "run.h5").fit(X)
    with pytest.raises(CheckpointMismatchError) as info:
        _kmeans(tmp_path / "run.h5", max_iter=5).fit(X + 1.0)
    assert info.value.differences == ["the training data X differ", "the parameters differ (max_iter)"]


# -- statistics-based estimators ------------------------------------------------------------------
def _ivector(path, ubm, **kw):
    params = dict(dim_t=2, max_iterations=3, random_state=1)
    params.update(kw)
    return IVectorMachine(ubm, checkpoint=path, **params)


def _isv(path, ubm, **kw):
    params = dict(r_U=2, em_iterations=3)
    params.update(kw)
    return ISVMachine(ubm=ubm, checkpoint=path, **params)


def _jfa(path, ubm, **kw):
    params = dict(r_U=2, r_V=2, em_iterations=2)
    params.update(kw)
    return JFAMachine(ubm=ubm, checkpoint=path, **params)


def _fit_stats(kind, path, ubm, stats, labels, **kw):
    if kind == "ivector":
        return _ivector(path, ubm, **kw).fit(stats)
    return (_isv if kind == "isv" else _jfa)(path, ubm, **kw).fit(stats, labels)


def _result(kind, machine):
    if kind == "ivector":
        return [machine.T, machine.sigma]
    return [machine.U, machine.D] + ([machine.V] if kind == "jfa" else [])


KINDS = ["ivector", "isv", "jfa"]


@pytest.mark.parametrize("kind", KINDS)
def test_sessions_same_input_resumes(tmp_path, kind, ubm, sessions, spy_run_em):
    stats, labels = sessions
    path = tmp_path / "run.h5"
    first = _fit_stats(kind, path, ubm, stats, labels)
    loops = len(spy_run_em)
    again = _fit_stats(kind, path, ubm, _copy_stats(stats), list(labels))
    assert len(spy_run_em) == loops  # nothing trained: the finished checkpoint was used
    for a, b in zip(_result(kind, again), _result(kind, first)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("field", ["sum_px", "sum_pxx", "n", "t"])
def test_sessions_one_session_changed_is_refused(tmp_path, kind, field, ubm, sessions):
    stats, labels = sessions
    path = tmp_path / "run.h5"
    _fit_stats(kind, path, ubm, stats, labels)
    changed = _copy_stats(stats)
    if field == "t":
        changed[13].t += 1
    else:
        getattr(changed[13], field)[1, ...] *= 1 + 1e-12  # one re-extracted utterance, barely different
    with pytest.raises(CheckpointMismatchError) as info:
        _fit_stats(kind, path, ubm, changed, labels)
    assert info.value.differences == ["the training data X differ"]


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("change", ["one label", "swapped labels", "label type"])
def test_sessions_changed_labels_are_refused(tmp_path, kind, change, ubm, sessions):
    stats, labels = sessions
    _fit_stats(kind, tmp_path / "run.h5", ubm, stats, labels)
    other = list(labels)
    if change == "one label":
        other[7] = (other[7] + 1) % 6
    elif change == "swapped labels":
        other[0], other[1] = other[1], other[0]
    else:
        other = [str(v) for v in labels]
    expected = f"another training run: {LABELS}. To start afresh"
    with pytest.raises(CheckpointMismatchError, match=expected) as info:
        _fit_stats(kind, tmp_path / "run.h5", ubm, stats, other)
    assert info.value.differences == ["the labels y differ"]


@pytest.mark.parametrize("kind, name, value", [("ivector", "dim_t", 3), ("ivector", "update_sigma", False),
                                               ("isv", "relevance_factor", 5.0), ("isv", "r_U", 1),
                                               ("jfa", "r_V", 1), ("jfa", "em_iterations", 3)])
def test_sessions_changed_hyperparameter_is_named(tmp_path, kind, name, value, ubm, sessions):
    stats, labels = sessions
    _fit_stats(kind, tmp_path / "run.h5", ubm, stats, labels)
    with pytest.raises(CheckpointMismatchError) as info:
        _fit_stats(kind, tmp_path / "run.h5", ubm, stats, labels, **{name: value})
    assert info.value.differences == [f"the parameters differ ({name})"]


@pytest.mark.parametrize("kind", KINDS)
def test_sessions_other_ubm_is_named(tmp_path, kind, ubm, sessions):
    stats, labels = sessions
    _fit_stats(kind, tmp_path / "run.h5", ubm, stats, labels)
    other = copy.deepcopy(ubm)
    other.means = ubm.means + 1e-9
    with pytest.raises(CheckpointMismatchError) as info:
        _fit_stats(kind, tmp_path / "run.h5", other, stats, labels)
    assert info.value.differences == ["the parameters differ (ubm)"]


def test_jfa_phases_hash_the_data_once(monkeypatch, tmp_path, ubm, sessions):
    import emkit._checkpoint as ck

    calls = []
    original = ck.data_fingerprint
    monkeypatch.setattr(ck, "data_fingerprint", lambda X: calls.append(1) or original(X))
    stats, labels = sessions
    _fit_stats("jfa", tmp_path / "run.h5", ubm, stats, labels)
    assert len(calls) == 1


# -- other refusals ----------------------------------------------------------------------------
def test_checkpoint_of_another_estimator_is_refused(tmp_path):
    X = _frames()
    _kmeans(tmp_path / "run.h5").fit(X)
    with pytest.raises(CheckpointMismatchError, match="written by a KMeansMachine, not a GMMMachine"):
        _gmm(tmp_path / "run.h5").fit(X)


def test_checkpoint_of_an_older_format_is_refused(tmp_path):
    import h5py

    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:  # what emkit wrote before fingerprints covered every byte
        f.attrs["emkit_class"] = "TrainingCheckpoint"
        f.attrs["emkit_format_version"] = 1
        f.attrs["owner"] = "GMMMachine"
        f.attrs["run_id"] = "abc:def"
        f.attrs["step"] = 3
        f.attrs["completed"] = True
    with pytest.raises(CheckpointMismatchError, match=f"another emkit version.*{AFRESH}"):
        _gmm(path).fit(_frames())


@pytest.mark.parametrize("attribute, value", [("owner", "Evil<payload>"),
                                              ("parameter_fingerprints", '{"Evil<payload>": "1"}'),
                                              ("parameter_fingerprints", "Evil<payload> not json")])
def test_mismatch_message_never_echoes_the_files_text(tmp_path, attribute, value):
    import h5py

    X = _frames()
    path = tmp_path / "run.h5"
    _kmeans(path).fit(X)
    with h5py.File(path, "r+") as f:
        f.attrs[attribute] = value
    with pytest.raises(CheckpointMismatchError) as info:
        _kmeans(path).fit(X)
    assert "Evil" not in str(info.value) and "payload" not in str(info.value)
    assert str(path) in str(info.value)


# -- tampered checkpoints of the same run: read like untrusted model files ------------------------
def _set(name, value, *, completed=None):
    def change(f):
        if name in f:
            del f[name]
        f[name] = value
        if completed is not None:
            f.attrs["completed"] = completed
    return change


def _attr(name, value):
    return lambda f: f.attrs.__setitem__(name, value)


def _external(f):
    import h5py

    other = os.path.join(os.path.dirname(f.filename), "elsewhere.h5")
    with h5py.File(other, "w") as g:
        g["m"] = np.full((3, 3), 42.0)
    del f["state/means"]
    f["state/means"] = h5py.ExternalLink(other, "/m")


def _huge_history(f):
    del f["history"]
    f.create_dataset("history", shape=(2**34,), dtype="f8", chunks=(1024,))


def _delete(name):
    return lambda f: f.__delitem__(name)


def _uncompleted_step(step):
    def change(f):
        f.attrs["completed"] = False
        f.attrs["step"] = np.int64(step)
    return change


TAMPERED = {
    "nan state": (_set("state/means", np.full((3, 3), np.nan)), "'/state/means'", "NaN"),
    "inf state, resuming": (_set("state/variances", np.full((3, 3), np.inf), completed=False),
                            "'/state/variances'", "infinite"),
    "external link": (_external, "'/state/means'", "external link"),
    "text state": (_set("state/weights", "0.5 0.5"), "'/state/weights'", "must hold numbers"),
    "missing state": (_delete("state/means"), "'/state/means'", "missing"),
    "state of another shape": (_set("state/means", np.zeros((5, 3))), "'/state/means'",
                               "shape (3, 3)"),
    "state of another shape, resuming": (_set("state/weights", np.full(4, 0.25), completed=False),
                                         "'/state/weights'", "shape (3,)"),
    "long state name": (_set("state/" + "x" * 100_000, np.zeros(3)), "'/state'", "name"),
    "history larger than the file": (_huge_history, "'/history'", "shape"),
    "history of another length": (_set("history", np.zeros(5)), "'/history'", "shape (3,)"),
    "negative step": (_uncompleted_step(-5), "'/step'", ">= 0"),
    "step beyond the maximum": (_uncompleted_step(4), "'/step'", "<= 3"),
    "step as text": (_attr("step", "3"), "'/step'", "integers"),
    "completed not a boolean": (_attr("completed", np.int64(7)), "'/completed'", "boolean"),
    "extra not an object": (_attr("extra", "[1, 2]"), "'/extra'", "JSON object"),
    "extra deeply nested": (_attr("extra", "[" * 60_000), "'/extra'", "JSON object"),
    "extra phase as text": (_attr("extra", '{"phase": "0"}'), "'/extra'", "phase"),
    "extra converged not a boolean": (_attr("extra", '{"phase": 0, "converged": 1}'), "'/extra'",
                                      "converged"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_checkpoint_is_refused_naming_the_file_and_kept(tmp_path, case, spy_run_em):
    import h5py

    from emkit.io import InvalidFileError

    change, where, problem = TAMPERED[case]
    X = _frames()
    path = tmp_path / "run.h5"
    _gmm(path).fit(X)
    with h5py.File(path, "r+") as f:
        change(f)
        f.attrs.pop("state_digest", None)  # (the structural checks, as on a file without a digest)
    before = path.read_bytes()
    loops = len(spy_run_em)
    with pytest.raises(InvalidFileError) as info:
        _gmm(path).fit(X)
    message = str(info.value)
    assert str(path) in message and where in message and problem in message, message
    assert len(message) < 300
    assert path.read_bytes() == before  # neither resumed from nor overwritten
    assert len(spy_run_em) == loops


@pytest.mark.parametrize("change", ["a state value", "completed", "phase", "history", "step"])
def test_a_checkpoint_whose_state_does_not_match_its_digest_is_refused(tmp_path, change, spy_run_em):
    """A flipped bit or an edit gave another model without a word (from a finished checkpoint,
    values up to 3e38 times off; ``completed`` set on a partial one stopped training early)."""
    import h5py

    from emkit.io import InvalidFileError

    X = _frames()
    path = tmp_path / "run.h5"
    reference = _gmm(path, max_fitting_steps=3).fit(X)
    with h5py.File(path, "r+") as f:
        if change == "a state value":
            means = f["state/means"][...]
            means.view(np.uint64)[1, 2] ^= np.uint64(1 << 40)  # one bit of the mantissa
            f["state/means"][...] = means
        elif change == "completed":
            f.attrs["completed"] = False
        elif change == "phase":
            f.attrs["extra"] = '{"phase": 3}'
        elif change == "history":
            f["history"][0] = f["history"][0] * 1.5
        else:
            del f["history"]
            f["history"] = np.zeros(2)
            f.attrs["step"] = np.int64(2)
    before = path.read_bytes()
    loops = len(spy_run_em)
    with pytest.raises(InvalidFileError, match=re.escape(f"{path}: the training state does not match the "
                                                         "digest saved with it (the file was damaged or edited)")):
        _gmm(path, max_fitting_steps=3).fit(X)
    assert path.read_bytes() == before and len(spy_run_em) == loops
    with h5py.File(path, "r+") as f:  # a checkpoint of an earlier emkit has no digest: read as before
        del f.attrs["state_digest"]
    if change == "a state value":
        resumed = _gmm(path, max_fitting_steps=3).fit(X)
        assert not np.array_equal(resumed.means, reference.means)


def test_tampered_checkpoint_of_a_later_jfa_phase_is_refused(tmp_path, ubm, sessions):
    import h5py

    from emkit.io import InvalidFileError

    stats, labels = sessions
    path = tmp_path / "run.h5"
    _fit_stats("jfa", path, ubm, stats, labels)
    with h5py.File(path, "r+") as f:  # the last (D) phase's checkpoint: U and V are restored from it
        f["state/U"][0, 0] = np.nan
    with pytest.raises(InvalidFileError, match=re.escape(f"{path}: dataset '/state/U' holds NaN")):
        _fit_stats("jfa", path, ubm, stats, labels)


# -- what the fingerprint covers ------------------------------------------------------------------
def test_fingerprint_is_the_values_not_the_layout(tmp_path):
    X = _frames()
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    reference = data_fingerprint(X)
    assert data_fingerprint(mapped) == reference
    assert data_fingerprint(np.asfortranarray(X)) == reference
    assert data_fingerprint(np.vstack([X, X])[: len(X)]) == reference
    strided = np.repeat(X, 2, axis=0)[::2]  # non-contiguous rows
    assert not strided.flags.c_contiguous and data_fingerprint(strided) == reference
    assert data_fingerprint(X.astype(np.float32)) != reference
    assert data_fingerprint(X.reshape(-1, 1)) != reference
    flipped = X.copy()
    flipped.view(np.uint64)[-1, -1] ^= np.uint64(1)  # the last bit (a Python 1: float on numpy 1)
    assert data_fingerprint(flipped) != reference


def test_fingerprint_of_large_non_contiguous_input_is_blockwise_and_exact(monkeypatch):
    import emkit._fingerprint as fp

    monkeypatch.setattr(fp, "_BLOCK_BYTES", 64)  # many blocks
    X = _frames()
    assert data_fingerprint(np.asfortranarray(X)) == data_fingerprint(X)


def test_labels_fingerprint_by_value_and_type():
    assert labels_fingerprint(None) == ""
    assert labels_fingerprint([1, 2, 3]) == labels_fingerprint([np.int64(1), 2, 3])
    assert labels_fingerprint([1, 2, 3]) != labels_fingerprint(["1", "2", "3"])
    assert labels_fingerprint(["a", "b"]) != labels_fingerprint(["b", "a"])
    assert labels_fingerprint(["ab", "c"]) != labels_fingerprint(["a", "bc"])
    assert labels_fingerprint([[0, 0], [1]]) != labels_fingerprint([[0], [0, 1]])  # per-class form
    assert labels_fingerprint([np.array([0, 0]), np.array([1])]) == labels_fingerprint([[0, 0], [1]])
    assert labels_fingerprint(np.array(["a", "b"])) == labels_fingerprint(["a", "b"])
    assert labels_fingerprint(np.arange(3, dtype=np.int32)) == labels_fingerprint([0, 1, 2])
    assert labels_fingerprint([True, False]) != labels_fingerprint([1, 0])
    assert labels_fingerprint([2**64, 1]) == labels_fingerprint([2**64, np.int64(1)])  # beyond int64
    assert labels_fingerprint([np.uint64(2**64 - 1)]) != labels_fingerprint([-1])


def test_fingerprint_of_gmmstats_covers_every_field():
    s = GMMStats(2, 3)
    s.n[:] = [1.0, 2.0]
    base = data_fingerprint([s])
    for mutate in (lambda t: setattr(t, "t", 5), lambda t: setattr(t, "log_likelihood", -1.0),
                   lambda t: t.sum_px.__setitem__((1, 2), 1e-300),
                   lambda t: t.sum_pxx.__setitem__((0, 0), 3.0)):
        other = copy.deepcopy(s)
        mutate(other)
        assert data_fingerprint([other]) != base
    assert data_fingerprint([copy.deepcopy(s)]) == base


def test_dask_array_is_hashed_per_chunk_on_the_workers(tmp_path):
    da = pytest.importorskip("dask.array")
    X = _frames()
    lazy = da.from_array(X, chunks=(100, -1))
    assert data_fingerprint(lazy) == data_fingerprint(da.from_array(X.copy(), chunks=(100, -1)))
    changed = X.copy()
    changed[250, 0] += 1e-12
    assert data_fingerprint(da.from_array(changed, chunks=(100, -1))) != data_fingerprint(lazy)
    path = tmp_path / "run.h5"
    _gmm(path).fit(lazy)
    _gmm(path).fit(da.from_array(X.copy(), chunks=(100, -1)))  # same values, same chunks: resumes
    with pytest.raises(CheckpointMismatchError, match=DATA):
        _gmm(path).fit(da.from_array(changed, chunks=(100, -1)))


def test_checkpoint_of_a_cluster_run_resumed_in_memory_says_so(tmp_path):
    """Dask and in-memory data are fingerprinted differently: the same data resumed the other way
    is named as such, not as other data; a checkpoint from before the kind was recorded keeps
    the old message."""
    import h5py

    da = pytest.importorskip("dask.array")
    X = _frames()
    on_cluster, in_memory = tmp_path / "cluster.h5", tmp_path / "memory.h5"
    _gmm(on_cluster).fit(da.from_array(X, chunks=(100, -1)))
    with pytest.raises(CheckpointMismatchError) as info:
        _gmm(on_cluster).fit(X)
    assert info.value.differences == [
        "it was written by a cluster run (--workers or --scheduler; in Python: dask data), whose "
        "data fingerprint cannot be compared with this run's: resume it on a cluster"]
    _gmm(in_memory).fit(X)
    with pytest.raises(CheckpointMismatchError, match="written by a run without a cluster.*resume "
                                                      "it without a cluster"):
        _gmm(in_memory).fit(da.from_array(X, chunks=(100, -1)))
    with pytest.raises(CheckpointMismatchError, match=DATA):  # the same kind: the data differ
        _gmm(in_memory).fit(X + 1.0)
    with h5py.File(on_cluster, "r+") as f:
        del f.attrs["data_kind"]
    with pytest.raises(CheckpointMismatchError) as info:
        _gmm(on_cluster).fit(X)
    assert info.value.differences == ["the training data X differ"]


def test_dask_bag_and_delayed_sessions(ubm, sessions):
    db = pytest.importorskip("dask.bag")
    import dask

    stats, _ = sessions
    bag = db.from_sequence(stats, npartitions=4)
    assert data_fingerprint(bag) == data_fingerprint(db.from_sequence(_copy_stats(stats), npartitions=4))
    changed = _copy_stats(stats)
    changed[20].sum_px[0, 0] += 1e-9
    assert data_fingerprint(db.from_sequence(changed, npartitions=4)) != data_fingerprint(bag)
    delayed = [dask.delayed(copy.deepcopy)(s) for s in stats]
    assert data_fingerprint(delayed) == data_fingerprint(stats)  # each item hashed where it is computed
    assert data_fingerprint([dask.delayed(copy.deepcopy)(s) for s in changed]) == data_fingerprint(changed)


def test_would_resume_tells_whether_fit_would_refuse_the_checkpoint(tmp_path, ubm, sessions):
    # (emkit train-isv/jfa/ivector keep statistics that replace stale ones before the training
    # only when fit takes their checkpoint as its run's)
    db = pytest.importorskip("dask.bag")
    import dask

    from emkit._checkpoint import would_resume

    stats, labels = sessions
    memory, cluster = tmp_path / "memory.h5", tmp_path / "cluster.h5"
    _fit_stats("isv", memory, ubm, stats, labels)
    assert would_resume(memory, _isv(memory, ubm), _copy_stats(stats), list(labels))
    changed = _copy_stats(stats)
    changed[7].sum_px[1, 2] += 1e-9
    assert not would_resume(memory, _isv(memory, ubm), changed, labels)
    # the same data, other parameters, labels or estimator: fit refuses it too
    assert not would_resume(memory, _isv(memory, ubm, r_U=1), stats, labels)
    assert not would_resume(memory, _isv(memory, ubm), stats, labels[::-1])
    assert not would_resume(memory, _jfa(memory, ubm), stats, labels)
    with dask.config.set(scheduler="sync"):  # (a bag's default, processes, is slow to start)
        bag = db.from_sequence(stats, npartitions=3)
        assert not would_resume(memory, _isv(memory, ubm), bag, labels)  # another kind
        _fit_stats("isv", cluster, ubm, db.from_sequence(stats, npartitions=3), labels)
        assert would_resume(cluster, _isv(cluster, ubm),
                            db.from_sequence(_copy_stats(stats), npartitions=3), labels)
        assert not would_resume(cluster, _isv(cluster, ubm),
                                db.from_sequence(stats, npartitions=2), labels)
    assert not would_resume(cluster, _isv(cluster, ubm), stats, labels)
    assert not would_resume(tmp_path / "missing.h5", _isv(memory, ubm), stats, labels)
    (tmp_path / "damaged.h5").write_bytes(b"not HDF5" * 100)
    assert not would_resume(tmp_path / "damaged.h5", _isv(memory, ubm), stats, labels)


def test_training_input_hashes_once():
    calls = []
    inputs = TrainingInput(_frames(), [1, 2])
    first = inputs.fingerprints()
    inputs.X = None  # a second call does not look at the data again
    calls.append(inputs.fingerprints())
    assert calls == [first]


# -- temporary files of interrupted saves ------------------------------------------------------------
def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temporary(directory, checkpoint_name, pid, host=_HOST, tag="abc_12", legacy=False):
    name = f".emkit-{tag}.{'ckpt.' if legacy else ''}{_name_key(checkpoint_name)}.{host}.{pid}.h5.tmp"
    (directory / name).write_bytes(b"partial")
    return name


def test_stale_temporaries_of_this_checkpoint_are_removed_and_others_kept(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        stale = _temporary(tmp_path, "run.h5", dead)
        stale2 = _temporary(tmp_path, "run.h5", dead, tag="x9")
        stale_of_an_old_version = _temporary(tmp_path, "run.h5", dead, tag="x8", legacy=True)
        live = _temporary(tmp_path, "run.h5", sleeper.pid)  # another process is writing it now
        mine = _temporary(tmp_path, "run.h5", os.getpid(), tag="me")
        other_checkpoint = _temporary(tmp_path, "other.h5", dead)
        other_host = _temporary(tmp_path, "run.h5", dead, host="elsewhere-node")
        legacy = ".emkit-k3j4h5.h5.tmp"  # no owner in the name: cannot be attributed
        (tmp_path / legacy).write_bytes(b"partial")
        assert _TEMPORARY.match(stale) and _TEMPORARY.match(live)

        _kmeans(tmp_path / "run.h5").fit(_frames())

        left = set(os.listdir(tmp_path))
        assert stale not in left and stale2 not in left and stale_of_an_old_version not in left
        assert {live, mine, other_checkpoint, other_host, legacy, "run.h5"} == left
    finally:
        sleeper.kill()
        sleeper.wait()


def test_removal_on_load_reports_what_it_removed(tmp_path):
    stale = _temporary(tmp_path, "run.h5", _dead_pid())
    assert remove_stale_temporaries(tmp_path / "run.h5") == [str(tmp_path / stale)]
    assert remove_stale_temporaries(tmp_path / "run.h5") == []


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from emkit import KMeansMachine
    from emkit._checkpoint import Checkpoint

    class Killer:
        def __array__(self, dtype=None, copy=None):
            os.kill(os.getpid(), signal.SIGKILL)

    X = np.arange(12.0).reshape(6, 2)
    checkpoint = Checkpoint(sys.argv[1], KMeansMachine(2), X)
    checkpoint.save(1, [1.0], {"centroids": np.zeros((2, 2)), "killer": Killer()})
""")


def test_save_killed_midway_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    path = tmp_path / "run.h5"
    child = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    left = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(left) == 1 and _TEMPORARY.match(left[0]) and not path.exists()
    X = np.arange(12.0).reshape(6, 2)
    assert Checkpoint(path, KMeansMachine(2), X).load() is None
    assert os.listdir(tmp_path) == []
