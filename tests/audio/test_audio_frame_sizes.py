"""Frame length and shift in samples: kaldi-native-fbank computes them in float32
(``samp_freq * 0.001f * ms``); emkit's own framing (dither, the VAD's numpy energies, frame
counts) must use the same numbers, or its frames are not the library's."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not "
                          "installed")

from emkit.audio import KaldiOptions, compute_kaldi_features, log_energy  # noqa: E402
from emkit.audio import _dither, _energy  # noqa: E402
from emkit.audio._dither import frame_count  # noqa: E402
from emkit.audio._kaldi_features import features_and_log_energy  # noqa: E402

RATES = st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000])
#: ms in steps of 0.01 ms: 274 of the lengths from 100 to 1000 ms at 11025, 22050 and 44100 Hz
#: are one sample longer in float32 than in double
LENGTHS = st.integers(2000, 100_000).map(lambda hundredths: hundredths / 100)
SHIFTS = st.integers(500, 100_000).map(lambda hundredths: hundredths / 100)
SETTINGS = settings(max_examples=25, derandomize=True, deadline=None)


def _options(rate, length, shift, **kwargs):
    return KaldiOptions(sample_frequency=rate, frame_length=length, frame_shift=shift,
                        num_mel_bins=5, num_ceps=5, low_freq=0.0, **kwargs)


def _samples(rate, ms):
    return _options(rate, ms, ms).frame_samples


def _library_frames(opts, n_samples):
    return compute_kaldi_features(np.ones(n_samples), opts).shape[0]


def test_a_frame_length_where_float32_and_double_differ():
    # 44100 Hz * 0.001 * 238.39 ms: 10512.999... in double, 10513 in float32
    opts = _options(44100, 238.39, 238.39, kind="fbank")
    assert opts.frame_samples == _samples(44100, 238.39) == 10513
    assert [_library_frames(opts, n) for n in (10512, 10513)] == [0, 1]


@SETTINGS
@given(rate=RATES, length=LENGTHS, shift=SHIFTS)
@example(rate=44100, length=238.39, shift=248.39)
@example(rate=11025, length=268.39, shift=10.0)
def test_frame_samples_and_counts_are_the_librarys(rate, length, shift):
    opts = _options(rate, length, shift, kind="fbank")
    size, step = opts.frame_samples, _samples(rate, shift)
    for n in (size - 1, size, size + step - 1, size + step, size + 3 * step + 1):
        assert _library_frames(opts, n) == frame_count(n, size, step, True), n
    no_snip = _options(rate, length, shift, kind="fbank", snip_edges=False)
    for n in (step // 2 + 1, size + 2 * step):
        assert _library_frames(no_snip, n) == frame_count(n, size, step, False), n


class _NoNoise:
    def standard_normal(self, shape, dtype):
        return np.zeros(shape, dtype)


@SETTINGS
@given(rate=RATES, length=LENGTHS, shift=SHIFTS, snip_edges=st.booleans())
@example(rate=44100, length=238.39, shift=248.39, snip_edges=True)
@example(rate=22050, length=248.39, shift=268.39, snip_edges=False)
def test_emkits_frames_and_numpy_energies_are_the_librarys(rate, length, shift, snip_edges):
    plain = _options(rate, length, shift, kind="mfcc", use_energy=False, snip_edges=snip_edges)
    size, step = plain.frame_samples, _samples(rate, shift)
    x = np.round(np.random.default_rng(rate).standard_normal(size + 2 * step + 7) * 3000)
    assert _energy.matches_library(plain)  # else a second extractor gives the energies
    feats, energy = features_and_log_energy(x, plain)
    assert energy.tobytes() == log_energy(x, plain).tobytes()
    assert len(feats) == len(energy) == frame_count(len(x), size, step, snip_edges) >= 1
    # the dithered path (emkit's frames, laid end to end), with no noise: the same features
    dithered = _options(rate, length, shift, kind="mfcc", use_energy=False,
                        snip_edges=snip_edges, dither=1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_dither, "dither_generator", lambda key, seed=0: _NoNoise())
        got, got_energy = features_and_log_energy(x, dithered)
    assert got.tobytes() == feats.tobytes() and got_energy.tobytes() == energy.tobytes()
