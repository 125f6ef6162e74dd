"""Odd but legal audio files: the codecs and WAV layouts of real corpora read as their samples."""

import struct

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
sf = pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import FeatureConfig, KaldiOptions, compute_features, extract_features  # noqa: E402
from emkit.audio import read_audio  # noqa: E402
from emkit.features import read_features  # noqa: E402
from audio_files import speech_like, write  # noqa: E402

AT_8K = FeatureConfig(kaldi=KaldiOptions(sample_frequency=8000.0))


def test_gsm_wav_is_read_whole_and_in_segments(tmp_path):
    # before: "not a readable audio file (... libsndfile says: Seek attempted on unseekable file
    # type.)": libsndfile decodes GSM 6.10 from the start only, and emkit always seeked
    path = write(tmp_path / "phone.wav", speech_like(rate=8000, seed=5), rate=8000,
                 subtype="GSM610")
    whole = read_audio(path, sample_rate=8000)
    assert whole.shape[0] >= 8000 and np.abs(whole).max() > 1000  # speech, not silence
    segment = read_audio(path, sample_rate=8000, start=0.25, end=0.75)
    np.testing.assert_array_equal(segment, whole[2000:6000])
    assert np.array_equal(read_audio(path, sample_rate=8000, start=0.5), whole[4000:])
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec {path}\n")
    (data / "segments").write_text("a rec 0.1 0.9\nb rec 0.2 -1\n")
    shapes = compute_features([data], tmp_path / "f.ark", AT_8K)
    assert list(shapes) == ["a", "b"] and all(s[0] > 0 for s in shapes.values())
    assert read_features(tmp_path / "f.scp")["a"].shape == shapes["a"]


def _with_list_chunk_after_data(wav: bytes) -> bytes:
    info = b"LIST" + struct.pack("<I", 12) + b"INFOISFT" + struct.pack("<I", 0)
    out = wav + info
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def test_wav_layouts_give_the_features_of_the_plain_wav(tmp_path):
    x = speech_like(seed=6)
    plain = extract_features(write(tmp_path / "plain.wav", x))
    sf.write(tmp_path / "ext.wav", x, 16000, subtype="PCM_16", format="WAVEX")
    assert np.array_equal(extract_features(tmp_path / "ext.wav"), plain)
    (tmp_path / "list.wav").write_bytes(_with_list_chunk_after_data(
        (tmp_path / "plain.wav").read_bytes()))
    assert np.array_equal(extract_features(tmp_path / "list.wav"), plain)
    pcm, _ = sf.read(tmp_path / "plain.wav", dtype="int16")  # (libsndfile's FLAC encoder rounds
    sf.write(tmp_path / "x.flac", pcm, 16000, subtype="PCM_16")  # floats otherwise)
    assert np.array_equal(extract_features(tmp_path / "x.flac"), plain)


@pytest.mark.parametrize("subtype,rate", [("PCM_24", 16000), ("PCM_U8", 16000),
                                          ("ULAW", 8000), ("ALAW", 8000)])
def test_other_sample_formats_read_in_the_16_bit_scale(tmp_path, subtype, rate):
    x = speech_like(seed=7, rate=rate)
    samples = read_audio(write(tmp_path / "a.wav", x, rate=rate, subtype=subtype),
                         sample_rate=rate)
    error = {"PCM_24": 1.0, "PCM_U8": 260.0, "ULAW": 700.0, "ALAW": 700.0}[subtype]
    assert np.abs(samples - 32768 * x).max() <= error
