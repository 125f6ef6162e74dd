"""Feature extraction says how far it is (INFO, rate-limited, counts and time left) and sums up
what it did, on a clock the test drives; the features are the same."""

import logging

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit import _progress  # noqa: E402
from emkit.audio import _pipeline, compute_features, extract_features  # noqa: E402
from emkit.features import read_features  # noqa: E402
from audio_files import speech_like, write  # noqa: E402


@pytest.fixture
def slow_clock(monkeypatch):
    """Each utterance's features take 20 s on the clock of the progress lines."""
    now = [0.0]
    monkeypatch.setattr(_progress, "monotonic", lambda: now[0])
    real = _pipeline.extract_features

    def twenty_seconds(utterance, config):
        now[0] += 20.0
        return real(utterance, config)

    monkeypatch.setattr(_pipeline, "extract_features", twenty_seconds)
    return now


def _folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in (0, 2, 4):
        write(src / f"a{i}.wav", speech_like(seed=i))
    (src / "a1.wav").write_bytes(b"RIFF....not really")
    write(src / "a3.wav", 0.3 * np.sin(np.arange(100)))  # too short for one frame
    return src


def test_progress_lines_every_30_seconds_and_a_summary(tmp_path, slow_clock, caplog):
    src = _folder(tmp_path)
    with caplog.at_level(logging.INFO, logger="emkit"), pytest.warns(UserWarning, match="left out"):
        shapes = compute_features([src], tmp_path / "f.ark", keep_going=True)
    assert list(shapes) == ["a0", "a2", "a4"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [
        "features: 2 of 5 utterances (40.0%), 1 failed, 20 s/utterance, 40 s elapsed, "
        "about 1m00s left",
        "features: 4 of 5 utterances (80.0%), 2 failed, 20 s/utterance, 1m20s elapsed, "
        "about 20 s left",
        "features: 5 utterances in 1m40s: 3 computed, 2 failed (left out: see the warnings "
        "above), with 1 process",
    ]
    written = read_features(tmp_path / "f.scp")
    for name in ("a0", "a2", "a4"):
        assert np.array_equal(written[name], extract_features(src / f"{name}.wav"))


def test_a_run_without_failures_says_so_in_its_summary(tmp_path, slow_clock, caplog):
    src = tmp_path / "in"
    src.mkdir()
    write(src / "a.wav", speech_like())
    with caplog.at_level(logging.INFO, logger="emkit"):
        compute_features([src], tmp_path / "f.ark")
    assert [r.getMessage() for r in caplog.records] == [
        "features: 1 utterance in 20 s: 1 computed, 0 failed, with 1 process"]
