"""The VAD's log energies of an MFCC without energy are computed by numpy from the frames the
MFCC is fed (no second run of kaldi-native-fbank): the bytes of the library's own log energy
(:func:`log_energy`), over sample rates, frame options, energy options and dither."""

import functools
import math

import numpy as np
import pytest

knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not "
                          "installed")

from emkit.audio import KaldiOptions, log_energy  # noqa: E402
from emkit.audio import _dither, _energy  # noqa: E402
from emkit.audio._kaldi_features import features_and_log_energy  # noqa: E402
from audio_files import speech_like  # noqa: E402

pytestmark = pytest.mark.skipif(_energy.libm_logf() is None,
                                reason="no C library logf through ctypes here")


def _audio(kind, n_samples, rng):
    if kind == "noise":
        return np.round(rng.standard_normal(n_samples) * rng.uniform(1, 3000))
    if kind == "speech":
        x = np.round(speech_like(n_samples / 16000 + 0.1, seed=3)[:n_samples] * 20000)
        return x + 300.0  # a DC offset
    x = rng.integers(-32768, 32768, n_samples).astype(float)
    x[n_samples // 4:n_samples // 2] = 0.0  # digital silence: energies at the epsilon floor
    return x


CASES = [  # rate, frame_length, frame_shift (ms), window, preemphasis, remove_dc, energy_floor
    (8000, 25.0, 10.0, "povey", 0.97, True, 0.0),
    (16000, 20.0, 7.3, "hamming", 0.0, False, 0.5),
    (22050, 31.7, 12.1, "blackman", 0.5, True, 3e5),
    (44100, 25.0, 10.0, "hanning", 0.97, False, 0.0),
    (16000, 25.0, 10.0, "rectangular", 1.0, True, 1.0),
    (11025, 25.0, 25.0, "blackman", 0.97, False, 0.0),
]


@pytest.mark.parametrize("rate,length,shift,window,preemphasis,remove_dc,floor", CASES)
@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("raw_energy", [True, False])
@pytest.mark.parametrize("dither", [0.0, 1.0])
def test_numpy_log_energy_is_the_librarys_bytes(monkeypatch, rate, length, shift, window,
                                                preemphasis, remove_dc, floor, snip_edges,
                                                raw_energy, dither):
    monkeypatch.setattr(_dither, "BLOCK_SAMPLES", 20000)  # several blocks an utterance
    rng = np.random.default_rng(rate + int(length * 10))
    opts = KaldiOptions(kind="mfcc", use_energy=False, sample_frequency=rate,
                        frame_length=length, frame_shift=shift, window_type=window,
                        preemphasis_coefficient=preemphasis, remove_dc_offset=remove_dc,
                        energy_floor=floor, snip_edges=snip_edges, raw_energy=raw_energy,
                        dither=dither)
    assert _energy.matches_library(opts)
    frames = 0
    for kind in ("noise", "speech", "full scale"):
        x = _audio(kind, int(rate * 0.35), rng)
        feats, energy = features_and_log_energy(x, opts, dither_key=kind, dither_seed=4)
        want = log_energy(x, opts, dither_key=kind, dither_seed=4)
        assert energy.dtype == np.float32 and energy.shape == want.shape == (len(feats),)
        assert energy.tobytes() == want.tobytes()
        frames += len(want)
    assert frames >= 40


def test_numpy_log_energy_of_no_frame_and_of_a_frame_that_is_all_dc():
    opts = KaldiOptions(kind="mfcc", use_energy=False)
    feats, energy = features_and_log_energy(np.ones(399), opts)
    assert feats.shape == (0, 13) and energy.shape == (0,) and energy.dtype == np.float32
    _, energy = features_and_log_energy(np.full(400, 7.0), opts)  # zero after DC removal
    assert energy.tolist() == [pytest.approx(math.log(np.finfo(np.float32).eps))]


def _count_extractors(monkeypatch):
    made = []
    real = knf.OnlineMfcc
    monkeypatch.setattr(knf, "OnlineMfcc", lambda o: made.append(o) or real(o))
    return made


@pytest.mark.parametrize("dither", [0.0, 1.0])
def test_mfcc_without_energy_runs_one_extractor(monkeypatch, dither):
    # before: a second, one-coefficient MFCC extractor ran on every utterance for the energies
    opts = KaldiOptions(kind="mfcc", use_energy=False, dither=dither)
    x = _audio("speech", 8000, np.random.default_rng(0))
    assert _energy.matches_library(opts)  # (checked once, by a run of its own)
    made = _count_extractors(monkeypatch)
    features_and_log_energy(x, opts, dither_key="u")
    assert len(made) == 1


def _numpy_float32_log(value):
    return np.log(np.float32(value))


@pytest.mark.parametrize("logf", [None, _numpy_float32_log], ids=["no logf", "numpy's log"])
def test_a_numpy_energy_that_is_not_the_librarys_bytes_is_not_used(monkeypatch, logf):
    # numpy's float32 log differs from the C library's logf in the last bit for a few % of
    # frames: the check sees it, and the energies come from the library's second extractor
    monkeypatch.setattr(_energy, "libm_logf", lambda: logf)
    monkeypatch.setattr(_energy, "_matches", functools.lru_cache(_energy._matches.__wrapped__))
    opts = KaldiOptions(kind="mfcc", use_energy=False, frame_length=21.0)
    assert not _energy.matches_library(opts)
    x = _audio("noise", 16000, np.random.default_rng(1))
    made = _count_extractors(monkeypatch)
    _, energy = features_and_log_energy(x, opts)
    assert len(made) == 2
    assert energy.tobytes() == log_energy(x, opts).tobytes()
