"""The embedded data sets: counts and values checked against the sources' descriptions."""

import importlib.util
import pathlib
from importlib import resources

import numpy as np
import pytest

from emkit.datasets import OLD_FAITHFUL_COLUMNS, load_japanese_vowels, load_old_faithful

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The UCI description of Japanese Vowels.
UCI_TEST_COUNTS = [31, 35, 88, 44, 29, 24, 40, 50, 29]


@pytest.fixture(scope="module")
def jv():
    return load_japanese_vowels()


def test_japanese_vowels_counts_per_speaker_and_session(jv):
    assert jv.n_utterances == 640
    assert jv.speaker_ids.shape == jv.sessions.shape == (640,)
    assert set(jv.speaker_ids.tolist()) == set(range(1, 10))
    train = np.bincount(jv.speaker_ids[jv.sessions == 0], minlength=10)[1:]
    test = np.bincount(jv.speaker_ids[jv.sessions == 1], minlength=10)[1:]
    assert train.tolist() == [30] * 9
    assert test.tolist() == UCI_TEST_COUNTS
    # Session 0 first, each session ordered by speaker as in the UCI files.
    assert np.all(np.diff(jv.sessions) >= 0)
    for s in (0, 1):
        assert np.all(np.diff(jv.speaker_ids[jv.sessions == s]) >= 0)


def test_japanese_vowels_utterances_have_true_lengths(jv):
    lengths = np.array([u.shape[0] for u in jv.utterances])
    assert all(u.shape[1] == 12 and u.dtype == np.float64 for u in jv.utterances)
    assert lengths.sum() == 9961 == jv.frames.shape[0]
    assert (lengths.min(), lengths.max()) == (7, 29)
    assert (lengths[jv.sessions == 0].min(), lengths[jv.sessions == 0].max()) == (7, 26)
    assert (lengths[jv.sessions == 1].min(), lengths[jv.sessions == 1].max()) == (7, 29)
    np.testing.assert_array_equal(np.diff(jv.offsets), lengths)
    assert np.isfinite(jv.frames).all()
    # No padding: no utterance ends (or starts) with an all-zero frame.
    assert all(np.any(u[-1] != 0) and np.any(u[0] != 0) for u in jv.utterances)
    for i in (0, 123, 639):
        np.testing.assert_array_equal(jv.utterances[i],
                                      jv.frames[jv.offsets[i]:jv.offsets[i + 1]])


def test_japanese_vowels_values_are_the_published_decimals(jv):
    # First frame of the first training utterance and last frame of the last test utterance.
    np.testing.assert_array_equal(jv.utterances[0][0], [
        1.860936, -0.207383, 0.261557, -0.214562, -0.171253, -0.118167,
        -0.277557, 0.025668, 0.126701, -0.306756, -0.213076, 0.088728])
    np.testing.assert_array_equal(jv.utterances[-1][-1], [
        1.177449, -0.40408, 0.052026, -0.284812, 0.42984, -0.203484,
        -0.072393, -0.080955, -0.244424, -0.001849, -0.016634, 0.224688])
    assert jv.utterances[0].shape[0] == 20 and jv.utterances[-1].shape[0] == 11
    # Every value is the double nearest to a six-decimal number (the source writes some of
    # them like -8.3E-4).
    micro = np.round(jv.frames * 1e6)
    np.testing.assert_array_equal(micro / 1e6, jv.frames)
    assert np.count_nonzero(jv.frames == -8.3e-4) == 1


def test_japanese_vowels_ids_and_indices(jv):
    assert len(set(jv.utterance_ids)) == 640
    assert jv.utterance_ids[0] == "spk1_s0_001" and jv.utterance_ids[-1] == "spk9_s1_029"
    idx = jv.indices(session="test", speaker=3)
    assert idx.size == 88 and np.all(jv.speaker_ids[idx] == 3) and np.all(jv.sessions[idx] == 1)
    np.testing.assert_array_equal(jv.indices(session=0), np.arange(270))
    assert jv.indices().size == 640
    assert jv.indices(speaker=9).size == 30 + 29
    with pytest.raises(ValueError, match="session"):
        jv.indices(session="dev")
    with pytest.raises(ValueError, match="session"):
        jv.indices(session=2)
    with pytest.raises(ValueError, match="speaker"):
        jv.indices(speaker=10)


def test_loaders_return_fresh_arrays():
    a = load_japanese_vowels()
    a.utterances[0][:] = 0.0
    assert load_japanese_vowels().utterances[0][0, 0] == 1.860936
    x = load_old_faithful()
    x[:] = 0.0
    assert load_old_faithful()[0, 0] == 3.6


def test_old_faithful_is_r_faithful():
    x = load_old_faithful()
    assert x.shape == (272, 2) and x.dtype == np.float64 and x.flags.writeable
    assert OLD_FAITHFUL_COLUMNS == ("eruptions", "waiting")
    np.testing.assert_array_equal(x[:3], [[3.6, 79], [1.8, 54], [3.333, 74]])
    np.testing.assert_array_equal(x[-1], [4.467, 74])
    # summary(faithful) in R: means 3.487783 and 70.89706.
    np.testing.assert_allclose(x.mean(axis=0), [3.487783, 70.897059], atol=5e-7)
    assert (x[:, 0].min(), x[:, 0].max(), x[:, 1].min(), x[:, 1].max()) == (1.6, 5.1, 43, 96)


def test_attribution_file_ships_with_the_data():
    data = resources.files("emkit.datasets").joinpath("data")
    names = {p.name for p in data.iterdir()}
    assert {"README.md", "japanese_vowels.npz", "old_faithful.npz"} <= names
    text = data.joinpath("README.md").read_text(encoding="utf-8")
    for needle in ("10.24432/C5NS47", "CC BY 4.0", "Kudo", "Azzalini", "Härdle"):
        assert needle in text


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extraction_script_parses_ts_exactly():
    script = _load_script("extract_japanese_vowels")
    assert script.to_micro("1.860936") == 1860936
    assert script.to_micro("-8.3E-4") == -830
    assert script.to_micro("-0.5") == -500000
    for bad in ("?", "NaN", "0.0000001"):
        with pytest.raises(SystemExit):
            script.to_micro(bad)
    header = "@problemName x\n@dimensions 12\n@data\n"
    case = ":".join(f"{d}.5,-{d}E-3" for d in range(12)) + ":7\n"
    utts, labels = script.parse_ts(header + case)
    assert labels == [7] and utts[0].shape == (2, 12)
    assert utts[0][0, 3] == 3_500_000 and utts[0][1, 3] == -3000
