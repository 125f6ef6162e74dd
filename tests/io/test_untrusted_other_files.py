"""Calibrations, recipes and audio are untrusted files too: never opened unless regular."""

import os
import signal

import pytest

from emkit.calibration_io import load_calibration
from emkit.io import InvalidFileError


def _refused_without_blocking(load, path):
    """``load(path)`` on a named pipe raises at once (an alarm turns a hang into a failure)."""
    os.mkfifo(path)
    previous = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("blocked on a named pipe"))
    signal.alarm(5)
    try:
        with pytest.raises(InvalidFileError, match="named pipe"):
            load(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_calibration_named_pipe_is_refused_not_opened(tmp_path):
    _refused_without_blocking(load_calibration, str(tmp_path / "cal.json"))


def test_recipe_named_pipe_is_refused_not_opened(tmp_path):
    from emkit.recipe import load_recipe

    _refused_without_blocking(load_recipe, str(tmp_path / "recipe.toml"))


def test_audio_named_pipe_and_directory_are_refused_not_opened(tmp_path):
    pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")
    from emkit.audio import AudioError, read_audio

    _refused_without_blocking(read_audio, str(tmp_path / "x.wav"))
    with pytest.raises(AudioError, match="directory"):
        read_audio(tmp_path)
