"""The VAD's log energies come from the features' own run of kaldi-native-fbank where it can
(fbank, MFCC with energy), else from numpy, or a second extractor, fed the same frames (MFCC
without energy): the same bytes as the second run (:func:`log_energy`) gave, with one draw of
the dither noise."""

import numpy as np
import pytest

knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not "
                          "installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import (FeatureConfig, KaldiOptions, compute_kaldi_features,  # noqa: E402
                         compute_vad, extract_features, log_energy, read_audio)
from emkit.audio import _dither, _energy  # noqa: E402
from emkit.audio._kaldi_features import features_and_log_energy  # noqa: E402
from audio_files import speech_like, write  # noqa: E402

KINDS = [("fbank", None), ("fbank", True), ("mfcc", None), ("mfcc", False)]


def _same_bytes(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def _signal(n_samples, seed=0):
    x = np.round(speech_like(max(n_samples, 1600) / 16000, seed=seed)[:n_samples] * 20000)
    x[len(x) // 3:len(x) // 2] = 0.0  # digital silence: energies at the epsilon floor undithered
    return x + 300.0  # a DC offset, which the energy is taken without


@pytest.mark.parametrize("kind,use_energy", KINDS)
@pytest.mark.parametrize("raw_energy", [True, False])
@pytest.mark.parametrize("dither", [0.0, 1.0])
@pytest.mark.parametrize("snip_edges", [True, False])
def test_features_and_log_energy_are_the_bytes_of_the_two_runs(monkeypatch, kind, use_energy,
                                                                raw_energy, dither, snip_edges):
    monkeypatch.setattr(_dither, "BLOCK_SAMPLES", 2000)  # 5 frames a block: fed to both in turn
    for n_samples, floor in ((16001, 0.0), (401, 0.0), (81, 0.0), (4567, 0.5), (4567, 3e5)):
        opts = KaldiOptions(kind=kind, use_energy=use_energy, raw_energy=raw_energy,
                            dither=dither, snip_edges=snip_edges, energy_floor=floor,
                            frame_shift=7.3)
        x = _signal(n_samples, seed=n_samples)
        feats, energy = features_and_log_energy(x, opts, dither_key="utt", dither_seed=5)
        _same_bytes(feats, compute_kaldi_features(x, opts, dither_key="utt", dither_seed=5))
        _same_bytes(energy, log_energy(x, opts, dither_key="utt", dither_seed=5))
        assert feats.flags.c_contiguous and energy.flags.c_contiguous
        assert feats.shape == (energy.shape[0], (opts.num_mel_bins + opts.energy
                                                 if kind == "fbank" else opts.num_ceps))


@pytest.mark.parametrize("kind,use_energy", KINDS)
@pytest.mark.parametrize("dither", [0.0, 1.0])
@pytest.mark.parametrize("raw_energy", [True, False])
def test_pipeline_keeps_the_frames_the_two_run_vad_kept(tmp_path, kind, use_energy, dither,
                                                        raw_energy):
    path = write(tmp_path / "a.wav", _signal(24011, seed=2) / 32768)
    opts = KaldiOptions(kind=kind, use_energy=use_energy, dither=dither, raw_energy=raw_energy)
    samples = read_audio(path)
    voiced = compute_vad(log_energy(samples, opts, dither_key=path, dither_seed=9))
    assert 0 < voiced.sum() < len(voiced)  # the VAD decides something here
    want = compute_kaldi_features(samples, opts, dither_key=path, dither_seed=9)[voiced]
    got = extract_features(path, FeatureConfig(kaldi=opts, delta_order=0, cmvn="none",
                                               dither_seed=9))
    _same_bytes(got, want)


@pytest.mark.parametrize("kind,use_energy", KINDS)
def test_vad_draws_the_noise_once_and_runs_one_extractor(tmp_path, monkeypatch, kind,
                                                         use_energy):
    # before: fbank (with or without energy) and MFCC without energy ran the library twice,
    # each run drawing all the noise; then MFCC without energy ran a second extractor fed the
    # same frames, whose energies numpy now computes (test_audio_energy_numpy.py)
    path = write(tmp_path / "a.wav", speech_like(seed=3))
    opts = KaldiOptions(kind=kind, use_energy=use_energy, dither=1.0)
    assert _energy.libm_logf() is None or _energy.matches_library(opts)  # (its own run, once)
    runs = 1 if _energy.libm_logf() is not None else 1 + (kind == "mfcc" and not opts.energy)
    made, draws = [], []
    for name in ("OnlineFbank", "OnlineMfcc"):
        real = getattr(knf, name)
        monkeypatch.setattr(knf, name, lambda o, real=real: made.append(real) or real(o))
    real_generator = _dither.dither_generator
    monkeypatch.setattr(_dither, "dither_generator",
                        lambda *a, **k: draws.append(a) or real_generator(*a, **k))
    got = extract_features(path, FeatureConfig(kaldi=opts))
    assert len(made) == runs and len(draws) == 1
    assert got.shape[1] == 3 * (opts.num_mel_bins + opts.energy if kind == "fbank"
                                else opts.num_ceps)
    made.clear()
    extract_features(path, FeatureConfig(kaldi=opts, vad=False))
    assert len(made) == 1
