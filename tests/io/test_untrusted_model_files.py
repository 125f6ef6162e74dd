"""Model files from untrusted sources: every kind of damaged or hostile file is refused.

Each case takes a valid file (``tests/_model_files.py``), changes one thing, and checks that
loading raises :class:`emkit.io.InvalidFileError` (a ``ValueError``) whose message names the file
and the dataset (or attribute) at fault, before anything large is allocated.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil

import h5py
import numpy as np
import pytest

import _model_files as mf
from emkit import GMMMachine, GMMStats
from emkit.experiment import load_machine
from emkit.io import InvalidFileError

C, D, R = mf.C, mf.D, mf.R
HUGE = 2**31


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return mf.write_all(tmp_path_factory.mktemp("valid"))


def _replace(f, name, data=None, **kwargs):
    del f[name]
    if data is None:
        return f.create_dataset(name, **kwargs)
    return f.create_dataset(name, data=data, **kwargs)


def _set(name, value):
    def change(f, tmp):
        _replace(f, name, value if isinstance(value, str) else np.asarray(value))
    return change


def _with(name, fn):
    """Replace dataset ``name`` by ``fn(its current value)``."""
    def change(f, tmp):
        _replace(f, name, np.asarray(fn(f[name][()])))
    return change


def _attr(name, value):
    def change(f, tmp):
        f.attrs[name] = value
    return change


def _other_file(tmp):
    other = tmp / "other.h5"
    with h5py.File(other, "w") as g:
        g["x"] = np.ones((C, D))
        g.create_group("grp")["means"] = np.ones((C, D))
    return other


def _external_link(name, target="/x"):
    def change(f, tmp):
        other = _other_file(tmp)
        del f[name]
        f[name] = h5py.ExternalLink(str(other), target)
    return change


def _soft_link(name, target):
    def change(f, tmp):
        del f[name]
        f[name] = h5py.SoftLink(target)
    return change


def _virtual(name):
    def change(f, tmp):
        other = _other_file(tmp)
        layout = h5py.VirtualLayout(shape=(C, D), dtype="f8")
        layout[...] = h5py.VirtualSource(str(other), "x", shape=(C, D))
        del f[name]
        f.create_virtual_dataset(name, layout)
    return change


def _external_storage(name):
    def change(f, tmp):
        raw = tmp / "raw.bin"
        raw.write_bytes(np.ones((C, D)).tobytes())
        _replace(f, name, shape=(C, D), dtype="f8", external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
    return change


def _vlen(name, n):
    def change(f, tmp):
        ds = _replace(f, name, shape=(n,), dtype=h5py.vlen_dtype(np.float64))
        for i in range(n):
            ds[i] = np.arange(i + 1.0)
    return change


def _dtype(name, data):
    return lambda f, tmp: _replace(f, name, data)


def _declared(name, shape, **kwargs):
    """A dataset that declares ``shape`` but has no data written (nothing stored)."""
    return lambda f, tmp: _replace(f, name, shape=shape, dtype="f8", **kwargs)


def _compressed_bomb(name):
    # 12 MB of zeros compressing to a few kB: more than the whole file once decompressed
    return lambda f, tmp: _replace(f, name, np.zeros((C, 500_000)), compression="gzip",
                                   chunks=(C, 100_000))


def _both(*changes):
    def change(f, tmp):
        for c in changes:
            c(f, tmp)
    return change


def _hard_link_gaussian(f, tmp):
    del f["m_gaussians1"]
    f["m_gaussians1"] = f["m_gaussians0"]


COMPOUND = np.zeros(C, dtype=[("a", "f8"), ("b", "f8")])

# (id, file kind, change, dataset or attribute named in the message)
CASES = [
    # GMMMachine: values
    ("gmm-negative-variance", "gmm", _with("gaussians/variances", lambda v: v * [[1, -1]] * np.ones((C, 1))), "/gaussians/variances"),
    ("gmm-zero-variance", "gmm", _with("gaussians/variances", lambda v: v * 0), "/gaussians/variances"),
    ("gmm-nan-variance", "gmm", _with("gaussians/variances", lambda v: v * np.nan), "/gaussians/variances"),
    ("gmm-nan-mean", "gmm", _with("gaussians/means", lambda v: np.where(v == v.max(), np.nan, v)), "/gaussians/means"),
    ("gmm-inf-mean", "gmm", _with("gaussians/means", lambda v: v + np.inf), "/gaussians/means"),
    ("gmm-weights-sum-0.9", "gmm", _set("weights", [0.2, 0.3, 0.4]), "/weights"),
    ("gmm-weights-sum-1+1e-5", "gmm", _set("weights", [0.2, 0.3, 0.5 + 1e-5]), "/weights"),
    ("gmm-float32-weights-sum-1.01", "gmm", _set("weights", np.array([0.2, 0.3, 0.51], dtype=np.float32)), "/weights"),
    ("gmm-negative-weight", "gmm", _set("weights", [1.5, -0.5, 0.0]), "/weights"),
    ("gmm-nan-weight", "gmm", _set("weights", [np.nan, 0.5, 0.5]), "/weights"),
    ("gmm-negative-threshold", "gmm", _set("gaussians/variance_thresholds", -1.0), "/gaussians/variance_thresholds"),
    ("gmm-nan-convergence-threshold-is-none-but-inf-refused", "gmm", _set("convergence_threshold", np.inf), "/convergence_threshold"),
    # GMMMachine: shapes
    ("gmm-weights-longer-than-n_gaussians", "gmm", _set("weights", [0.25] * 4), "/weights"),
    ("gmm-means-more-rows", "gmm", _with("gaussians/means", lambda v: np.vstack([v, v[:1]])), "/gaussians/means"),
    ("gmm-variances-other-width", "gmm", _with("gaussians/variances", lambda v: np.hstack([v, v[:, :1]])), "/gaussians/variances"),
    ("gmm-thresholds-wrong-shape", "gmm", _set("gaussians/variance_thresholds", np.ones(D + 1)), "/gaussians/variance_thresholds"),
    ("gmm-zero-features", "gmm", _both(_set("gaussians/means", np.zeros((C, 0))), _set("gaussians/variances", np.zeros((C, 0)))), "/gaussians/means"),
    ("gmm-n_gaussians-zero", "gmm", _set("n_gaussians", 0), "/n_gaussians"),
    ("gmm-n_gaussians-not-scalar", "gmm", _set("n_gaussians", [3, 3]), "/n_gaussians"),
    # GMMMachine: sizes declared beyond what the file holds
    ("gmm-declared-2^31x64-means", "gmm", _both(_set("n_gaussians", HUGE), _declared("weights", (HUGE,))), "/weights"),
    ("gmm-declared-huge-means", "gmm", _declared("gaussians/means", (C, 2**28)), "/gaussians/means"),
    ("gmm-compressed-bomb", "gmm", _compressed_bomb("gaussians/means"), "/gaussians/means"),
    # GMMMachine: types
    ("gmm-means-vlen", "gmm", _vlen("gaussians/means", C), "/gaussians/means"),
    ("gmm-weights-compound", "gmm", _dtype("weights", COMPOUND), "/weights"),
    ("gmm-weights-opaque", "gmm", _dtype("weights", np.zeros(C, dtype="V8")), "/weights"),
    ("gmm-weights-string", "gmm", _set("weights", "0.2 0.3 0.5"), "/weights"),
    ("gmm-weights-complex", "gmm", _set("weights", np.array([0.2, 0.3, 0.5], dtype=complex)), "/weights"),
    ("gmm-weights-references", "gmm", lambda f, tmp: _replace(f, "weights", shape=(C,), dtype=h5py.ref_dtype), "/weights"),
    ("gmm-trainer-number", "gmm", _set("trainer", 1.0), "/trainer"),
    ("gmm-trainer-unknown", "gmm", _set("trainer", "em"), "/trainer"),
    ("gmm-update-means-text", "gmm", _set("update_means", "yes"), "/update_means"),
    ("gmm-update-means-2", "gmm", _set("update_means", 2), "/update_means"),
    ("gmm-file-version-int", "gmm", _attr("file_version", 1), "file_version"),
    ("gmm-file-version-garbage", "gmm", _attr("file_version", "x.y"), "file_version"),
    # GMMMachine: links and storage in other files
    ("gmm-dangling-soft-link", "gmm", _soft_link("gaussians/means", "/nowhere"), "/gaussians/means"),
    ("gmm-soft-link", "gmm", _soft_link("gaussians/variances", "/gaussians/means"), "/gaussians/variances"),
    ("gmm-external-link-dataset", "gmm", _external_link("weights"), "/weights"),
    ("gmm-external-link-group", "gmm", _external_link("gaussians", "/grp"), "/gaussians"),
    ("gmm-ubm-linked-to-itself", "gmm", lambda f, tmp: f.__setitem__("ubm", f["/"]), "/ubm"),
    ("gmm-virtual-dataset", "gmm", _virtual("gaussians/means"), "/gaussians/means"),
    ("gmm-external-raw-storage", "gmm", _external_storage("gaussians/means"), "/gaussians/means"),
    # GMMStats
    ("stats-n_gaussians-2^40", "stats", _set("n_gaussians", 2**40), "/n"),
    ("stats-declared-2^40", "stats", _both(_set("n_gaussians", 2**40), _declared("n", (2**40,))), "/n"),
    ("stats-negative-n", "stats", _with("n", lambda v: -v), "/n"),
    ("stats-nan-sumPx", "stats", _with("sumPx", lambda v: v * np.nan), "/sumPx"),
    ("stats-negative-sumPxx", "stats", _with("sumPxx", lambda v: -v), "/sumPxx"),
    ("stats-sumPx-shape", "stats", _with("sumPx", lambda v: v[:, :1]), "/sumPx"),
    ("stats-negative-T", "stats", _set("T", -1), "/T"),
    ("stats-T-float", "stats", _set("T", 2.5), "/T"),
    ("stats-n-vlen", "stats", _vlen("n", C), "/n"),
    ("stats-log-likelihood-text", "stats", _set("log_likelihood", "high"), "/log_likelihood"),
    # ISV / JFA
    ("isv-nan-U", "isv", _with("U", lambda v: v * np.nan), "/U"),
    ("isv-negative-D", "isv", _with("D", lambda v: -v), "/D"),
    ("isv-U-rows-not-CD", "isv", _with("U", lambda v: v[:-1]), "/U"),
    ("isv-U-columns-not-r_U", "isv", _set("r_U", R + 1), "/U"),
    ("isv-zero-relevance", "isv", _set("relevance_factor", 0.0), "/relevance_factor"),
    ("isv-ubm-negative-variances", "isv", _with("ubm/gaussians/variances", lambda v: -v), "/ubm/gaussians/variances"),
    ("isv-ubm-external-link", "isv", _external_link("ubm", "/grp"), "/ubm"),
    ("isv-format-version-text", "isv", _attr("emkit_format_version", "1"), "emkit_format_version"),
    ("isv-format-version-float", "isv", _attr("emkit_format_version", 1.5), "emkit_format_version"),
    ("isv-format-version-array", "isv", _attr("emkit_format_version", np.array([1, 1])), "emkit_format_version"),
    ("isv-class-number", "isv", _attr("emkit_class", 7), "emkit_class"),
    ("isv-ubm-kwargs-not-json", "isv", _attr("ubm_kwargs", "{not json"), "ubm_kwargs"),
    ("jfa-inf-V", "jfa", _with("V", lambda v: v + np.inf), "/V"),
    ("jfa-V-columns", "jfa", _with("V", lambda v: v[:, :1]), "/V"),
    # i-vectors
    ("ivector-nan-T", "ivector", _with("T", lambda v: v * np.nan), "/T"),
    ("ivector-zero-sigma", "ivector", _with("sigma", lambda v: v * 0), "/sigma"),
    ("ivector-T-rank", "ivector", _set("dim_t", R + 1), "/T"),
    ("ivector-sigma-shape", "ivector", _with("sigma", lambda v: v.T), "/sigma"),
    ("ivector-dim_t-zero", "ivector", _set("dim_t", 0), "/dim_t"),
    # PLDA
    ("plda-sigma-not-pd", "plda", _with("fitted/sigma", lambda v: -v), "/fitted/sigma"),
    ("plda-sigma-not-symmetric", "plda", _with("fitted/sigma", lambda v: v + np.triu(np.ones_like(v), 1)), "/fitted/sigma"),
    ("plda-nan-F", "plda", _with("fitted/F", lambda v: v * np.nan), "/fitted/F"),
    ("plda-F-rows", "plda", _with("fitted/F", lambda v: np.vstack([v, v])), "/fitted/F"),
    ("plda-unknown-model", "plda", _set("model", "quadratic"), "/model"),
    ("plda-n_features_in", "plda", _set("fitted/n_features_in", R + 1), "/fitted/n_features_in"),
    ("plda-log-likelihood-length", "plda", _set("fitted/n_iter", 50), "/fitted/log_likelihood"),
    ("plda-full-negative-sigma", "plda_full", _with("fitted/sigma", lambda v: -v), "/fitted/sigma"),
    # i-vector back-end and enrolled models
    ("backend-whitening-nan", "backend", _with("whitening/weights", lambda v: v * np.nan), "/whitening/weights"),
    ("backend-wccn-shape", "backend", _with("wccn/weights", lambda v: v[:1]), "/wccn/weights"),
    ("backend-divide-zero", "backend", _set("whitening/input_divide", 0.0), "/whitening/input_divide"),
    ("backend-ivector-T-nan", "backend", _with("ivector/T", lambda v: v * np.nan), "/ivector/T"),
    ("enrolled-means-shape", "enrolled", _with("means", lambda v: v[:1]), "/means"),
    ("enrolled-means-nan", "enrolled", _with("means", lambda v: v * np.nan), "/means"),
    ("enrolled-ids-numbers", "enrolled", _set("model_ids", [1.0, 2.0]), "/model_ids"),
    ("enrolled-unknown-system", "enrolled", _attr("system", "magic"), "system"),
    ("enrolled-machine-external", "enrolled", _external_link("machine", "/grp"), "/machine"),
    ("enrolled-machine-weights", "enrolled", _set("machine/weights", [1.0, 1.0, 1.0]), "/machine/weights"),
    # KMeansMachine
    ("kmeans-nan-centroids", "kmeans", _with("fitted/centroids", lambda v: v * np.nan), "/fitted/centroids"),
    ("kmeans-centroids-rows-not-n_clusters", "kmeans", _with("fitted/centroids", lambda v: v[:-1]), "/fitted/centroids"),
    ("kmeans-huge-centroids", "kmeans", _with("fitted/centroids", lambda v: v * 1e300), "/fitted/centroids"),
    ("kmeans-declared-huge-centroids", "kmeans", _declared("fitted/centroids", (C, 2**28)), "/fitted/centroids"),
    ("kmeans-centroids-external-link", "kmeans", _external_link("fitted/centroids"), "/fitted/centroids"),
    ("kmeans-zero-features", "kmeans", _set("fitted/centroids", np.zeros((C, 0))), "/fitted/centroids"),
    ("kmeans-n_clusters-zero", "kmeans", _set("n_clusters", 0), "/n_clusters"),
    ("kmeans-unknown-init-method", "kmeans", _set("init_method", "k-medians"), "/init_method"),
    ("kmeans-no-init-method", "kmeans", lambda f, tmp: f.__delitem__("init_method"), "/init_method"),
    ("kmeans-init-method-and-array", "kmeans", lambda f, tmp: f.__setitem__("init_centroids", np.ones((C, D))), "/init_method"),
    ("kmeans-negative-distance", "kmeans", _set("fitted/average_min_distance", -1.0), "/fitted/average_min_distance"),
    ("kmeans-zero-oversampling", "kmeans", _set("oversampling_factor", 0.0), "/oversampling_factor"),
    ("kmeans-no-stopping-rule", "kmeans", _both(_set("max_iter", -1), _set("convergence_threshold", np.nan)), "/max_iter"),
    ("kmeans-names-per-feature", "kmeans", lambda f, tmp: f.__setitem__("fitted/feature_names", np.array(["a"], dtype=h5py.string_dtype())), "/fitted/feature_names"),
    ("kmeans-converged-missing", "kmeans", lambda f, tmp: f.__delitem__("fitted/converged"), "/fitted/converged"),
    ("kmeans-format-version-text", "kmeans", _attr("emkit_format_version", "1"), "emkit_format_version"),
]


def _mutated(valid, tmp_path, kind, change):
    path = tmp_path / f"bad_{kind}.h5"
    shutil.copy(valid[kind], path)
    with h5py.File(path, "r+") as f:
        change(f, tmp_path)
    return path


@pytest.mark.parametrize("kind, change, named", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_damaged_model_file_is_refused(valid, tmp_path, kind, change, named):
    path = _mutated(valid, tmp_path, kind, change)
    with pytest.raises(InvalidFileError) as info:
        mf.LOADERS[kind](path)
    message = str(info.value)
    assert str(path) in message
    assert repr(named) in message or f"'{named}" in message or f"/{named}'" in message


@pytest.mark.parametrize("dtype, loads", [(np.float32, True), (np.float64, False)])
def test_weights_tolerance_scales_with_the_stored_type(tmp_path, dtype, loads):
    # 1000 float32 weights normalised in float32 may sum 1 +- ~1e-5: accepted (tolerance
    # 4 C eps(float32) = 4.8e-4); the same error in float64 weights is refused (tolerance 1e-6)
    n = 1000
    m = GMMMachine(n)
    m.means, m.variances = np.zeros((n, 1)), np.ones((n, 1))
    m.weights = np.full(n, 1.0 / n)
    path = tmp_path / "big.h5"
    m.save(path)
    weights = np.full(n, 1.0 / n)
    weights[0] += 2e-5
    with h5py.File(path, "r+") as f:
        _replace(f, "weights", weights.astype(dtype))
    if loads:
        assert GMMMachine.from_hdf5(path).weights[0] == np.float32(weights[0])
    else:
        with pytest.raises(InvalidFileError, match="'/weights' must hold weights summing to 1"):
            GMMMachine.from_hdf5(path)


def test_at_least_forty_cases():
    assert len(CASES) >= 40


def test_legacy_layout_declaring_more_gaussians_than_groups(tmp_path):
    path = tmp_path / "legacy.h5"
    shutil.copy(mf.__file__.replace("support/_model_files.py", "data/gmm/legacy_gmm.h5"), path)
    with h5py.File(path, "r+") as f:
        _replace(f, "m_n_gaussians", np.int64(10**9))
    with pytest.raises(InvalidFileError, match="m_n_gaussians") as info:
        GMMMachine.from_hdf5(path)
    assert str(path) in str(info.value)


def test_legacy_layout_with_one_gaussian_linked_twice(tmp_path):
    path = tmp_path / "legacy.h5"
    shutil.copy(mf.__file__.replace("support/_model_files.py", "data/gmm/legacy_gmm.h5"), path)
    with h5py.File(path, "r+") as f:
        _hard_link_gaussian(f, tmp_path)
    with pytest.raises(InvalidFileError, match="m_gaussians1") as info:
        GMMMachine.from_hdf5(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, reason", [
    (b"this is a text file, not HDF5\n" * 10, "not an HDF5 file"),
    (pickle.dumps({"means": [1.0, 2.0]}), "not an HDF5 file"),  # pickles stay refused
    (b"", "not an HDF5 file"),
])
def test_not_hdf5(tmp_path, content, reason):
    path = tmp_path / "model.h5"
    path.write_bytes(content)
    for load in (GMMMachine.from_hdf5, GMMStats.from_hdf5, load_machine):
        with pytest.raises(InvalidFileError, match=reason) as info:
            load(path)
        assert str(path) in str(info.value)


def test_truncated_file(valid, tmp_path):
    path = tmp_path / "cut.h5"
    path.write_bytes(valid["gmm"].read_bytes()[: valid["gmm"].stat().st_size // 2])
    with pytest.raises(InvalidFileError, match="not a complete HDF5 file") as info:
        GMMMachine.from_hdf5(path)
    assert str(path) in str(info.value)


def test_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "pipe.h5")  # opening it would block forever
    for path in (tmp_path, tmp_path / "pipe.h5"):
        with pytest.raises(InvalidFileError, match="not a regular file") as info:
            GMMMachine.from_hdf5(path)
        assert str(path) in str(info.value)


def test_messages_never_quote_the_file(valid, tmp_path):
    secret = "SECRET-CONTENT-0123456789"
    for kind, change in [("gmm", _set("trainer", secret)), ("isv", _attr("emkit_class", secret)),
                         ("enrolled", _attr("system", secret)),
                         ("isv", _attr("ubm_kwargs", secret))]:
        path = _mutated(valid, tmp_path, kind, change)
        with pytest.raises(InvalidFileError) as info:
            mf.LOADERS[kind](path)
        assert secret not in str(info.value) and str(path) in str(info.value)


def test_machine_of_an_unknown_class_is_refused_without_quoting_it(valid, tmp_path):
    from emkit.experiment import load_machine

    secret = "SECRET CONTENT 0123456789"
    path = _mutated(valid, tmp_path, "isv", _attr("emkit_class", secret))
    with pytest.raises(InvalidFileError) as info:
        load_machine(path)
    assert secret not in str(info.value) and str(path) in str(info.value)


def test_file_of_another_kind(valid):
    with pytest.raises(InvalidFileError, match="GMMStats, not a GMMMachine"):
        GMMMachine.from_hdf5(valid["stats"])
    with pytest.raises(InvalidFileError, match="not a PLDA"):
        mf.LOADERS["plda"](valid["isv"])


@pytest.mark.parametrize("kind", sorted(mf.BUILDERS))
def test_valid_files_still_load(valid, kind):
    loaded = mf.LOADERS[kind](valid[kind])
    assert type(loaded).__name__ == type(mf.BUILDERS[kind]()).__name__


def test_loaded_gmm_gives_finite_likelihoods(valid):
    ubm = GMMMachine.from_hdf5(valid["gmm"])
    assert np.all(np.isfinite(ubm.log_likelihood(np.random.default_rng(0).normal(size=(5, D)))))


def test_a_group_given_directly_is_checked_too(valid, tmp_path):
    path = _mutated(valid, tmp_path, "gmm", _set("weights", [0.2, 0.3, 0.4]))
    with h5py.File(path, "r") as f, pytest.raises(InvalidFileError, match="'/weights'"):
        GMMMachine.from_hdf5(f)


# ---------------------------------------------------------------------------------------------
# issue 10 item 3: types after reading, as bob.learn.em 3.3.1 gives them
# ---------------------------------------------------------------------------------------------

REF_DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "gmm")


@pytest.mark.parametrize("name", ["ref_gmm_ml_thr_scalar.h5", "legacy_gmm.h5"])
def test_gmm_types_after_reading(name):
    path = os.path.join(REF_DATA, name)
    fresh = GMMMachine(2)
    fresh.load(path)
    for m in (GMMMachine.from_hdf5(path), fresh):
        assert type(m.n_gaussians) is np.int64
        if name.startswith("ref"):
            for flag in ("update_means", "update_variances", "update_weights"):
                assert type(getattr(m, flag)) is np.bool_
        assert type(m.trainer) is str


def test_gmm_types_after_reading_emkit_file(valid):
    m = GMMMachine.from_hdf5(valid["gmm"])
    assert type(m.n_gaussians) is np.int64 and type(m.update_weights) is np.bool_
    assert type(m.trainer) is str and m.update_weights


def test_stats_types_after_reading(valid):
    for path in (valid["stats"], os.path.join(REF_DATA, "ref_stats.h5")):
        s = GMMStats.from_hdf5(path)
        assert type(s.n_gaussians) is np.int64 and type(s.n_features) is np.int64


F64_TYPE_MESSAGE = bytes([0x11, 0x20, 0x3F, 0x00, 0x08, 0, 0, 0, 0, 0, 0x40, 0x00, 0x34, 0x0B, 0x00, 0x34])


def test_float_type_numpy_cannot_represent(valid, tmp_path):
    # found by the fuzzer: a float64 type with an exponent bias numpy has no type for makes h5py
    # raise a bare ValueError ("Insufficient precision...") when the dataset's dtype is asked for
    content = bytearray(valid["plda"].read_bytes())
    where = content.find(F64_TYPE_MESSAGE)
    if where < 0:
        pytest.skip("this HDF5 library writes float64 type messages differently")
    while where >= 0:
        content[where + 18] = 0xA6  # exponent bias 1023 -> 0xA603FF
        where = content.find(F64_TYPE_MESSAGE, where + 1)
    path = tmp_path / "precision.h5"
    path.write_bytes(bytes(content))
    with pytest.raises(InvalidFileError, match="could not be read") as info:
        mf.LOADERS["plda"](path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------
# issue 10 item 9: the command line names a model file that is not (complete) HDF5
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["text", "truncated", "nan-weights"])
def test_cli_names_a_corrupt_model_file(valid, tmp_path, damage):
    from click.testing import CliRunner

    from emkit.cli import cli

    models = tmp_path / "models.h5"
    if damage == "text":
        models.write_text("model_1 alice\n")
    elif damage == "truncated":
        models.write_bytes(valid["enrolled"].read_bytes()[:4000])
    else:
        shutil.copy(_mutated(valid, tmp_path, "enrolled", _set("machine/weights", [np.nan] * C)),
                    models)
    np.save(tmp_path / "probe.npy", np.zeros((5, D)))
    (tmp_path / "trials.txt").write_text("alice probe\n")
    for args in (["score", "--models", models, "-t", tmp_path / "trials.txt",
                  "-o", tmp_path / "scores.txt", tmp_path / "probe.npy"],
                 ["enroll", "-m", models, "--enroll-list", tmp_path / "trials.txt",
                  "-o", tmp_path / "out.h5", tmp_path / "probe.npy"]):
        result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        err = result.stderr.strip()
        assert str(models) in err and "\n" not in err and "Traceback" not in result.output
        expected = {"text": "not an HDF5 file", "truncated": "not a complete HDF5 file",
                    "nan-weights": "'/machine/weights' holds NaN"}[damage]
        if damage != "nan-weights" or args[0] == "score":
            assert expected in err, err


@pytest.mark.parametrize("make, reason", [
    (lambda p: os.symlink(p.name, p), r"cannot access it \(Too many levels of symbolic links\)"),
    (os.mkfifo, r"is a named pipe, not a regular file"),
    (os.mkdir, r"is a directory, not a regular file"),
])
def test_a_model_path_that_cannot_be_read_says_why(tmp_path, make, reason):
    # every refusal of the checked open was reported as "<path>: not a regular file", a symbolic
    # link to itself included (a regular file's name, as far as the user can tell)
    path = tmp_path / "ubm.h5"
    make(path)
    with pytest.raises(InvalidFileError, match=re.escape(str(path)) + "(:| ) ?" + reason):
        GMMMachine.from_hdf5(path)
