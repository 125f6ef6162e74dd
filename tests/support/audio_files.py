"""Synthetic speech-like audio and WAV writing for the audio tests."""

import numpy as np

RATE = 16000


def speech_like(seconds=1.0, seed=0, f0=150.0, rate=RATE):
    """A chirp with silence around it and a little noise: VAD keeps the middle."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (f0 * t + 400 * t**2))
    active = (t > 0.2 * seconds) & (t < 0.8 * seconds)
    return chirp * active + 0.0005 * rng.standard_normal(t.size)


def write(path, samples, rate=RATE, subtype="PCM_16"):
    import soundfile as sf  # the audio extra: callers skip without it

    sf.write(path, samples, rate, subtype=subtype)
    return str(path)


def three_utterances(folder):
    """A folder of three one-second speech-like WAVs (utt0-2.wav, distinct pitches)."""
    folder.mkdir()
    for i in range(3):
        write(folder / f"utt{i}.wav", speech_like(seed=i, f0=110 + 40 * i))
    return folder


def run_features(*args):
    """``emkit features ARGS`` in this process (click's runner)."""
    from click.testing import CliRunner

    from emkit.cli import cli

    return CliRunner().invoke(cli, ["features", *[str(a) for a in args]], catch_exceptions=False)
