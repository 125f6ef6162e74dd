"""libsndfile 1.2.0 (the library in soundfile 0.12's wheels) closed the descriptor it was given
when it could not open the file, closefd=False notwithstanding: emkit then closed that number
again (EBADF, or another file's descriptor reusing it).  read_audio hands libsndfile a
descriptor of its own, which libsndfile closes in every case."""

import os

import pytest

sf = pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import AudioError, read_audio  # noqa: E402
from audio_files import speech_like, write  # noqa: E402


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_libsndfile_that_closes_its_descriptor_on_failure_leaves_emkit_s_file_alone(
        tmp_path, monkeypatch):
    path = tmp_path / "not.wav"
    path.write_bytes(b"RIFF" + bytes(range(256)) * 2)
    real = sf.SoundFile

    def closes_on_failure(file, *args, closefd=True, **kwargs):  # as libsndfile 1.2.0 did
        try:
            return real(file, *args, closefd=closefd, **kwargs)
        except RuntimeError:
            if not closefd:  # (with closefd=True, libsndfile has closed it already)
                os.close(file)
            raise

    monkeypatch.setattr(sf, "SoundFile", closes_on_failure)
    with pytest.raises(AudioError, match="not a readable audio file"):  # was OSError: EBADF
        read_audio(path, sample_rate=8000)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_no_descriptor_is_left_open_after_a_read_or_a_refusal(tmp_path):
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    write(good, speech_like(0.2, rate=8000), rate=8000)
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 2)
    before = _open_descriptors()
    for _ in range(5):
        assert read_audio(good, sample_rate=8000).size == 1600
        with pytest.raises(AudioError):
            read_audio(bad, sample_rate=8000)
    assert _open_descriptors() == before
