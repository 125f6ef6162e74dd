"""Dither: Kaldi's per-frame noise, drawn from a generator seeded by the utterance's id, so that
the same command gives the same features (kaldi-native-fbank seeds its own noise at random)."""

import hashlib
import tracemalloc

import numpy as np
import pytest

knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not "
                          "installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import (FeatureConfig, KaldiOptions, compute_kaldi_features,  # noqa: E402
                         extract_features, extract_many, log_energy)
from emkit.audio import _dither  # noqa: E402
from emkit.audio._sources import Utterance  # noqa: E402
from audio_files import speech_like, three_utterances, write  # noqa: E402

DITHERED = FeatureConfig(kaldi=KaldiOptions(dither=1.0), cmvn="none", vad=False)


class _NoNoise:
    def standard_normal(self, shape, dtype):
        return np.zeros(shape, dtype)


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("kind", ["mfcc", "fbank"])
@pytest.mark.parametrize("n_samples", [16480, 401, 400, 81])
def test_emkits_frames_are_kaldis_frames(monkeypatch, snip_edges, kind, n_samples):
    # with the noise set to zero, the dithered path (emkit's frames laid end to end) gives
    # kaldi-native-fbank's own framing bit for bit, at the ends too (snip_edges off reflects)
    x = speech_like(1.03)[:n_samples] * 32768
    plain = KaldiOptions(kind=kind, snip_edges=snip_edges, frame_shift=7.3)
    dithered = KaldiOptions(kind=kind, snip_edges=snip_edges, frame_shift=7.3, dither=1.0)
    monkeypatch.setattr(_dither, "dither_generator", lambda key, seed=0: _NoNoise())
    monkeypatch.setattr(_dither, "BLOCK_SAMPLES", 1000)  # blocks of 2 frames: their seams too
    got, energy = compute_kaldi_features(x, dithered), log_energy(x, dithered)
    monkeypatch.undo()
    want = compute_kaldi_features(x, plain)
    assert got.shape == want.shape and (n_samples >= 400 or not snip_edges) == (len(want) > 0)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(energy, log_energy(x, plain))


def test_dither_zero_gives_kaldi_native_fbanks_features_unchanged():
    x = speech_like(0.5, seed=3) * 32768
    o = knf.MfccOptions()
    o.frame_opts.dither = 0.0
    extractor = knf.OnlineMfcc(o)
    extractor.accept_waveform(16000.0, x.astype(np.float32))
    extractor.input_finished()
    want = np.array([extractor.get_frame(i) for i in range(extractor.num_frames_ready)])
    np.testing.assert_array_equal(compute_kaldi_features(x, KaldiOptions()), want)


def test_the_same_utterance_gets_the_same_noise_another_utterance_other_noise(tmp_path):
    # before: kaldi-native-fbank's dither was seeded at random: two runs differed
    path = write(tmp_path / "a.wav", speech_like(seed=1))
    first = extract_features(Utterance("a", path), DITHERED)
    np.testing.assert_array_equal(extract_features(Utterance("a", path), DITHERED), first)
    other = extract_features(Utterance("b", path), DITHERED)  # same audio, another id
    assert other.shape == first.shape and not np.array_equal(other, first)
    plain = extract_features(Utterance("a", path), FeatureConfig(cmvn="none", vad=False))
    # the noise is small next to speech: the dithered features stay near the plain ones
    assert np.median(np.abs(first[:, 0] - plain[:, 0])) < 0.05


def test_files_given_by_path_get_noise_of_their_own(tmp_path):
    # before: a path alone was the utterance "": every file given so drew the same noise
    audio = speech_like(seed=1)
    a, b = write(tmp_path / "a.wav", audio), write(tmp_path / "b.wav", audio)
    first = extract_features(a, DITHERED)
    np.testing.assert_array_equal(extract_features(a, DITHERED), first)
    assert not np.array_equal(extract_features(b, DITHERED), first)


def test_dithered_features_do_not_depend_on_processes_or_order(tmp_path):
    folder = three_utterances(tmp_path / "audio")
    utterances = [Utterance(f"utt{i}", str(folder / f"utt{i}.wav")) for i in range(3)]
    config = FeatureConfig(kaldi=KaldiOptions(dither=1.0))  # VAD and CMVN on the dithered frames
    one = dict((u.id, f) for u, f in extract_many(utterances, config, jobs=1))
    two = dict((u.id, f) for u, f in extract_many(utterances, config, jobs=2))
    backwards = dict((u.id, f) for u, f in extract_many(utterances[::-1], config, jobs=1))
    for name, features in one.items():
        np.testing.assert_array_equal(two[name], features)
        np.testing.assert_array_equal(backwards[name], features)


@pytest.mark.parametrize("dither", [1.0, 0.1])
def test_digital_silence_gets_the_energy_of_its_noise(dither):
    # Kaldi adds the noise before DC removal: a frame's raw energy is that of frame_length - 1
    # independent N(0, dither^2) samples, ~ log(dither^2 * 399) for 25 ms at 16 kHz
    energy = log_energy(np.zeros(16000), KaldiOptions(dither=dither))
    assert energy.shape == (98,) and np.isfinite(energy).all()
    assert abs(np.mean(energy) - np.log(dither**2 * 399)) < 0.05  # (its standard error: 0.007)
    assert 0.03 < np.std(energy) < 0.15  # chi-square with 399 degrees: sd of its log ~0.07


def test_frames_are_cut_a_few_million_samples_at_a_time():
    # before: 4096 frames a block, whatever their length: 4096 frames of 2**17 samples (1 s at
    # 131 kHz, the longest accepted) were 4 GiB of indices and 2 GiB of samples at once
    length = 2**17
    blocks = list(_dither.dithered_frames(np.zeros(40 * length), length, length, True, 1.0, "k"))
    assert sum(len(b) for b in blocks) == 40
    assert max(b.size for b in blocks) <= 2**21 and all(b.dtype == np.float32 for b in blocks)


def _reference_frames(samples, length, shift, snip_edges, dither, key):
    """Kaldi's frames of ``samples`` plus their dither, one frame and one sample at a time: the
    generator seeded by the blake2b hash of the id, its float32 draws taken frame by frame."""
    digest = hashlib.blake2b(b"emkit-dither\0" + key.encode("utf-8", "surrogateescape"),
                             digest_size=16).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    x = np.asarray(samples, dtype=np.float32)
    n = len(x)
    count = ((0 if n < length else 1 + (n - length) // shift) if snip_edges
             else (n + shift // 2) // shift)
    frames = np.zeros((count, length), dtype=np.float32)
    for i in range(count):
        start = i * shift if snip_edges else i * shift + shift // 2 - length // 2
        frame = np.empty(length, dtype=np.float32)
        for j in range(length):
            k = start + j
            while not 0 <= k < n:  # reflected at the ends, as often as needed
                k = -k - 1 if k < 0 else 2 * n - 1 - k
            frame[j] = x[k]
        frames[i] = frame + np.float32(dither) * rng.standard_normal(length, dtype=np.float32)
    return frames


def _knf_features_of_frames(frames, opts, energy_only=False):
    """kaldi-native-fbank's features of ``frames`` laid end to end, one frame each."""
    f = (knf.MfccOptions() if opts.kind == "mfcc" or energy_only else knf.FbankOptions())
    f.frame_opts.samp_freq = opts.sample_frequency
    f.frame_opts.frame_length_ms = f.frame_opts.frame_shift_ms = opts.frame_length
    f.frame_opts.dither, f.frame_opts.snip_edges = 0.0, True
    f.mel_opts.num_bins = opts.num_mel_bins
    f.use_energy = True if energy_only else opts.energy
    if energy_only:
        f.num_ceps = 1
    extractor = (knf.OnlineMfcc if isinstance(f, knf.MfccOptions) else knf.OnlineFbank)(f)
    extractor.accept_waveform(opts.sample_frequency, frames.ravel())
    extractor.input_finished()
    out = np.array([extractor.get_frame(i) for i in range(extractor.num_frames_ready)],
                   dtype=np.float32).reshape(-1, extractor.dim)
    return out[:, 0] if energy_only else out


CASES = [(16480, 400, 160, 1.0, "utt1"), (16480, 400, 116, 0.1, "spk-\u00e9/a b"),
         (7919, 500, 160, 3.7, ""), (401, 400, 160, 1.0, "a"), (400, 400, 160, 1.0, "a"),
         (399, 400, 160, 1.0, "a"), (81, 400, 160, 1.0, "a"), (7, 400, 160, 1.0, "a"),
         (1, 400, 160, 1.0, "a")]


@pytest.mark.parametrize("block_samples", [1000, _dither.BLOCK_SAMPLES])
@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("n_samples, length, shift, dither, key", CASES)
def test_dithered_frames_are_those_of_a_per_sample_reference(monkeypatch, block_samples,
                                                             snip_edges, n_samples, length,
                                                             shift, dither, key):
    # the frames are cut with a view and a few reflected edge frames, the noise drawn block by
    # block: the bytes are those of cutting and dithering one frame, one sample at a time
    x = speech_like(1.03, seed=2)[:n_samples] * 32768
    monkeypatch.setattr(_dither, "BLOCK_SAMPLES", block_samples)  # 2 frames a block: seams
    blocks = list(_dither.dithered_frames(x, length, shift, snip_edges, dither, key))
    got = np.concatenate(blocks) if blocks else np.zeros((0, length), np.float32)
    want = _reference_frames(x, length, shift, snip_edges, dither, key)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("kind", ["mfcc", "fbank"])
@pytest.mark.parametrize("n_samples", [16480, 401, 81])
def test_dithered_features_are_kaldi_native_fbanks_of_the_reference_frames(snip_edges, kind,
                                                                          n_samples):
    x = speech_like(1.03, seed=4)[:n_samples] * 32768
    opts = KaldiOptions(kind=kind, snip_edges=snip_edges, frame_shift=7.3, dither=0.5)
    frames = _reference_frames(x, 400, 116, snip_edges, 0.5, "spk1-utt1")
    got = compute_kaldi_features(x, opts, dither_key="spk1-utt1")
    assert got.tobytes() == _knf_features_of_frames(frames, opts).tobytes()
    energy = log_energy(x, opts, dither_key="spk1-utt1")
    assert energy.tobytes() == _knf_features_of_frames(frames, opts, energy_only=True).tobytes()


@pytest.mark.parametrize("snip_edges", [True, False])
def test_frames_are_dithered_without_an_index_of_every_sample(snip_edges):
    # before: each block of frames was gathered through an int64 index of each of its samples,
    # then the noise was scaled into another array: ~7 blocks (~60 MB) at a time; now the noise
    # block is the frames' block (the frames added from a view of the audio)
    x = np.zeros(3 * _dither.BLOCK_SAMPLES, dtype=np.float32)
    tracemalloc.start()
    try:
        frames = 0
        for block in _dither.dithered_frames(x, 400, 160, snip_edges, 1.0, "k"):
            frames += len(block)
            del block
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames == _dither.frame_count(len(x), 400, 160, snip_edges)
    assert peak <= 2.5 * _dither.BLOCK_SAMPLES * 4  # two blocks: the one used, the next one


def test_the_default_dither_seed_draws_the_noise_of_before(tmp_path):
    # dither_seed 0 (the default) is the hash of the id alone: the reference's noise, as before
    x = speech_like(1.03, seed=4) * 32768
    opts = KaldiOptions(dither=1.0)
    frames = _reference_frames(x, 400, 160, True, 1.0, "utt7")
    want = _knf_features_of_frames(frames, opts).tobytes()
    assert compute_kaldi_features(x, opts, dither_key="utt7", dither_seed=0).tobytes() == want
    path = write(tmp_path / "a.wav", speech_like(seed=1))
    assert (extract_features(Utterance("a", path), DITHERED).tobytes()
            == extract_features(Utterance("a", path), FeatureConfig(
                kaldi=DITHERED.kaldi, cmvn="none", vad=False, dither_seed=0)).tobytes())


def test_another_dither_seed_draws_other_noise_the_same_in_every_run(tmp_path):
    x = speech_like(1.03, seed=4) * 32768
    opts = KaldiOptions(dither=1.0)
    zero = compute_kaldi_features(x, opts, dither_key="utt7")
    seeded = {seed: compute_kaldi_features(x, opts, dither_key="utt7", dither_seed=seed)
              for seed in (1, 2, 2**64 - 1)}
    for seed, features in seeded.items():
        assert features.shape == zero.shape and not np.array_equal(features, zero), seed
        np.testing.assert_array_equal(
            compute_kaldi_features(x, opts, dither_key="utt7", dither_seed=seed), features)
    assert not np.array_equal(seeded[1], seeded[2])
    # the log energy of the VAD draws the same noise as the features
    np.testing.assert_array_equal(log_energy(x, opts, dither_key="utt7", dither_seed=2),
                                  seeded[2][:, 0])
    # without a dither the seed changes nothing
    np.testing.assert_array_equal(compute_kaldi_features(x, KaldiOptions(), dither_seed=5),
                                  compute_kaldi_features(x, KaldiOptions()))


def test_seeded_dithered_features_do_not_depend_on_processes_or_order(tmp_path):
    folder = three_utterances(tmp_path / "audio")
    utterances = [Utterance(f"utt{i}", str(folder / f"utt{i}.wav")) for i in range(3)]
    config = FeatureConfig(kaldi=KaldiOptions(dither=1.0), vad=False, dither_seed=11)
    one = dict((u.id, f) for u, f in extract_many(utterances, config, jobs=1))
    two = dict((u.id, f) for u, f in extract_many(utterances, config, jobs=2))
    backwards = dict((u.id, f) for u, f in extract_many(utterances[::-1], config, jobs=1))
    unseeded = dict((u.id, f) for u, f in extract_many(
        utterances, FeatureConfig(kaldi=KaldiOptions(dither=1.0), vad=False), jobs=1))
    for name, features in one.items():
        np.testing.assert_array_equal(two[name], features)
        np.testing.assert_array_equal(backwards[name], features)
        assert not np.array_equal(unseeded[name], features)


@pytest.mark.parametrize("seed, error, message", [
    (-1, ValueError, "dither_seed must be an integer from 0 to 2**64 - 1; got -1"),
    (2**64, ValueError, "dither_seed must be an integer from 0 to 2**64 - 1; got "
                        "18446744073709551616"),
    (1.5, TypeError, "dither_seed must be an integer; got float 1.5"),
    (True, TypeError, "dither_seed must be an integer; got bool True"),
    ("3", TypeError, "dither_seed must be an integer; got str '3'"),
])
def test_a_bad_dither_seed_is_an_error_naming_it(seed, error, message):
    with pytest.raises(error) as caught:
        FeatureConfig(dither_seed=seed)
    assert str(caught.value) == message
    with pytest.raises(error, match=r"^dither_seed must be an integer from 0 to 2\*\*64 - 1; got "):
        compute_kaldi_features(np.zeros(800), KaldiOptions(dither=1.0), dither_seed=seed)


@pytest.mark.parametrize("dither", [0.0, 1.0])
@pytest.mark.parametrize("shape", [(1600, 2), (2, 1600), (1, 1, 1600), ()])
def test_samples_of_more_than_one_channel_are_refused(dither, shape):
    # before: a (n, 2) array was dithered as n frames of pairs laid end to end (features of
    # nothing), and after the memoryview hand-off the undithered path read its rows one after
    # the other; now both say what was expected
    x = np.ones(shape) * 1000
    opts = KaldiOptions(dither=dither)
    for compute in (compute_kaldi_features, log_energy):
        with pytest.raises(ValueError) as caught:
            compute(x, opts)
        assert str(caught.value) == ("samples must be one channel, of shape (n_samples,); got "
                                     f"shape {shape}")
