"""Bad audio: a clear error naming the file, and nothing (half) written."""

import os
import re

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
sf = pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import (AudioError, FeatureConfig, KaldiOptions, MultiChannelWarning,  # noqa: E402
                         compute_features, extract_features, read_audio)
from audio_files import speech_like, write  # noqa: E402

from emkit.features import read_feature_sources  # noqa: E402


def untouched(directory, *, before=None):
    names = sorted(os.listdir(directory))
    assert not [n for n in names if n.startswith(".emkit-")], names
    if before is not None:
        assert names == before
    return names


def fails(tmp_path, path, match, config=FeatureConfig()):
    """The error names the file, and neither an ark nor an npy directory is written."""
    with pytest.raises(AudioError, match=match) as info:
        compute_features([path], tmp_path / "out.ark", config)
    assert str(path) in str(info.value)
    with pytest.raises(AudioError, match=match):
        compute_features([path], tmp_path / "npy", config)
    assert not (tmp_path / "out.ark").exists() and not (tmp_path / "out.scp").exists()
    assert not (tmp_path / "npy").exists()
    untouched(tmp_path)
    return str(info.value)


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("SECRET-CONTENT: this is a text file, not a RIFF header\n")
    message = fails(tmp_path, path, "not a readable audio file")
    assert "SECRET" not in message  # never echo an untrusted file's contents
    junk = tmp_path / "junk.flac"
    junk.write_bytes(bytes(range(256)) * 10)
    fails(tmp_path, junk, "not a readable audio file")


def test_a_truncated_flac_is_said_to_be_one(tmp_path):
    # before: "not a readable audio file (expected WAV or FLAC; libsndfile says: flac decoder
    # lost sync.)" of a file libsndfile had opened as a FLAC (an interrupted download)
    whole = tmp_path / "whole.flac"
    sf.write(whole, speech_like(seconds=2.0, seed=6), 16000, subtype="PCM_16", format="FLAC")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    whole.unlink()
    message = fails(tmp_path, cut, r"'[^']*cut.flac': its FLAC \(PCM_16\) audio cannot be "
                                   r"decoded \(a truncated or damaged file\?; libsndfile says: ")
    assert message.endswith("replace it with a complete copy, or leave it out")
    assert "not a readable audio file" not in message


def test_empty_file_and_empty_audio(tmp_path):
    empty = tmp_path / "zero.wav"
    empty.write_bytes(b"")
    fails(tmp_path, empty, r"empty \(0 bytes\)")
    no_samples = write(tmp_path / "nosamples.wav", np.zeros(0))
    fails(tmp_path, no_samples, r"empty \(no sample\)")


def test_too_short_for_one_frame(tmp_path):
    short = write(tmp_path / "short.wav", 0.3 * np.sin(np.arange(300) * 0.3))
    fails(tmp_path, short, "too short for one frame .*300 samples; a frame needs 400")


def test_unsupported_sample_rate_is_refused(tmp_path):
    path = write(tmp_path / "narrow.wav", speech_like(rate=8000), rate=8000)
    message = fails(tmp_path, path, "sample rate is 8000 Hz, expected 16000 Hz")
    assert "sox" in message
    # the rate of the data can be chosen instead, and the message says how (before: "or
    # choose the rate of the data", without naming the option or the rate)
    assert message.endswith("give that rate (emkit features --sample-rate 8000, a recipe's "
                            "[features] sample_frequency = 8000)")
    config = FeatureConfig(kaldi=FeatureConfig().kaldi.__class__(sample_frequency=8000.0))
    assert extract_features(path, config).shape[1] == 39


def test_multi_channel_picks_the_channel(tmp_path):
    left, right = speech_like(seed=1, f0=120), speech_like(seed=2, f0=260)
    stereo = write(tmp_path / "stereo.wav", np.stack([left, right], axis=1))
    mono_left = write(tmp_path / "left.wav", left)
    mono_right = write(tmp_path / "right.wav", right)
    # no channel chosen: the first, with a warning as Kaldi gives (it was silent)
    with pytest.warns(MultiChannelWarning, match=re.escape(
            "stereo.wav': has 2 channels and no channel was chosen: the first (channel 0) is used")) as caught:
        default = extract_features(stereo)
    assert caught[0].filename == __file__
    with pytest.warns(MultiChannelWarning, match="has 2 channels") as caught:
        read_audio(stereo)
    assert caught[0].filename == __file__  # the user's line (was pytest's, a frame above this file)
    assert np.array_equal(default, extract_features(mono_left))
    assert np.array_equal(extract_features(stereo, FeatureConfig(channel=0)), default)  # no warning
    assert np.array_equal(extract_features(stereo, FeatureConfig(channel=1)),
                          extract_features(mono_right))
    message = fails(tmp_path, stereo, "channel 2 requested", FeatureConfig(channel=2))
    assert message == (f"channel 2 requested; '{stereo}' has 2 channels (channels are "
                       "numbered from 0)")


def test_a_corpus_of_stereo_files_gets_one_warning_not_one_per_file(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write(src / f"a{i}.wav", np.stack([speech_like(seed=i), speech_like(seed=9)], axis=1))
    write(src / "b.wav", speech_like(seed=5))
    with pytest.warns(MultiChannelWarning) as caught:
        compute_features([src], tmp_path / "f.ark", jobs=2)
    assert len(caught) == 1 and caught[0].filename == __file__
    assert str(caught[0].message).startswith("3 of 4 utterances come from multi-channel audio, "
                                             "whose first channel was used (the first: ")
    assert "a0.wav': has 2 channels" in str(caught[0].message)


def test_the_multi_channel_summary_counts_the_utterances_kept(tmp_path):
    # before: a stereo file left out by --keep-going (digital silence here) was counted too:
    # "2 of 3 utterances come from multi-channel audio, whose first channel was used (the
    # first: 'a_silent.wav' ...)" when one stereo utterance was in the features written
    src = tmp_path / "in"
    src.mkdir()
    write(src / "a_silent.wav", np.zeros((1600, 2)))
    write(src / "b.wav", np.stack([speech_like(seed=1), speech_like(seed=2)], axis=1))
    write(src / "c.wav", speech_like(seed=5))
    with pytest.warns(UserWarning) as caught:
        shapes = compute_features([src], tmp_path / "f.ark", keep_going=True)
    assert list(shapes) == ["b", "c"]
    summary, = [str(w.message) for w in caught if w.category is MultiChannelWarning]
    assert summary.startswith("1 of the 2 utterances kept come from multi-channel audio, whose "
                              "first channel was used (the first: ")
    assert "b.wav': has 2 channels" in summary
    # a corpus whose stereo files are all left out gets no such summary
    (src / "b.wav").unlink()
    with pytest.warns(UserWarning) as caught:
        assert list(compute_features([src], tmp_path / "f.ark", keep_going=True)) == ["c"]
    assert not [w for w in caught if w.category is MultiChannelWarning]


def test_the_stamps_of_recipes_are_those_of_channel_0_without_a_channel():
    """(None became the default: the recipes run before keep their features step)"""
    from emkit.recipe._steps import _stamped

    assert _stamped(FeatureConfig()) == _stamped(FeatureConfig(channel=0))
    assert _stamped(FeatureConfig(channel=1))["channel"] == 1


def test_channel_minus_one_is_kaldis_spelling_of_none(tmp_path):
    """(was a ValueError in Python while the CLI took --channel=-1)"""
    from emkit.recipe._steps import _stamped

    kaldi_spelling = FeatureConfig(channel=-1)
    assert kaldi_spelling.channel is None and FeatureConfig(channel=np.int64(-1)).channel is None
    assert kaldi_spelling == FeatureConfig() and hash(kaldi_spelling) == hash(FeatureConfig())
    assert repr(kaldi_spelling) == repr(FeatureConfig())
    assert _stamped(kaldi_spelling) == _stamped(FeatureConfig())
    stereo = write(tmp_path / "stereo.wav", np.stack([speech_like(seed=1), speech_like(seed=2)], axis=1))
    with pytest.warns(MultiChannelWarning, match="no channel was chosen"):
        assert np.array_equal(extract_features(stereo, kaldi_spelling),
                              extract_features(stereo, FeatureConfig(channel=0)))
    for bad in (-2, -100):
        with pytest.raises(ValueError, match=r"^channel must be -1 or None \(Kaldi's default: "
                                             r"mono expected.*\) or a channel number from 0 "
                                             r"to 1023 \(libsndfile opens no file of more "
                                             rf"than 1024 channels\); got {bad}$"):
            FeatureConfig(channel=bad)


@pytest.mark.parametrize("channel, error", [(1024, ValueError), (10**30, ValueError),
                                            (-1, ValueError), (True, TypeError),
                                            (1.0, TypeError), ("1", TypeError)])
def test_a_channel_no_file_can_have_is_refused_before_any_file_is_opened(tmp_path, channel,
                                                                         error):
    # before: per file, "has 1 channel(s); channel 1000000000000000000000000000000 was asked
    # for", and for True, 1.0 or "1" an IndexError or a file "not a readable audio file"
    with pytest.raises(error, match=r"^channel must be None or a channel number from 0 to "
                                    r"1023\b") as caught:
        read_audio(tmp_path / "absent.wav", channel=channel)
    assert len(str(caught.value)) < 200
    if error is ValueError and channel >= 0:
        with pytest.raises(ValueError, match=r"^channel must be .* from 0 to 1023 "):
            FeatureConfig(channel=channel)


def test_a_channel_the_file_lacks_is_named_with_the_files_channels(tmp_path):
    mono = write(tmp_path / "mono.wav", speech_like(0.1))
    with pytest.raises(AudioError) as caught:
        read_audio(mono, channel=1023)
    assert str(caught.value) == (f"channel 1023 requested; '{mono}' has 1 channel (channels "
                                 "are numbered from 0)")
    assert FeatureConfig(channel=1023).channel == 1023


def test_only_the_asked_channel_of_a_many_channel_file_is_held_in_memory(tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)
    data = rng.uniform(-0.5, 0.5, size=(160_000, 16))  # 10 s, 16 channels: 20 MB as float64
    path = tmp_path / "many.wav"
    sf.write(path, data, 16000, subtype="PCM_16")
    tracemalloc.start()
    try:
        samples = read_audio(path, channel=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(samples / 32768.0, data[:, 5], atol=1 / 32768.0)
    assert peak < 10 * 1024**2, peak  # one channel (1.3 MB), its blocks and a 4 MiB buffer


def test_all_silence(tmp_path):
    # one least significant bit of noise: real samples, but the VAD keeps no frame
    hiss = write(tmp_path / "hiss.wav", np.random.default_rng(0).standard_normal(16000) / 32768)
    assert read_audio(hiss).any()
    message = fails(tmp_path, hiss, "all silence: the VAD kept none of its 98 frames")
    # the message names the options (before: "lower the VAD energy threshold, or turn VAD off")
    assert message.endswith("(lower its energy threshold, --vad-energy-threshold or "
                            "vad_energy_threshold in a recipe's [features], or turn it off, "
                            "--no-vad or vad = false)")
    # with a lower threshold, or without VAD, the same file is accepted
    assert extract_features(hiss, FeatureConfig(vad_energy_threshold=0.0)).shape[0] > 0
    assert extract_features(hiss, FeatureConfig(vad=False)).shape == (98, 39)
    zeros = write(tmp_path / "zeros.wav", np.zeros(16000))
    fails(tmp_path, zeros, "digital silence", FeatureConfig(vad=False))


def test_clipped(tmp_path):
    t = np.arange(16000) / 16000
    loud = np.clip(3.0 * np.sin(2 * np.pi * 200 * t), -1, 1)
    path = write(tmp_path / "loud.wav", loud)
    fails(tmp_path, path, r"clipped: \d+ of 16000 samples .* more than the 1% allowed")
    assert extract_features(path, FeatureConfig(max_clipped=1.0)).shape[0] > 0
    # a few clipped samples are tolerated
    mild = 0.5 * np.sin(2 * np.pi * 200 * t)
    mild[1000:1010] = 1.0
    assert extract_features(write(tmp_path / "mild.wav", mild)).shape[0] > 0


@pytest.mark.parametrize("subtype", ["ULAW", "ALAW"])
def test_clipped_telephone_audio_is_clipped_too(tmp_path, subtype):
    # before: mu-law and A-law decode to at most 0.98 of full scale, so a clipped 8 kHz
    # telephone recording never counted a clipped sample
    t = np.arange(8000) / 8000
    loud = np.clip(3.0 * np.sin(2 * np.pi * 200 * t), -1, 1)
    path = write(tmp_path / "loud.wav", loud, rate=8000, subtype=subtype)
    config = FeatureConfig(kaldi=KaldiOptions(sample_frequency=8000.0))
    fails(tmp_path, path, r"clipped: \d+ of 8000 samples .* more than the 1% allowed", config)
    # the loudest unclipped sample is not clipped: a few are tolerated, a quiet file passes
    mild = 0.5 * np.sin(2 * np.pi * 200 * t)
    mild[1000:1010] = 1.0
    assert extract_features(write(tmp_path / "mild.wav", mild, rate=8000, subtype=subtype),
                            config).shape[0] > 0
    peak = np.abs(read_audio(tmp_path / "mild.wav", sample_rate=8000)).max()
    assert peak == {"ULAW": 32124.0, "ALAW": 32256.0}[subtype]


@pytest.mark.parametrize("subtype,container", [("PCM_U8", "WAV"), ("PCM_S8", "AIFF")])
def test_clipped_8_bit_audio_counts_both_halves(tmp_path, subtype, container):
    # before: 8-bit PCM peaks at +127/128 of full scale, so only the samples clipped at -1
    # counted: 6200 of 16000 (38.75%), under a max_clipped of 50%
    t = np.arange(16000) / 16000
    loud = np.clip(3.0 * np.sin(2 * np.pi * 200 * t), -1, 1)
    path = str(tmp_path / f"loud.{container.lower()}")
    sf.write(path, loud, 16000, subtype=subtype, format=container)
    fails(tmp_path, path, r"clipped: 12400 of 16000 samples \(77\.50%\) .* more than the 50% "
          "allowed", FeatureConfig(max_clipped=0.5))
    assert read_audio(path, max_clipped=1.0).max() == 32512.0  # the loudest 8-bit sample
    # the loudest sample of a quiet file is not clipped
    mild = 0.5 * np.sin(2 * np.pi * 200 * t)
    mild[1000:1010] = 1.0
    sf.write(path, mild, 16000, subtype=subtype, format=container)
    assert extract_features(path).shape[0] > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_samples(tmp_path, bad):
    x = speech_like(seed=3)
    x[500:503] = bad
    path = write(tmp_path / "nan.wav", x, subtype="FLOAT")
    fails(tmp_path, path, "3 of 16000 samples are NaN or infinite")


def test_float_samples_beyond_full_scale_count_as_clipped(tmp_path):
    path = write(tmp_path / "hot.wav", 4.0 * speech_like(seed=4), subtype="FLOAT")
    fails(tmp_path, path, "clipped")


def test_unscaled_float_samples_are_said_to_be_beyond_full_scale_not_clipped(tmp_path):
    # 16-bit values stored as floats: before, "the audio is clipped: ... at full scale"
    x = np.float32(32768 * speech_like(seed=4))
    path = write(tmp_path / "unscaled.wav", x, subtype="FLOAT")
    beyond = int(np.count_nonzero(np.abs(x) > 1))
    message = fails(tmp_path, path, re.escape(
        f"the float samples are not in [-1, 1], the full scale of float audio: {beyond} of 16000 "
        f"are beyond it, up to {np.abs(x).max():.6g} in magnitude (16-bit values stored as floats "
        "unscaled? divide them by 32768)"))
    assert "Kaldi reads PCM (integer) WAV only and refuses float WAV" in message
    assert "the audio is clipped" not in message
    assert extract_features(path, FeatureConfig(max_clipped=1.0)).shape[0] > 0  # as before
    # slightly hot floats: no hint at integer values; a few beyond 1 are tolerated as before
    message = fails(tmp_path, write(tmp_path / "hot.wav", 4.0 * speech_like(seed=4),
                                    subtype="FLOAT"), "float samples are not in")
    assert "up to 1.2" in message and "32768" not in message
    few = 0.5 * speech_like(seed=5)
    few[8000:8010] = 1.5
    assert read_audio(write(tmp_path / "few.wav", few, subtype="FLOAT")).max() == 1.5 * 32768


def _speech_folder(tmp_path, garbage: str):
    """``tmp_path/in`` of a0.wav .. a3.wav, speech but for ``garbage``, which is not audio."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        write(src / f"a{i}.wav", speech_like(seed=i))
    (src / garbage).write_bytes(b"RIFF....not really")
    return src


def test_a_bad_file_among_good_ones_writes_nothing(tmp_path):
    src = _speech_folder(tmp_path, "a2.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a0.npy").write_bytes(b"previous")  # an earlier output is neither replaced nor lost
    (tmp_path / "f.ark").write_bytes(b"old ark")
    for target in (out, tmp_path / "f.ark"):
        with pytest.raises(AudioError, match="a2.wav.: not a readable audio file"):
            compute_features([src], target, jobs=3)
    assert untouched(out) == ["a0.npy"] and (out / "a0.npy").read_bytes() == b"previous"
    assert (tmp_path / "f.ark").read_bytes() == b"old ark"
    assert not (tmp_path / "f.scp").exists()
    untouched(tmp_path)


def test_the_first_bad_utterance_in_input_order_is_reported_whatever_the_workers(tmp_path):
    """With several worker processes the error was that of whichever failed first: a garbage
    file after a long silent one was reported instead of it."""
    src = tmp_path / "in"
    src.mkdir()
    # near silence (16-bit samples of about +-2): the VAD finds no voice after its MFCCs, slowly
    write(src / "a0.wav", 0.00005 * np.random.default_rng(0).standard_normal(16000 * 300))
    (src / "a1.wav").write_bytes(b"RIFF....not really")  # fails at once
    with pytest.raises(AudioError, match="a0.wav.: all silence"):
        compute_features([src], tmp_path / "f.ark", jobs=2)


def test_keep_going_leaves_out_the_bad_utterances_and_writes_the_others(tmp_path):
    src = _speech_folder(tmp_path, "a1.wav")
    write(src / "a3.wav", 0.3 * np.sin(np.arange(100)))
    with pytest.warns(UserWarning) as caught:
        shapes = compute_features([src], tmp_path / "f.ark", jobs=2, keep_going=True)
    assert list(shapes) == ["a0", "a2"]
    assert {w.filename for w in caught} == {__file__}  # the user's line (was emkit's)
    messages = [str(w.message) for w in caught]
    assert "a1.wav': not a readable audio file" in messages[0] and messages[0].endswith("; left out")
    assert "a3.wav': too short for one frame" in messages[1]
    assert messages[-1].startswith("2 of 4 utterances could not be used and were left out")
    assert list(read_feature_sources([tmp_path / "f.scp"])) == ["a0", "a2"]
    for name in ("a0.wav", "a2.wav"):
        (src / name).unlink()
    with pytest.raises(AudioError, match="none of the 2 utterances could be used .the first: "
                                         ".*a1.wav': not a readable audio file"), \
            pytest.warns(UserWarning, match="left out"):
        compute_features([src], tmp_path / "g.ark", keep_going=True)
    assert not (tmp_path / "g.ark").exists()


def test_a_data_directory_list_given_as_audio_names_the_directory(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    write(data / "a.wav", speech_like())
    (data / "wav.scp").write_text(f"a {data / 'a.wav'}\n")
    with pytest.raises(AudioError, match="wav.scp': a Kaldi data directory's list, not audio: give "
                                         "the data directory"):
        compute_features([data / "wav.scp"], tmp_path / "f.ark")


def test_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.wav"):
        compute_features([tmp_path / "nothere.wav"], tmp_path / "out")
    with pytest.raises(AudioError, match="no .wav or .flac file"):
        compute_features([tmp_path], tmp_path / "out")


def test_too_short_without_snip_edges_needs_half_a_shift(tmp_path):
    config = FeatureConfig(kaldi=KaldiOptions(snip_edges=False), vad=False)
    assert extract_features(write(tmp_path / "s300.wav", 0.3 * np.sin(np.arange(300) * 0.3)),
                            config).shape[0] == 2
    assert extract_features(write(tmp_path / "s80.wav", 0.3 * np.sin(np.arange(80) * 0.3)),
                            config).shape[0] == 1
    tiny = write(tmp_path / "tiny.wav", 0.3 * np.sin(np.arange(79) * 0.3))
    fails(tmp_path, tiny, r"too short for one frame \(79 samples; without snip_edges, one frame "
          r"needs half a frame shift: 80\)", config)


def test_a_segment_starting_after_the_end_says_so(tmp_path):
    path = write(tmp_path / "one.wav", speech_like())
    for end in (None, -1):
        with pytest.raises(AudioError, match=r"\[5s to end\]: the segment starts after the end "
                                             r"of the recording \(1.000s long\)"):
            read_audio(path, start=5.0, end=end)
    # one that also ends past the recording: said of its start ('ends 6.000s after' before)
    with pytest.raises(AudioError, match=r"\[5s to 7s\]: the segment starts after the end"):
        read_audio(path, start=5.0, end=7.0)


def test_segments_errors_name_the_line_and_utterance_once_and_an_empty_file(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    write(data / "rec1.wav", speech_like())
    (data / "wav.scp").write_text("rec1 " + str(data / "rec1.wav") + "\n")
    (data / "segments").write_text("a rec1 0.0 0.01\n")
    with pytest.raises(AudioError) as info:
        compute_features([data], tmp_path / "f.ark")
    message = str(info.value)
    assert message.count("(utterance 'a')") == 1 and "segments' line 1 (utterance 'a'): " in message
    assert "too short for one frame" in message
    (data / "segments").write_text("\n \n")
    with pytest.raises(AudioError, match="segments': lists no segment"):
        compute_features([data], tmp_path / "f.ark")


@pytest.mark.parametrize("make, kwargs, message", [
    (FeatureConfig, {"vad": "no"}, "vad must be a boolean (true or false); got str 'no'"),
    (FeatureConfig, {"norm_vars": "false"}, "norm_vars must be a boolean"),
    (FeatureConfig, {"channel": True}, "channel must be an integer or none; got bool True"),
    (FeatureConfig, {"kaldi": {"kind": "fbank"}}, "kaldi must be a KaldiOptions; got dict"),
    (KaldiOptions, {"use_energy": "false"}, "use_energy must be a boolean (true or false) or none"),
    (KaldiOptions, {"num_mel_bins": 23.5}, "num_mel_bins must be an integer; got float 23.5"),
    (KaldiOptions, {"dither": "1"}, "dither must be a number; got str '1'"),
])
def test_option_values_of_another_type_are_refused(make, kwargs, message):
    """Strings read by their truth value turned options on (norm_vars="false": variances
    normalised); 23.5 Mel bins became 23."""
    with pytest.raises(TypeError, match=re.escape(message)):
        make(**kwargs)
    assert KaldiOptions(sample_frequency=8000, use_energy=None).sample_frequency == 8000
