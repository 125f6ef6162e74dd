"""Deltas, energy VAD and CMVN of emkit.audio (numpy only: these run without the audio extra).

Each is checked against hand-computed cases and against a naive loop over frames written
from Kaldi's documented semantics (add-deltas, compute-vad, apply-cmvn, apply-cmvn-sliding).
"""

import numpy as np
import pytest

from emkit.audio import add_deltas, cmvn, compute_vad, sliding_cmvn
from emkit.audio._cmvn import sliding_windows


def close(a, b, tol=1e-12):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


# ------------------------------------------------------------------------------------ deltas


def naive_filter(x, taps):
    """out[t] = sum_k taps[k] * x[clamp(t + k - half)]: Kaldi's DeltaFeatures::Process."""
    half = (len(taps) - 1) // 2
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for k, scale in enumerate(taps):
            out[t] += scale * x[min(max(t + k - half, 0), x.shape[0] - 1)]
    return out


def naive_delta(x, window):
    """The textbook regression delta with repeated edge frames."""
    out = np.zeros_like(x)
    norm = 2 * sum(n * n for n in range(1, window + 1))
    last = x.shape[0] - 1
    for t in range(x.shape[0]):
        for n in range(1, window + 1):
            out[t] += n * (x[min(t + n, last)] - x[max(t - n, 0)]) / norm
    return out


def test_deltas_against_naive():
    x = np.random.default_rng(0).standard_normal((17, 4))
    out = add_deltas(x)
    assert out.shape == (17, 12)
    close(out[:, :4], x)
    close(out[:, 4:8], naive_delta(x, 2))
    # the order-2 filter, by hand: [-2 -1 0 1 2]/10 convolved with itself
    close(out[:, 8:], naive_filter(x, np.array([4, 4, 1, -4, -10, -4, 1, 4, 4]) / 100.0))
    # away from the edges the delta-delta is the delta of the delta
    close(out[4:-4, 8:], naive_delta(naive_delta(x, 2), 2)[4:-4])


def test_deltas_other_window_and_order():
    x = np.random.default_rng(1).standard_normal((9, 3))
    close(add_deltas(x, order=1, window=3), np.hstack([x, naive_delta(x, 3)]))
    close(add_deltas(x, order=0), x)
    one = add_deltas(x[:1])  # a single frame: deltas are 0
    close(one, np.hstack([x[:1], np.zeros((1, 6))]))


def test_deltas_match_kaldi_native_fbank():
    knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra is not installed")
    x = np.random.default_rng(2).standard_normal((30, 5)).astype(np.float32)
    theirs = knf.compute_deltas(knf.DeltaOptions(order=2, window=2), x)
    close(add_deltas(x), theirs, tol=1e-6)


@pytest.mark.parametrize("bad,error", [(dict(order=-1), ValueError), (dict(window=0), ValueError),
                                       (dict(order=1.5), TypeError), (dict(window="2"), TypeError)])
def test_deltas_bad_options(bad, error):
    (name,) = bad
    with pytest.raises(error, match=name):
        add_deltas(np.zeros((3, 2)), **bad)


@pytest.mark.parametrize("bad,error", [(dict(channel="x"), TypeError), (dict(channel=-2), ValueError),
                                       (dict(cmn_window=2.5), TypeError),
                                       (dict(min_cmn_window=0), ValueError)])
def test_feature_config_integer_options_are_named(bad, error):
    from emkit.audio import FeatureConfig

    (name,) = bad
    with pytest.raises(error, match=name):
        FeatureConfig(**bad)


def test_deltas_do_not_mutate():
    x = np.arange(12.0).reshape(6, 2)
    copy = x.copy()
    add_deltas(x)
    assert np.array_equal(x, copy)


# --------------------------------------------------------------------------------------- VAD


def naive_vad(e, threshold=5.0, mean_scale=0.5, context=0, proportion=0.6):
    thr = threshold + mean_scale * sum(e) / len(e)
    out = []
    for t in range(len(e)):
        num = den = 0
        for t2 in range(t - context, t + context + 1):
            if 0 <= t2 < len(e):
                den += 1
                num += e[t2] > thr
        out.append(num >= den * proportion)
    return np.array(out)


def test_vad_hand_computed():
    e = np.array([10.0, 0, 10, 10, 0, 0])  # mean 5: threshold 5 + 0.5 * 5 = 7.5
    assert compute_vad(e).tolist() == [True, False, True, True, False, False]
    assert compute_vad(e, frames_context=1).tolist() == [False, True, True, True, False, False]
    # "at least" the proportion: 1 high frame of 2 at the start is enough for 0.5
    assert compute_vad(e, frames_context=1, proportion_threshold=0.5).tolist() == \
        [True, True, True, True, False, False]
    assert compute_vad(e, energy_mean_scale=0.0, energy_threshold=9.9).tolist() == \
        [True, False, True, True, False, False]
    assert not compute_vad(e, energy_threshold=10.0, energy_mean_scale=0.0).any()


@pytest.mark.parametrize("context,proportion", [(0, 0.6), (1, 0.6), (3, 0.3), (5, 0.9)])
def test_vad_against_naive(context, proportion):
    e = np.random.default_rng(context).uniform(0, 20, 200)
    assert np.array_equal(compute_vad(e, frames_context=context, proportion_threshold=proportion),
                          naive_vad(e, context=context, proportion=proportion))


@pytest.mark.parametrize("bad", [dict(proportion_threshold=1.0), dict(proportion_threshold=0.0),
                                 dict(frames_context=-1), dict(energy_mean_scale=-0.5)])
def test_vad_bad_options(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        compute_vad(np.ones(4), **bad)


def test_vad_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        compute_vad(np.array([1.0, np.nan]))


# -------------------------------------------------------------------------------------- CMVN


def naive_sliding(x, cmn_window=600, min_window=100, center=False, norm_vars=False):
    """Kaldi's apply-cmvn-sliding, frame by frame (the window rules of its documentation)."""
    n = x.shape[0]
    out = np.empty_like(x)
    for t in range(n):
        if center:
            start = t - cmn_window // 2
            end = start + cmn_window
        else:
            start, end = t - cmn_window, t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > n:
            start = max(start - (end - n), 0)
            end = n
        w = x[start:end]
        out[t] = x[t] - w.mean(axis=0)
        if norm_vars:
            if len(w) == 1:
                out[t] = 0.0
            else:
                out[t] /= np.sqrt(np.maximum(w.var(axis=0), 1e-10))
    return out


X = np.array([[1.0], [2], [4], [8], [16]])


def test_sliding_cmvn_hand_computed():
    # centred, window 3 (a window starting before frame 0 is shifted right):
    # [0,3) [0,3) [1,4) [2,5) [2,5)
    close(sliding_cmvn(X, cmn_window=3, center=True),
          [[-4 / 3], [-1 / 3], [-2 / 3], [-4 / 3], [20 / 3]])
    # not centred, window 2 (frames t-2..t), at least min_window=3 frames at the start:
    # [0,3) [0,3) [0,3) [1,4) [2,5)
    close(sliding_cmvn(X, cmn_window=2, min_window=3),
          [[-4 / 3], [-1 / 3], [5 / 3], [10 / 3], [20 / 3]])
    start, end = sliding_windows(5, cmn_window=2, min_window=3)
    assert start.tolist() == [0, 0, 0, 1, 2] and end.tolist() == [3, 3, 3, 4, 5]
    # norm_vars, centred window 2 ([t-1, t+1)): frame 2 uses frames 1, 2: (4 - 3) / 1
    out = sliding_cmvn(X, cmn_window=2, center=True, norm_vars=True)
    close(out[2], [1.0])


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("norm_vars", [False, True])
@pytest.mark.parametrize("n,window,min_window", [(50, 600, 100), (700, 300, 100), (40, 7, 3),
                                                 (1, 10, 5), (25, 1, 1)])
def test_sliding_cmvn_against_naive(center, norm_vars, n, window, min_window):
    x = np.random.default_rng(n + window).standard_normal((n, 3)) * 5 + 100
    close(sliding_cmvn(x, window, min_window, center, norm_vars),
          naive_sliding(x, window, min_window, center, norm_vars), tol=1e-9)


def test_sliding_cmvn_default_window_is_kaldis():
    x = np.random.default_rng(5).standard_normal((900, 2))
    close(sliding_cmvn(x), naive_sliding(x, 600, 100), tol=1e-10)
    close(sliding_cmvn(x, center=True, norm_vars=True), naive_sliding(x, 600, 100, True, True),
          tol=1e-10)


def test_utterance_cmvn_hand_computed():
    close(cmvn(X), X - 6.2)
    var = np.mean(X**2) - 6.2**2
    close(cmvn(X, norm_vars=True), (X - 6.2) / np.sqrt(var))
    constant = np.ones((4, 2))
    close(cmvn(constant, norm_vars=True), np.zeros((4, 2)))  # variance floored, no NaN


def test_utterance_cmvn_matches_kaldi_native_fbank():
    knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra is not installed")
    x = np.random.default_rng(3).standard_normal((40, 4)).astype(np.float32) * 3 + 7
    stats = knf.compute_cmvn_stats(x)
    for norm_vars in (False, True):
        theirs = knf.apply_cmvn(stats, knf.CmvnOptions(norm_vars=norm_vars), x)
        close(cmvn(x, norm_vars=norm_vars), theirs, tol=1e-5)


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(4), np.array([[1.0, np.nan]])])
def test_cmvn_bad_features(bad):
    for f in (cmvn, sliding_cmvn):
        with pytest.raises(ValueError, match="features"):
            f(bad)


def test_sliding_cmvn_bad_window():
    with pytest.raises(ValueError, match="cmn_window"):
        sliding_cmvn(X, cmn_window=0)


# ------------------------------------------------------------------------- without the extra


def test_package_imports_without_the_audio_extra(monkeypatch, tmp_path):
    import sys

    from emkit.audio import compute_kaldi_features, read_audio

    monkeypatch.setitem(sys.modules, "kaldi_native_fbank", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(ImportError, match=r"pip install 'emkit\[audio\]'"):
        compute_kaldi_features(np.zeros(1000))
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF")
    with pytest.raises(ImportError, match="soundfile"):
        read_audio(path)


def _documented(obj) -> set:
    import inspect

    section = inspect.getdoc(obj).split("Parameters\n----------\n", 1)[1]
    return {name.strip() for line in section.splitlines() if line[:1].strip()
            for name in line.split(" : ")[0].split(",")}


def test_public_audio_docstrings_document_their_parameters_themselves():
    import dataclasses
    import inspect

    import emkit.audio as audio

    for cls in (audio.FeatureConfig, audio.KaldiOptions):
        assert {f.name for f in dataclasses.fields(cls)} <= _documented(cls), cls
    assert set(inspect.signature(compute_vad).parameters) <= _documented(compute_vad)
    for cls in (audio.FeatureConfig, audio.KaldiOptions):
        assert "(Kaldi's default is 1)" in inspect.getdoc(cls), cls
    for name in audio.__all__:  # help(emkit.audio) does not show the private modules' docstrings
        assert "module docstring" not in (inspect.getdoc(getattr(audio, name)) or ""), name
