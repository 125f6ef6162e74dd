"""Feature readers (numpy, HDF5, Kaldi ark/scp), id and trial lists, score files, atomic writes.

The Kaldi writer below follows the format description (not Kaldi's code): binary matrix =
``key`` + space + ``\\0B`` + ``"FM "``/``"DM "`` + int32 rows and cols, each preceded by a size
byte (4) + the values row by row; ``"FV "``/``"DV "`` vectors have one size; compressed matrices
(``"CM "``, ``"CM2 "``, ``"CM3 "``) a header ``float min, float range, int32 rows, int32 cols``.
"""

import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from _parity import assert_parity
from feature_files import compressed, kaldi_binary, size, write_ark, write_scp, write_text_ark  # noqa: F401

from emkit.features import (FeatureError, atomic_write, check_writable, read_feature_sources,
                            read_features, read_id_lists, read_id_map, read_kaldi_ark,
                            read_kaldi_scp, read_scores, read_trials, write_scores)

# ---------------------------------------------------------------------------------------------
# a tiny Kaldi writer (also used by test_cli.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def mats():
    rng = np.random.default_rng(0)
    return {"spk1_a": rng.normal(size=(5, 3)), "spk1_b": rng.normal(size=(2, 3)),
            "spk2_a": rng.normal(size=(7, 3))}


# ---------------------------------------------------------------------------------------------
# Kaldi
# ---------------------------------------------------------------------------------------------


def test_binary_ark_float_and_double(tmp_path, mats):
    write_ark(tmp_path / "f.ark", mats, "FM")
    write_ark(tmp_path / "d.ark", mats, "DM")
    f32, f64 = read_kaldi_ark(tmp_path / "f.ark"), read_kaldi_ark(tmp_path / "d.ark")
    assert list(f32) == list(mats) == list(f64)
    for key, M in mats.items():
        assert f32[key].dtype == np.float64 and f32[key].shape == M.shape
        np.testing.assert_array_equal(f32[key], M.astype(np.float32).astype(np.float64))
        np.testing.assert_array_equal(f64[key], M)


def test_binary_vectors_are_one_row(tmp_path):
    with open(tmp_path / "v.ark", "wb") as f:
        f.write(b"a \0B" + kaldi_binary(np.arange(4.0), "FV"))
        f.write(b"b \0B" + kaldi_binary(np.arange(3.0) / 3, "DV"))
    out = read_kaldi_ark(tmp_path / "v.ark")
    np.testing.assert_array_equal(out["a"], [[0, 1, 2, 3]])
    np.testing.assert_array_equal(out["b"], [np.arange(3.0) / 3])


def test_text_ark(tmp_path, mats):
    write_text_ark(tmp_path / "t.ark", mats)
    out = read_kaldi_ark(tmp_path / "t.ark")
    assert list(out) == list(mats)
    for key, M in mats.items():
        np.testing.assert_array_equal(out[key], M)  # repr round-trips float64 exactly


def test_text_ark_one_line_matrix(tmp_path):
    (tmp_path / "t.ark").write_text("u1 [ 1 2 3 ]\nu2 [ 4 5\n 6 7 ]\n")
    out = read_kaldi_ark(tmp_path / "t.ark")
    np.testing.assert_array_equal(out["u1"], [[1, 2, 3]])
    np.testing.assert_array_equal(out["u2"], [[4, 5], [6, 7]])


def test_a_text_matrix_of_many_short_rows_takes_the_memory_of_its_values(tmp_path):
    # one numpy array per row took ~170 times the matrix (3.4 GB for 10^7 rows of one value)
    import tracemalloc

    n = 100_000
    (tmp_path / "t.ark").write_bytes(b"u [\n" + b"1\n2 \n" * (n // 2) + b"]\nv [ 3 4\n  5 6 ]\n")
    tracemalloc.start()
    try:
        out = read_kaldi_ark(tmp_path / "t.ark")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out["u"].shape == (n, 1) and out["u"][:4, 0].tolist() == [1, 2, 1, 2]
    np.testing.assert_array_equal(out["v"], [[3, 4], [5, 6]])
    assert peak < 4 * 8 * n  # the float64 values, twice, and the buffer's growth


def test_scp_offsets_ranges_and_prefixes(tmp_path, mats):
    offsets = write_ark(tmp_path / "f.ark", mats, "DM")
    # scp in another directory with an absolute path, one entry with a row range, one with rows+cols
    ranges = {"spk1_a": "[1:3]", "spk2_a": "[0:4,1:2]"}
    write_scp(tmp_path / "f.scp", tmp_path / "f.ark", offsets, ranges)
    out = read_kaldi_scp(tmp_path / "f.scp")
    assert list(out) == list(mats)
    np.testing.assert_array_equal(out["spk1_a"], mats["spk1_a"][1:4])
    np.testing.assert_array_equal(out["spk1_b"], mats["spk1_b"])
    np.testing.assert_array_equal(out["spk2_a"], mats["spk2_a"][0:5, 1:3])
    # the rspecifier prefixes are accepted; relative paths not found in the current directory are
    # taken from the scp's folder
    write_scp(tmp_path / "rel.scp", "f.ark", offsets)
    for spec in (f"scp:{tmp_path / 'rel.scp'}", f"scp,s,cs:{tmp_path / 'rel.scp'}"):
        out = read_features(spec)
        np.testing.assert_array_equal(out["spk2_a"], mats["spk2_a"])
    assert list(read_features(f"ark:{tmp_path / 'f.ark'}")) == list(mats)


def test_relative_scp_paths_are_taken_from_the_current_directory_first_as_kaldi(tmp_path, mats, monkeypatch):
    # a Kaldi recipe: data/train/feats.scp names mfcc/raw.ark, relative to the recipe's root
    (tmp_path / "mfcc").mkdir()
    (tmp_path / "data" / "train" / "mfcc").mkdir(parents=True)
    offsets = write_ark(tmp_path / "mfcc" / "raw.ark", mats, "DM")
    scp = tmp_path / "data" / "train" / "feats.scp"
    write_scp(scp, "mfcc/raw.ark", offsets)
    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(read_kaldi_scp(scp)["spk2_a"], mats["spk2_a"])
    # a file of that name next to the scp loses to the one Kaldi would read
    write_ark(tmp_path / "data" / "train" / "mfcc" / "raw.ark", {k: m + 1.0 for k, m in mats.items()}, "DM")
    np.testing.assert_array_equal(read_kaldi_scp(scp)["spk2_a"], mats["spk2_a"])
    # elsewhere, the scp's own directory is the fallback
    monkeypatch.chdir(tmp_path / "mfcc")
    np.testing.assert_array_equal(read_kaldi_scp(scp)["spk2_a"], mats["spk2_a"] + 1.0)


def test_scp_without_offset_reads_a_single_matrix_file(tmp_path):
    M = np.arange(6.0).reshape(2, 3)
    (tmp_path / "one.mat").write_bytes(b"\0B" + kaldi_binary(M, "DM"))
    (tmp_path / "x.scp").write_text("utt one.mat\n")
    np.testing.assert_array_equal(read_kaldi_scp(tmp_path / "x.scp")["utt"], M)


def _cm_expected(pct, data):
    """Kaldi's CharToFloat, written out per element (the reader is vectorised)."""
    out = np.empty(data.shape, dtype=np.float32)
    for (r, c), v in np.ndenumerate(data):
        p0, p25, p75, p100 = pct[c]
        if v <= 64:
            out[r, c] = p0 + (p25 - p0) * np.float32(v) * np.float32(1 / 64.0)
        elif v <= 192:
            out[r, c] = p25 + (p75 - p25) * np.float32(v - 64) * np.float32(1 / 128.0)
        else:
            out[r, c] = p75 + (p100 - p75) * np.float32(v - 192) * np.float32(1 / 63.0)
    return out


def test_compressed_matrices(tmp_path):
    rows, cols, lo, span = 3, 2, np.float32(-2.0), np.float32(5.0)
    two = np.array([[0, 65535], [1000, 30000], [65535, 7]], dtype="<u2")
    one = np.array([[0, 255], [10, 128], [255, 3]], dtype=np.uint8)
    headers = np.array([[0, 10000, 40000, 65535], [100, 200, 300, 400]], dtype="<u2")
    cm_bytes = np.array([[0, 64], [100, 192], [255, 30]], dtype=np.uint8)  # (rows, cols)
    with open(tmp_path / "c.ark", "wb") as f:
        f.write(b"two \0B" + compressed("CM2", lo, span, rows, cols, two.tobytes()))
        f.write(b"one \0B" + compressed("CM3", lo, span, rows, cols, one.tobytes()))
        # CM: per-column headers first, then the bytes column by column
        f.write(b"cm \0B" + compressed("CM", lo, span, rows, cols,
                                       headers.tobytes() + cm_bytes.T.copy().tobytes()))
    out = read_kaldi_ark(tmp_path / "c.ark")
    assert_parity(out["two"], lo + two * (span / 65535.0), tol=1e-6)
    assert_parity(out["one"], lo + one * (span / 255.0), tol=1e-6)
    pct = lo + span * np.float32(1.52590218966964e-05) * headers.astype(np.float32)
    assert_parity(out["cm"], _cm_expected(pct, cm_bytes), tol=1e-6)
    assert out["cm"][0, 0] == pytest.approx(pct[0, 0])  # byte 0 is the 0th percentile
    assert out["cm"][2, 0] == pytest.approx(pct[0, 3])  # byte 255 the 100th


def test_compressed_matrices_of_few_rows_decode_as_those_of_many(tmp_path):
    # fewer rows than byte values decode by the formula itself, not a table per column (four 1 x 10^6
    # matrices took 17.8 s): the same float32 arithmetic, so the same values
    rng = np.random.default_rng(0)
    rows, cols = 300, 7
    headers = np.sort(rng.integers(0, 65536, size=(cols, 4)), axis=1).astype("<u2")
    codes = rng.integers(0, 256, size=(rows, cols), dtype=np.uint8)
    with open(tmp_path / "c.ark", "wb") as f:
        for name, n in (("many", rows), ("few", 100)):
            f.write(f"{name} ".encode() + b"\0B" + compressed("CM", -3.0, 7.0, n, cols,
                                                             headers.tobytes() + codes[:n].T.copy().tobytes()))
    out = read_kaldi_ark(tmp_path / "c.ark")
    np.testing.assert_array_equal(out["few"], out["many"][:100])


@pytest.mark.parametrize("content, message", [
    (b"u1 \0BFM \x04\x02\x00\x00\x00\x04\x03\x00\x00\x00" + b"\0" * 8, "ends in the middle"),
    (b"u1 \0BXY \x04\x02\x00\x00\x00", "unsupported Kaldi object type"),
    (b"u1 \0BFM \x08\x02\x00\x00\x00", "size byte"),
    (b"u1 [ 1 2\n", "closing ']'"),
    (b"u1 [ 1 x ]\n", "not a number"),
    (b"u1 [ 1 2\n 3 ]\n", "different lengths"),
])
def test_broken_archives(tmp_path, content, message):
    (tmp_path / "bad.ark").write_bytes(content)
    with pytest.raises(FeatureError, match=message) as info:
        read_features(tmp_path / "bad.ark")
    assert "bad.ark" in str(info.value) and "u1" in str(info.value)


def test_duplicate_key_and_pipes(tmp_path):
    M = np.ones((2, 2))
    with open(tmp_path / "dup.ark", "wb") as f:
        f.write(b"a \0B" + kaldi_binary(M) + b"a \0B" + kaldi_binary(M))
    with pytest.raises(FeatureError, match="'a' appears twice"):
        read_kaldi_ark(tmp_path / "dup.ark")
    with pytest.raises(FeatureError, match="piped"):
        read_features("ark:copy-feats ark:x ark:- |")
    (tmp_path / "p.scp").write_text("u1 copy-feats x - |\n")
    with pytest.raises(FeatureError, match="piped"):
        read_kaldi_scp(tmp_path / "p.scp")
    (tmp_path / "m.scp").write_text(f"u1 {tmp_path / 'nothere.ark'}:3\n")
    with pytest.raises(FeatureError, match="no such file"):
        read_kaldi_scp(tmp_path / "m.scp")


# ---------------------------------------------------------------------------------------------
# numpy and HDF5
# ---------------------------------------------------------------------------------------------


def test_numpy_and_hdf5_naming_rules(tmp_path, mats):
    np.save(tmp_path / "utt7.npy", mats["spk1_a"])
    np.savez(tmp_path / "single.npz", mats["spk1_b"])       # only arr_0: named after the file
    np.savez(tmp_path / "many.npz", **mats)
    with h5py.File(tmp_path / "bob.h5", "w") as f:         # bob's one-dataset convention
        f["array"] = mats["spk2_a"]
    with h5py.File(tmp_path / "many.hdf5", "w") as f:
        f["spk1/a"] = mats["spk1_a"]
        f["spk2/a"] = mats["spk2_a"]
        f["meta"] = np.arange(3)                           # 1-D: not an utterance
    assert list(read_features(tmp_path / "utt7.npy")) == ["utt7"]
    assert list(read_features(tmp_path / "single.npz")) == ["single"]
    assert list(read_features(tmp_path / "many.npz")) == list(mats)
    assert list(read_features(tmp_path / "bob.h5")) == ["bob"]
    out = read_features(tmp_path / "many.hdf5")
    assert sorted(out) == ["spk1/a", "spk2/a"]
    np.testing.assert_array_equal(out["spk2/a"], mats["spk2_a"])
    # a model file is refused
    from emkit import GMMMachine

    ubm = GMMMachine(2)
    ubm.means, ubm.variances = np.zeros((2, 3)), np.ones((2, 3))
    ubm.save(tmp_path / "ubm.h5")
    with pytest.raises(FeatureError, match="holds a model .*GMMMachine.*not features"):
        read_features(tmp_path / "ubm.h5")
    # no extension: the format is sniffed from the first bytes
    os.rename(tmp_path / "many.npz", tmp_path / "noext")
    assert list(read_features(tmp_path / "noext")) == list(mats)


def test_feature_checks(tmp_path, mats):
    np.save(tmp_path / "a.npy", mats["spk1_a"])
    np.save(tmp_path / "wide.npy", np.ones((4, 5)))
    np.save(tmp_path / "flat.npy", np.ones(4))
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    (tmp_path / "junk.txt").write_text("hello")
    with pytest.raises(FeatureError, match="'wide' has 5 features per frame; the model expects 3"):
        read_features(tmp_path / "wide.npy", n_features=3)
    with pytest.raises(FeatureError, match="2-D numeric array"):
        read_features(tmp_path / "flat.npy")
    with pytest.raises(FeatureError, match="NaN"):
        read_features(tmp_path / "nan.npy")
    with pytest.raises(FeatureError, match="unknown feature format"):
        read_features(tmp_path / "junk.txt")
    with pytest.raises(FileNotFoundError, match="no such feature file"):
        read_features(tmp_path / "missing.npy")
    with pytest.raises(FeatureError, match="'wide' has 5 features per frame, but those of .*a.npy"):
        read_feature_sources([tmp_path / "a.npy", tmp_path / "wide.npy"])
    np.savez(tmp_path / "again.npz", a=np.ones((2, 3)))
    with pytest.raises(FeatureError, match="'a' is in both"):
        read_feature_sources([tmp_path / "a.npy", tmp_path / "again.npz"])
    # one file named twice (a directory and a file in it, or a link) is said to be that
    (tmp_path / "link.npz").symlink_to(tmp_path / "again.npz")
    with pytest.raises(FeatureError, match=r"again.npz is given twice \(directly and through its "
                       r"directory, or under two names\): its utterance 'a' would count twice"):
        read_feature_sources([tmp_path / "again.npz", tmp_path / "link.npz"])


# ---------------------------------------------------------------------------------------------
# lists, trials, scores, atomic writes
# ---------------------------------------------------------------------------------------------


def test_id_lists(tmp_path):
    (tmp_path / "utt2spk").write_text("# comment\nu1 s1\n\nu2 s2\n")
    (tmp_path / "spk2utt").write_text("s1 u1 u3\ns2 u2\n")
    assert read_id_map(tmp_path / "utt2spk") == {"u1": "s1", "u2": "s2"}
    assert read_id_lists(tmp_path / "spk2utt") == {"s1": ["u1", "u3"], "s2": ["u2"]}
    (tmp_path / "bad").write_text("u1 s1 extra\n")
    with pytest.raises(FeatureError, match="line 1: expected 2 columns"):
        read_id_map(tmp_path / "bad")
    (tmp_path / "lonely").write_text("s1\n")
    with pytest.raises(FeatureError, match="line 1"):
        read_id_lists(tmp_path / "lonely")


def test_trials(tmp_path):
    (tmp_path / "t").write_text("m1 p1 target\nm1 p2 nontarget\n# x\nm2 p1 NONTARGET\n")
    trials = read_trials(tmp_path / "t", require_labels=True)
    assert trials.models == ["m1", "m1", "m2"] and trials.probes == ["p1", "p2", "p1"]
    np.testing.assert_array_equal(trials.labels, [True, False, False])
    (tmp_path / "u").write_text("m1 p1\nm2 p2\n")
    assert read_trials(tmp_path / "u").labels is None
    with pytest.raises(FeatureError, match="third column"):
        read_trials(tmp_path / "u", require_labels=True)
    (tmp_path / "mixed").write_text("m1 p1\nm2 p2 target\n")
    with pytest.raises(FeatureError, match="line 2: expected 2 columns"):
        read_trials(tmp_path / "mixed")
    (tmp_path / "label").write_text("m1 p1 impostor\n")
    with pytest.raises(FeatureError, match="line 1: the label must be 'target' or 'nontarget'"):
        read_trials(tmp_path / "label")
    (tmp_path / "empty").write_text("# nothing\n\n")
    with pytest.raises(FeatureError, match="the trial list is empty"):
        read_trials(tmp_path / "empty")


def test_scores_round_trip_exactly(tmp_path):
    values = np.array([0.1, -1e-300, 12345.678901234567, 1 / 3])
    write_scores(tmp_path / "s.txt", ["a", "a", "b", "b"], ["p", "q", "p", "q"], values,
                 [True, False, False, True])
    trials, read = read_scores(tmp_path / "s.txt")
    np.testing.assert_array_equal(read, values)
    np.testing.assert_array_equal(trials.labels, [True, False, False, True])
    assert (tmp_path / "s.txt").read_text().splitlines()[0] == "a p 0.1 target"
    write_scores(tmp_path / "n.txt", ["a"], ["p"], [2.5])
    assert read_scores(tmp_path / "n.txt")[0].labels is None
    (tmp_path / "bad.txt").write_text("a p nan\n")
    with pytest.raises(FeatureError, match="finite"):
        read_scores(tmp_path / "bad.txt")


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_atomic_write_interrupted_as_the_temporary_file_is_created(tmp_path, monkeypatch):
    real_open = os.open

    def open_then_interrupt(*args, **kwargs):
        os.close(real_open(*args, **kwargs))
        raise KeyboardInterrupt  # Ctrl-C handled the moment the creating call returns

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            with atomic_write(tmp_path / "out.txt") as f:
                f.write("never")
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_the_umask_and_never_reuses_an_existing_name(tmp_path, monkeypatch):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    from emkit.io.atomic import _HOST, _name_key

    taken = tmp_path / f".emkit-{'a' * 16}.{_name_key('out.txt')}.{_HOST}.{os.getpid()}.tmp"
    taken.symlink_to(outside)  # a name already there (a link, even): skipped, left alone
    names = iter(["a" * 16, "b" * 16])
    monkeypatch.setattr("emkit.io.atomic.secrets.token_hex", lambda n: next(names))
    previous = os.umask(0o027)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(os, "umask", lambda mask: pytest.fail("the process umask was changed"))
            with atomic_write(tmp_path / "out.txt") as f:
                f.write("new")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "out.txt").st_mode) == 0o640
    assert outside.read_text() == "keep" and taken.is_symlink()
    assert sorted(os.listdir(tmp_path)) == sorted([taken.name, "out.txt", "outside.txt"])


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces_and_writes_through_links(tmp_path):
    """A private (0600) model file became 0644, a link became a file, and a directory target
    was reported by the temporary file's name."""
    target = tmp_path / "models.h5"
    target.write_text("old")
    os.chmod(target, 0o600)
    with atomic_write(target) as f:
        f.write("new")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and target.read_text() == "new"
    link = tmp_path / "latest.h5"
    link.symlink_to(target)
    with atomic_write(link) as f:
        f.write("newer")
    assert link.is_symlink() and target.read_text() == "newer"
    with pytest.raises(IsADirectoryError, match=f"cannot write '{tmp_path}': it is a directory"):
        with atomic_write(tmp_path) as f:
            f.write("x")
    assert sorted(os.listdir(tmp_path)) == ["latest.h5", "models.h5"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_atomic_write_refuses_a_read_only_file_as_open_does(tmp_path):
    target = tmp_path / "ubm.h5"
    target.write_text("keep")
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match="ubm.h5': the file is read-only"):
        with atomic_write(target) as f:
            f.write("x")
    assert target.read_text() == "keep"


KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    from emkit.io.atomic import atomic_write
    with atomic_write(sys.argv[1]) as f:
        f.write("half")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_write_of_that_file_removes(tmp_path):
    """SIGKILL (the out-of-memory killer, a scheduler's hard limit) leaves the temporary file; it
    was never removed (model files, feature archives: up to gigabytes)."""
    from emkit.io import atomic

    for name in ("scores.txt", "other.txt"):
        child = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(tmp_path / name)],
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, child.stderr
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # the temporary file of a live writer, and one of another host: left alone
        key = atomic._name_key("scores.txt")
        live = f".emkit-{'c' * 16}.{key}.{atomic._HOST}.{sleeper.pid}.tmp"
        elsewhere = f".emkit-{'d' * 16}.{key}.another-node.{sleeper.pid + 10**7}.tmp"
        for name in (live, elsewhere):
            (tmp_path / name).write_text("partial")
        temporaries = {n for n in os.listdir(tmp_path) if n.startswith(".emkit-")}
        assert len(temporaries) == 4
        with atomic_write(tmp_path / "scores.txt") as f:
            f.write("whole")
        left = set(os.listdir(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (tmp_path / "scores.txt").read_text() == "whole"
    other = [n for n in temporaries if atomic._name_key("other.txt") in n]
    assert left == {"scores.txt", live, elsewhere, *other} and len(other) == 1


def test_overwritten_input_finds_the_same_file_under_any_name(tmp_path, monkeypatch):
    from emkit.io.atomic import overwritten_input

    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "other.txt").write_text("y")
    os.link(tmp_path / "in.txt", tmp_path / "hard.txt")
    (tmp_path / "soft.txt").symlink_to(tmp_path / "in.txt")
    monkeypatch.chdir(tmp_path)
    inputs = [("FEATURES", "other.txt"), ("--list", str(tmp_path / "in.txt")), ("DIR", ".")]
    for name in ("hard.txt", "soft.txt", "in.txt", str(tmp_path / "in.txt")):
        assert overwritten_input([("-o", "missing.txt"), ("--out", name)], inputs) == (
            "--out", name, "--list", str(tmp_path / "in.txt"))
    assert overwritten_input([("-o", "new.txt"), ("-d", ".")], inputs) is None  # (a directory)


def test_check_writable(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_writable(tmp_path / "nodir" / "x.h5")
    with pytest.raises(IsADirectoryError):
        check_writable(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access",
                        lambda p, mode: str(p) != str(tmp_path) and real_access(p, mode))
    with pytest.raises(PermissionError, match="no write permission"):
        check_writable(tmp_path / "x.h5")
    # where os.access says yes but no file can be made (root on /sys, a read-only file system):
    # found before the work, not when its output is written
    monkeypatch.setattr(os, "access", lambda p, mode: True)
    (tmp_path / "ro").mkdir()
    import tempfile

    def refuse(*args, dir=None, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(PermissionError, match=r"cannot create a file in directory .*ro' \(Read-only file system\)"):
        check_writable(tmp_path / "ro" / "x.h5")
    monkeypatch.undo()
    assert check_writable(tmp_path / "ro" / "x.h5") == tmp_path / "ro" / "x.h5"
    assert os.listdir(tmp_path / "ro") == []  # the probe is gone


def test_file_formats_live_under_io_and_emkit_features_re_exports_them():
    import emkit.features
    import emkit.io.features
    import emkit.io.lists

    for name in ("read_features", "read_feature_sources", "list_feature_directory"):
        assert getattr(emkit.features, name) is getattr(emkit.io.features, name)
        assert getattr(emkit.io.features, name).__module__ == "emkit.io.features"
    for name in ("read_id_map", "read_id_lists", "Trials", "read_trials", "write_scores",
                 "read_scores", "check_writable", "format_score"):
        assert getattr(emkit.features, name) is getattr(emkit.io.lists, name)
        assert getattr(emkit.io.lists, name).__module__ == "emkit.io.lists"
    assert set(emkit.features.__all__) <= set(dir(emkit.features))
    assert emkit.features.FeatureError is emkit.io.lists.FeatureError is emkit.io.features.FeatureError


@pytest.mark.parametrize("token", ["1_0", "\u0661", "\uff14", "+1_000.5"])
def test_text_matrix_numbers_are_ascii_as_kaldi_writes_them(tmp_path, token):
    # before: float() read '1_0' as 10.0 (and the whole file was accepted)
    (tmp_path / "t.ark").write_text(f"u0 [ 1 2 ]\nutt1  [\n 1 2 \n 3 {token} ]\n", encoding="utf-8")
    with pytest.raises(FeatureError) as info:
        read_kaldi_ark(tmp_path / "t.ark")
    assert (f"t.ark: utterance 'utt1', line 4: row 2 of the text matrix holds {token!r}, not a "
            "number as Kaldi writes one (ASCII digits") in str(info.value)
    assert ("is not ASCII" in str(info.value)) == (not token.isascii())
    (tmp_path / "t.scp").write_text(f"utt1 {tmp_path / 't.ark'}:16\n")
    with pytest.raises(FeatureError, match=r"t.scp line 1 \(utterance 'utt1'\): .*t.ark, line 4: "
                                           "row 2 of the text matrix holds"):
        read_kaldi_scp(tmp_path / "t.scp")


def test_the_line_of_a_bad_number_is_found_past_the_first_piece(tmp_path):
    # 100 kB of rows before it: the text matrix is read 64 kB at a time
    rows = " 1 2\n" * 20000
    (tmp_path / "t.ark").write_text(f"utt1 [\n{rows} 3 1_0\n 4 5 ]\nutt2 [ 1 2 ]\n")
    with pytest.raises(FeatureError, match=r"utterance 'utt1', line 20002: row 20001 of the text "
                                           "matrix holds '1_0'"):
        read_kaldi_ark(tmp_path / "t.ark")
    (tmp_path / "t.ark").write_text(f"utt1 [\n{rows} 3 1 ]\nutt2 [ 1 2 ]\n")
    assert read_kaldi_ark(tmp_path / "t.ark")["utt1"].shape == (20001, 2)


@pytest.mark.parametrize("token, shown", [("nan", "nan"), ("-inf", "-inf"), ("INF", "inf"),
                                          ("1e999", "inf")])
def test_a_non_finite_number_of_a_text_matrix_is_named_by_its_line(tmp_path, token, shown):
    # before: "t.ark: utterance 'utt1' contains NaN or infinite values", without the line
    (tmp_path / "t.ark").write_text(f"u0 [ 1 2 ]\nutt1  [\n 1 2 \n\n  \n 3 {token}\n 4 5 ]\n")
    with pytest.raises(FeatureError) as info:
        read_kaldi_ark(tmp_path / "t.ark")
    assert str(info.value) == (f"{tmp_path / 't.ark'}: utterance 'utt1', line 6: row 2 of the text "
                               f"matrix contains NaN or infinite values (column 2 is {shown})")
    (tmp_path / "t.scp").write_text(f"utt1 {tmp_path / 't.ark'}:16\n")
    with pytest.raises(FeatureError, match=r"t.scp line 1 \(utterance 'utt1'\): .*t.ark, line 6: "
                                           "row 2 of the text matrix contains NaN"):
        read_kaldi_scp(tmp_path / "t.scp")


@pytest.mark.parametrize("closing", [" ]\n", "\n ]\n"])
def test_the_line_of_a_non_finite_number_is_found_past_the_first_piece(tmp_path, closing):
    rows = " 1 2\n" * 20000  # 100 kB before it: the rows are read again 64 kB at a time
    (tmp_path / "t.ark").write_text(f"u0 [ 1 2 ]\nutt1 [ 1 2\n{rows} 3 nan{closing}")
    with pytest.raises(FeatureError, match=r"utterance 'utt1', line 20003: row 20002 of the text "
                                           r"matrix contains NaN or infinite values \(column 2 is nan\)$"):
        read_kaldi_ark(tmp_path / "t.ark")
    (tmp_path / "t.ark").write_text(f"utt1 [ inf 2\n{rows} 3 4 ]\n")
    with pytest.raises(FeatureError, match=r"utterance 'utt1', line 1: row 1 of the text matrix "
                                           r"contains NaN or infinite values \(column 1 is inf\)$"):
        read_kaldi_ark(tmp_path / "t.ark")
