"""Tiny audio experiments for the recipe tests: a few synthetic 'speakers' (harmonic tones with
a speaker-specific pitch and spectral tilt, chirped), two sessions each with different noise,
written as 16 kHz wav Kaldi data directories, and a recipe over them."""

from pathlib import Path

import numpy as np

RATE = 16000


def voice(speaker: int, session: int, seconds=0.6) -> np.ndarray:
    rng = np.random.default_rng(1000 * speaker + session)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 90.0 + 37.0 * speaker
    tilt = 0.5 + 0.12 * (speaker % 4)
    x = sum(tilt ** k * np.sin(2 * np.pi * k * (f0 * t + 30 * speaker * t ** 2))
            for k in range(1, 8))
    active = (t > 0.1) & (t < seconds - 0.1)
    noise = (0.01 + 0.01 * session) * rng.standard_normal(t.size)
    return 0.2 * x / np.abs(x).max() * active + noise


def data_dir(root: Path, name: str, speakers, sessions=(0, 1)) -> Path:
    import soundfile as sf

    d = root / name
    (d / "wav").mkdir(parents=True)
    scp, u2s = [], []
    for s in speakers:
        for k in sessions:
            utt = f"spk{s}-s{k}"
            sf.write(d / "wav" / f"{utt}.wav", voice(s, k), RATE, subtype="PCM_16")
            scp.append(f"{utt} wav/{utt}.wav\n")
            u2s.append(f"{utt} spk{s}\n")
    (d / "wav.scp").write_text("".join(scp))
    (d / "utt2spk").write_text("".join(u2s))
    return d


def lists(root: Path, name: str, speakers):
    """Enrol each speaker on session 0; every model against every session-1 probe."""
    (root / f"{name}.enroll").write_text("".join(f"spk{s} spk{s}-s0\n" for s in speakers))
    (root / f"{name}.trials").write_text("".join(
        f"spk{m} spk{p}-s1 {'target' if m == p else 'nontarget'}\n"
        for m in speakers for p in speakers))


RECIPE = """\
work_dir = "work"
seed = 0

[data.train]
audio = "data/train"
[data.test]
audio = "data/test"
[data.cohort]
audio = "data/cohort"

[features]
num_ceps = 13
delta_order = 1
cmvn = "utterance"

[ubm]
data = "train"
gaussians = 4
iterations = 3
kmeans_iterations = 3

[systems.gmm]
kind = "gmm-map"

[systems.isv]
kind = "isv"
rank_u = 2
iterations = 2

[conditions.dev]
data = "test"
enroll = "dev.enroll"
trials = "dev.trials"

[conditions.eval]
data = "test"
enroll = "eval.enroll"
trials = "eval.trials"

[norm]
method = "s"
cohort = "cohort"

[calibration]
train = "dev"

[evaluation]
p_target = [0.1]
"""


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    data_dir(root / "data", "train", range(0, 5))
    data_dir(root / "data", "test", range(5, 11))
    data_dir(root / "data", "cohort", range(11, 14))
    lists(root, "dev", range(5, 8))
    lists(root, "eval", range(8, 11))
    (root / "recipe.toml").write_text(RECIPE)
    return root / "recipe.toml"
