"""Reading audio within bounds: decoded size limited before decoding, memory of one copy."""

import tracemalloc

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
sf = pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import (AudioError, FeatureConfig, compute_features,  # noqa: E402
                         extract_features, read_audio)
from audio_files import speech_like, write  # noqa: E402


def constant_flac(path, seconds):
    """A FLAC of a constant signal: a few bytes a second, however long."""
    sf.write(path, np.full(int(seconds * 16000), 0.25), 16000, subtype="PCM_16", format="FLAC")
    return path


def test_decoded_size_is_limited_from_the_header_before_decoding(tmp_path, monkeypatch):
    path = constant_flac(tmp_path / "long.flac", 75)  # 1.2 million samples, 9.6 MB as float64
    assert path.stat().st_size < 20_000
    n = 75 * 16000
    assert read_audio(path, max_utterance_bytes=8 * n).shape == (n,)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before the size was checked")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(AudioError) as info:
        read_audio(path, max_utterance_bytes=8 * n - 1)
    message = str(info.value)
    assert str(path) in message and "1 min 15 s of audio (1200000 samples, 9600000 bytes" in message
    assert f"exceeds max_utterance_bytes={8 * n - 1}" in message and "segments" in message
    with pytest.raises(ValueError, match="max_utterance_bytes must be an integer >= 8"):
        read_audio(path, max_utterance_bytes=2.5)


def test_the_default_limit_is_2_gib_and_the_pipeline_passes_its_own(tmp_path, monkeypatch):
    import emkit.audio._read as read_module

    path = constant_flac(tmp_path / "u.flac", 2)
    seen = []
    real = read_module._check_size
    monkeypatch.setattr(read_module, "_check_size",
                        lambda count, rate, where, limit: seen.append(limit) or real(
                            count, rate, where, limit))
    read_audio(path)
    assert seen == [2 * 1024**3]
    with pytest.raises(AudioError, match="exceeds max_utterance_bytes=1000"):
        extract_features(path, FeatureConfig(max_utterance_bytes=1000, vad=False))
    with pytest.raises(ValueError, match="max_utterance_bytes"):
        FeatureConfig(max_utterance_bytes=0)


def test_a_segment_counts_its_own_samples_only(tmp_path):
    constant = constant_flac(tmp_path / "rec.flac", 60)
    speech = np.concatenate([speech_like(seed=1), np.zeros(16000 * 59)])
    write(tmp_path / "talk.flac", speech)
    (tmp_path / "wav.scp").write_text(f"rec {constant}\ntalk talk.flac\n")
    (tmp_path / "segments").write_text("talk-1 talk 0 1.0\n")
    config = FeatureConfig(max_utterance_bytes=8 * 16000)  # one second
    shapes = compute_features([tmp_path], tmp_path / "f.ark", config)
    assert list(shapes) == ["talk-1"]
    (tmp_path / "segments").write_text("talk-1 talk 0 1.0\nall rec 0 -1\n")
    with pytest.raises(AudioError, match=r"\[0s to end\]: 1 min 0 s of audio"):
        compute_features([tmp_path], tmp_path / "g.ark", config)
    assert not (tmp_path / "g.ark").exists()


def test_reading_a_wav_holds_one_float64_copy_of_it(tmp_path):
    rng = np.random.default_rng(0)
    n = 2_000_000  # 16 MB as float64
    path = write(tmp_path / "long.wav", rng.uniform(-0.5, 0.5, n))
    tracemalloc.start()
    try:
        samples = read_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert samples.shape == (n,)
    # the output (16 MB), a 4 MiB decoding block and the checks' 8 MiB chunks; concatenated
    # blocks and a full-size np.abs temporary needed twice the output and more
    assert peak < 8 * n + 14 * 1024**2, peak


def test_clipping_is_counted_in_chunks_on_both_signs(tmp_path, monkeypatch):
    import emkit.audio._read as read_module

    monkeypatch.setattr(read_module, "_CHECK_VALUES", 1000)
    x = 0.5 * np.sin(np.arange(16000) * 0.1)
    x[100:150] = 1.0
    x[9990:10050] = -1.0  # across a chunk boundary
    path = write(tmp_path / "c.wav", x)
    with pytest.raises(AudioError, match=r"clipped: 110 of 16000 samples"):
        read_audio(path, max_clipped=0.005)
    assert read_audio(path, max_clipped=0.007).shape == (16000,)


def wav_bytes(pcm: bytes, data_size=None, riff_size=None, channels=1, bits=16):
    import struct

    align = channels * bits // 8
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, channels, 16000, 16000 * align, align, bits)
    data = struct.pack("<4sI", b"data", len(pcm) if data_size is None else data_size) + pcm
    body = b"WAVE" + fmt + data
    return struct.pack("<4sI", b"RIFF", len(body) if riff_size is None else riff_size) + body


PCM = (0.3 * 32767 * np.sin(np.arange(16000) * 0.05)).astype("<i2").tobytes()


def test_a_truncated_wav_is_read_with_a_warning(tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(PCM)[:44 + 9999])  # 16000 samples declared, 4999 (and a half)
    with pytest.warns(UserWarning, match=r"cut.wav.: truncated WAV: its header declares 16000 "
                                         r"samples, the file holds 4999") as caught:
        assert read_audio(path).shape == (4999,)
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="truncated WAV") as caught:
        extract_features(path, FeatureConfig(vad=False))
    assert caught[0].filename == __file__  # the user's line (was emkit's _pipeline.py)


def test_a_truncated_wav_warns_from_worker_processes_too(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "cut.wav").write_bytes(wav_bytes(PCM)[:44 + 20000])
    write(d / "ok.wav", speech_like())
    with pytest.warns(UserWarning, match="declares 16000 samples, the file holds 10000") as caught:
        compute_features([d], tmp_path / "f.ark", FeatureConfig(vad=False), jobs=2)
    assert caught[0].filename == __file__  # the user's line (was emkit's)


@pytest.mark.parametrize("sizes", [dict(data_size=0xFFFFFFFF), dict(riff_size=0xFFFFFFFF),
                                   dict(riff_size=0), dict(riff_size=100), dict()])
def test_sizes_left_unknown_by_streaming_writers_do_not_warn(tmp_path, sizes, recwarn):
    path = tmp_path / "stream.wav"
    path.write_bytes(wav_bytes(PCM, **sizes))
    assert read_audio(path).shape == (16000,)
    assert not [w for w in recwarn if "truncated" in str(w.message)]
    pcm12 = tmp_path / "twelve.wav"  # 12-bit samples, 2 bytes each although block align says 1
    pcm12.write_bytes(wav_bytes(PCM, bits=12))
    assert read_audio(pcm12).shape == (16000,)
    assert not [w for w in recwarn if "truncated" in str(w.message)]


def test_compute_features_refuses_an_output_named_like_another_feature_file(tmp_path):
    path = write(tmp_path / "a.wav", speech_like())
    with pytest.raises(ValueError, match="'.*feats.h5': features are written as a Kaldi"):
        compute_features([path], tmp_path / "feats.h5")
    assert not (tmp_path / "feats.h5").exists()
