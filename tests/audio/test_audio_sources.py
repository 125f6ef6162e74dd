"""Audio inputs from untrusted lists and names: ids, paths and segments refused clearly."""

import os

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import AudioError, compute_features, find_utterances  # noqa: E402
from emkit.audio import write_kaldi_ark  # noqa: E402
from audio_files import speech_like, write  # noqa: E402


@pytest.fixture()
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write(d / "a.wav", speech_like(seed=5))
    return d


def refused(data, match, **files):
    for name, text in files.items():
        (data / name).write_text(text, encoding="utf-8")
    with pytest.raises(AudioError, match=match) as info:
        find_utterances([data])
    return str(info.value)


@pytest.mark.parametrize("bad", ["u\x1b[31m", "u\x07", "u\u200b"])
def test_non_printable_ids_are_refused_at_their_line(data, bad):
    message = refused(data, "wav.scp line 2: the recording id .* non-printable",
                      **{"wav.scp": f"ok a.wav\n{bad} a.wav\n"})
    assert repr(bad) in message and "\x1b" not in message and "\x07" not in message
    message = refused(data, "segments line 3: the utterance id .* non-printable",
                      **{"wav.scp": "r a.wav\n", "segments": f"s1 r 0 0.5\ns2 r 0.5 0.8\n"
                                                             f"{bad} r 0 1\n"})
    assert repr(bad) in message and "\x1b" not in message


def test_non_printable_file_names_are_refused_naming_the_file(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write(d / "ok.wav", speech_like())
    path = write(d / "esc\x1b[31mRED.wav", speech_like())
    with pytest.raises(AudioError, match="non-printable character") as info:
        find_utterances([d])
    message = str(info.value)
    assert "\x1b" not in message and repr("esc\x1b[31mRED") in message
    with pytest.raises(AudioError, match="non-printable"):
        compute_features([path], tmp_path / "f.ark")
    assert not os.path.exists(tmp_path / "f.ark")


def test_writers_refuse_keys_that_readers_would_refuse(tmp_path):
    with pytest.raises(ValueError, match="printable"):
        write_kaldi_ark([("a\x1bb", np.zeros((2, 2)))], tmp_path / "f.ark")
    assert not (tmp_path / "f.ark").exists()
