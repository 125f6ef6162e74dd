"""A huge integer given for an option (a typo, a recipe written by a script) is named in the
message by its first digits and its number of digits, after the option and the range expected:
messages were cut at 300 characters, mostly digits, or were not emkit's at all (an overflow,
kaldi-native-fbank's TypeError, std::bad_alloc)."""

import re

import numpy as np
import pytest

from emkit._describe import describe

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not "
                    "installed")

from emkit.audio import FeatureConfig, KaldiOptions, compute_vad, read_audio  # noqa: E402
from emkit.audio._cmvn import sliding_windows  # noqa: E402
from emkit.audio._kaldi_features import check_options  # noqa: E402
from audio_files import speech_like, write  # noqa: E402

HUGE = 10**400 - 1  # 400 nines
SHOWN = "99999999999999999999... (an integer of 400 digits)"


def _message(make):
    with pytest.raises(ValueError) as caught:
        make()
    message = str(caught.value)
    assert len(message) < 250 and not re.search(r"\d{21}", message), message
    return message


def test_describe_names_a_long_integer_by_its_first_digits_and_length():
    assert describe(HUGE) == SHOWN
    assert describe(-HUGE) == "-9999999999999999999... (an integer of 400 digits)"
    assert describe(np.uint64(2**64 - 1)) == "np.uint64(18446744073709551615)"  # (short: as is)
    assert describe(2**64) == "18446744073709551616"


@pytest.mark.parametrize("options, want", [
    (dict(num_ceps=HUGE), f"num_ceps must be between 1 and num_mel_bins (23); got {SHOWN}"),
    (dict(num_mel_bins=HUGE), "num_mel_bins must be between 3 and 131072 (the FFT size of the "
                              f"longest frame accepted); got {SHOWN}"),
    (dict(frame_length=HUGE), f"frame_length must be a finite number; got {SHOWN}"),
    (dict(energy_floor=HUGE), f"energy_floor must be a finite number; got {SHOWN}"),
    (dict(sample_frequency=10**300), "a frame of frame_length 25 ms at sample_frequency 1e+300 "
                                     "Hz is 25000000000000001312... (an integer of 299 digits) "
                                     "samples; at most 131072 are accepted (is the sample "
                                     "frequency in Hz?)"),
])
def test_kaldi_options_name_a_huge_integer_shortly(options, want):
    # before: "num_ceps must be ...; got 9999...", 455 characters; "int too large to convert to
    # float" (no option named); num_mel_bins passed to kaldi-native-fbank: a TypeError quoting
    # its binding, or std::bad_alloc (2**31 - 1 bins)
    assert _message(lambda: KaldiOptions(**options)) == want


def test_num_mel_bins_past_any_fft_size_is_refused_before_the_library_allocates_them():
    for bins in (2**31 - 1, 2**31, 2**17 + 1):
        assert _message(lambda: KaldiOptions(num_mel_bins=bins)).startswith(
            "num_mel_bins must be between 3 and 131072 (the FFT size of the longest frame")
    # fewer: kaldi-native-fbank's own check, against the FFT size of these options
    assert "num_mel_bins too large. (num_mel_bins 131072, " in _message(
        lambda: check_options(KaldiOptions(num_mel_bins=2**17)))


@pytest.mark.parametrize("options, want", [
    (dict(delta_order=HUGE), "delta_order must be at most 500 with delta_window 2 (the deltas "
                             "may reach 1000 frames on each side, delta_order * delta_window); "
                             f"got {SHOWN}"),
    (dict(delta_window=HUGE), f"delta_window must be at most 1000 (frames on each side); got "
                              f"{SHOWN}"),
    (dict(max_clipped=HUGE), f"max_clipped must be a finite number; got {SHOWN}"),
    (dict(max_clipped=10**300), "max_clipped must be in [0, 1]; got 10000000000000000000... (an "
                                "integer of 301 digits)"),
    (dict(vad_energy_threshold=HUGE), f"vad_energy_threshold must be a finite number; got "
                                      f"{SHOWN}"),
    (dict(dither_seed=HUGE), f"dither_seed must be an integer from 0 to 2**64 - 1; got {SHOWN}"),
])
def test_feature_config_names_a_huge_integer_shortly(options, want):
    assert _message(lambda: FeatureConfig(**options)) == want


INT32_MAX = 2**31 - 1


def test_the_largest_windows_are_windows_over_the_whole_utterance():
    # before: "Python int too large to convert to C long" (numpy), from FeatureConfig itself
    energy = np.r_[np.zeros(20), np.full(30, 9.0), np.zeros(25)]
    for proportion in (0.2, 0.6):
        whole = compute_vad(energy, frames_context=len(energy), proportion_threshold=proportion)
        assert np.array_equal(compute_vad(energy, frames_context=INT32_MAX,
                                          proportion_threshold=proportion), whole)
    assert FeatureConfig(vad_frames_context=INT32_MAX, cmn_window=INT32_MAX,
                         min_cmn_window=INT32_MAX).vad_frames_context == INT32_MAX
    for n in (1, 7, 50):
        for center in (False, True):
            for window, least in ((INT32_MAX, INT32_MAX), (INT32_MAX, 3), (2 * n + 2, n + 1),
                                  (4 * n, 3)):
                got = sliding_windows(n, window, least, center)
                want = sliding_windows(n, 10 * n + 20, min(least, 10 * n + 20), center)
                assert all(np.array_equal(a, b) for a, b in zip(got, want)), (n, window, least)


@pytest.mark.parametrize("value", [HUGE, INT32_MAX + 1], ids=["10**400-1", "2**31"])
@pytest.mark.parametrize("name, least", [("vad_frames_context", 0), ("cmn_window", 1),
                                         ("min_cmn_window", 1)])
def test_vad_and_cmvn_windows_past_kaldis_int32_are_refused_naming_the_bounds(name, least,
                                                                               value):
    # before: accepted (10**400 frames of context: the whole utterance, without a word)
    message = _message(lambda: FeatureConfig(**{name: value}))
    assert message == (f"{name} must be an integer from {least} to 2147483647 (Kaldi's int32 "
                       f"options); got {describe(value)}")
    function_name = name.removeprefix("vad_").replace("min_cmn", "min")
    call = (lambda: compute_vad(np.zeros(3), frames_context=value)) if name.startswith("vad") \
        else (lambda: sliding_windows(3, **{function_name: value}))
    assert _message(call).startswith(f"{function_name} must be an integer from {least} to "
                                     "2147483647 (Kaldi's int32 options); got ")


def test_a_huge_negative_max_utterance_bytes_is_named_shortly():
    assert _message(lambda: FeatureConfig(max_utterance_bytes=-HUGE)) == (
        "max_utterance_bytes must be an integer >= 8 (bytes); got -9999999999999999999... (an "
        "integer of 400 digits)")


def test_a_huge_channel_is_named_shortly(tmp_path):
    path = write(tmp_path / "a.wav", speech_like(0.1))
    message = _message(lambda: read_audio(path, channel=HUGE))
    assert message == ("channel must be None or a channel number from 0 to 1023 (libsndfile "
                       f"opens no file of more than 1024 channels); got {SHOWN}"), message
    message = _message(lambda: FeatureConfig(channel=HUGE))
    assert message.endswith(f"from 0 to 1023 (libsndfile opens no file of more than 1024 "
                            f"channels); got {SHOWN}"), message
