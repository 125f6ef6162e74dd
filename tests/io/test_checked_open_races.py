"""A file checked, then replaced by a named pipe before it is opened: every reader refuses it,
naming the file, instead of blocking in ``open`` (it reads the descriptor it checked)."""

import os
import sys

import h5py
import numpy as np
import pytest

import emkit.io.untrusted as untrusted
from emkit import GMMMachine
from emkit.io.errors import InvalidFileError
from emkit.io.untrusted import FeatureError

@pytest.fixture
def pipe_after_check(monkeypatch, no_hang):
    """``swap(path)``: right after emkit's check of ``path``, the file there becomes a named
    pipe (as another process could make it); a reader that opens the path again blocks."""
    real = untrusted.check_regular
    targets = set()

    def check_then_swap(path, what="", **options):
        info = real(path, what, **options)
        if os.fspath(path) in targets:
            targets.discard(os.fspath(path))
            os.unlink(path)
            os.mkfifo(path)
        return info

    for name, module in list(sys.modules.items()):  # and the modules that import it by name
        if name.startswith("emkit") and getattr(module, "check_regular", None) is real:
            monkeypatch.setattr(module, "check_regular", check_then_swap)
    yield lambda path: targets.add(os.fspath(path))
    assert not targets, f"never checked: {targets}"


def test_the_descriptor_checked_is_read_and_is_blocking(tmp_path, pipe_after_check):
    (tmp_path / "a.ark").write_bytes(b"x" * 10)
    with untrusted.open_regular(tmp_path / "a.ark") as f:
        assert os.get_blocking(f.fileno()) and f.read() == b"x" * 10
    pipe_after_check(tmp_path / "a.ark")
    with pytest.raises(FeatureError, match=r"'.*a\.ark' is a named pipe, not a regular file; "
                                           "emkit reads regular files only"):
        untrusted.open_regular(tmp_path / "a.ark", what="scp line 1")


def _gmm_file(path):
    GMMMachine(2).fit(np.random.default_rng(0).standard_normal((60, 3))).save(path)
    return path


def _features_file(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("u1", data=np.arange(30.0).reshape(10, 3))
    return path


def test_a_model_file(tmp_path, pipe_after_check):
    path = _gmm_file(tmp_path / "ubm.h5")
    pipe_after_check(path)
    with pytest.raises(InvalidFileError, match="not a regular file") as info:
        GMMMachine.from_hdf5(path)
    assert str(path) in str(info.value)


def test_an_hdf5_feature_file(tmp_path, pipe_after_check):
    from emkit.io.hdf5_features import read_hdf5_features

    path = _features_file(tmp_path / "feats.h5")
    pipe_after_check(path)
    with pytest.raises(FeatureError, match=r"feats\.h5 is a named pipe, not a regular file"):
        read_hdf5_features(path)


def test_the_rows_of_hdf5_frames(tmp_path, pipe_after_check):
    from emkit.io.arrays import HDF5RowReader

    path = _features_file(tmp_path / "frames.h5")
    reader = HDF5RowReader.open(path, "u1")
    np.testing.assert_array_equal(reader[2:4], np.arange(6.0, 12.0).reshape(2, 3))
    pipe_after_check(path)
    with pytest.raises(FeatureError, match=r"frames\.h5 is a named pipe, not a regular file"):
        reader[0:2]
    _features_file(tmp_path / "again.h5")
    pipe_after_check(tmp_path / "again.h5")
    with pytest.raises(FeatureError, match=r"again\.h5 is a named pipe, not a regular file"):
        HDF5RowReader.open(tmp_path / "again.h5", "u1")


def test_hdf5_names_the_file_by_its_path(tmp_path):
    from emkit.io.h5 import open_for_reading

    path = _gmm_file(tmp_path / "modèle ü.h5")
    with open_for_reading(path) as f:  # read through the checked descriptor, named as before
        assert f.filename == str(path)
    os.symlink(path, tmp_path / "link.h5")
    got = GMMMachine.from_hdf5(tmp_path / "link.h5")
    np.testing.assert_array_equal(got.means, GMMMachine.from_hdf5(path).means)


def test_an_audio_file(tmp_path, pipe_after_check):
    pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")
    from audio_files import speech_like, write

    from emkit.audio import AudioError, read_audio

    path = write(tmp_path / "a.wav", speech_like(0.3))
    expected = read_audio(path)
    os.symlink(path, tmp_path / "link.wav")  # links are followed (Kaldi data directories)
    np.testing.assert_array_equal(read_audio(tmp_path / "link.wav"), expected)
    pipe_after_check(path)
    with pytest.raises(AudioError, match=r"a\.wav is a named pipe, not a regular file"):
        read_audio(path)


def test_counting_the_audio_of_a_list_naming_a_pipe_does_not_block(tmp_path, no_hang):
    pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")
    from audio_files import speech_like, write

    from emkit.audio import processes_for
    from emkit.audio._sources import Utterance

    wav = write(tmp_path / "a.wav", speech_like(2.0))
    os.mkfifo(tmp_path / "p.wav")
    utterances = [Utterance("p", str(tmp_path / "p.wav")), Utterance("a", wav)]
    # the pipe counts nothing (read_audio refuses it, naming it); 2 s of audio: 2 processes
    assert processes_for(utterances, 4, seconds_per_process=1.0) == 2


def test_a_recipe_input_digest(tmp_path, pipe_after_check):
    from emkit.recipe import Runner

    (tmp_path / "list.txt").write_text("a\n")
    runner = Runner(tmp_path / "work")
    assert runner.digest(tmp_path / "list.txt") == \
        "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7"  # sha256 of "a\n"
    (tmp_path / "other.txt").write_text("a\n")
    pipe_after_check(tmp_path / "other.txt")
    with pytest.raises(FeatureError, match=r"other\.txt is a named pipe, not a regular file"):
        runner.digest(tmp_path / "other.txt")


def test_a_recipe_score_file(tmp_path, pipe_after_check):
    from emkit.recipe._scoring import read_npz

    np.savez(tmp_path / "scores.npz", scores=np.arange(3.0))
    np.testing.assert_array_equal(read_npz(tmp_path / "scores.npz")["scores"], np.arange(3.0))
    pipe_after_check(tmp_path / "scores.npz")
    with pytest.raises(FeatureError, match=r"scores\.npz is a named pipe, not a regular file"):
        read_npz(tmp_path / "scores.npz")


def test_a_link_is_refused_where_links_are_not_followed(tmp_path, monkeypatch):
    """``follow_links=False`` (files emkit wrote itself): a symbolic link is refused, one put in
    the file's place after the check too (``O_NOFOLLOW``), instead of read wherever it points."""
    (tmp_path / "target").write_bytes(b"elsewhere")
    os.symlink(tmp_path / "target", tmp_path / "link")
    with untrusted.open_regular(tmp_path / "link") as f:  # followed by default
        assert f.read() == b"elsewhere"
    with pytest.raises(FeatureError, match=r"link is a symbolic link, not a regular file"):
        untrusted.open_regular(tmp_path / "link", follow_links=False)
    (tmp_path / "own").write_bytes(b"ours")
    real = untrusted.check_regular

    def check_then_link(path, what="", **options):
        info = real(path, what, **options)
        os.unlink(path)
        os.symlink(tmp_path / "target", path)
        return info

    monkeypatch.setattr(untrusted, "check_regular", check_then_link)
    with pytest.raises(FeatureError, match=r"own is a symbolic link, not a regular file"):
        untrusted.open_regular(tmp_path / "own", follow_links=False)
