"""From synthetic speech to calibrated scores with one command.

    python examples/espeak_recipe/run_example.py [--out DIR] [--force]

Synthesises 32 'speakers' with espeak-ng (the Debian package: ``apt-get install espeak-ng``):
each a voice (accent), a voice variant, a pitch and a speed of its own.  Two sessions per
speaker, 4 sentences each, with session-dependent noise and channel (session 1: white noise at
25 dB SNR; session 2: pink noise at 12 dB and a low-pass channel), written as 16 kHz wav
(espeak-ng writes 22.05 kHz: resampled with scipy's polyphase filter).  Speakers 0-11 train the
UBM and systems, 12-15 are the normalisation cohort, 16-23 the development set (calibration),
24-31 the evaluation set.  Then runs ``recipe.toml`` (copied into DIR) and prints the report.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from math import gcd
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16000
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
          "en-gb-x-gbcwmd", "en"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt",
            "klatt2", "croak", "edward", "john", "linda", "max", "paul", "robert", "steph",
            "zac", "Andy", "Annie", "belinda", "benjamin", "caleb", "david", "Gene", "Lee",
            "Mike"]
SENTENCES = [
    "The small boat drifted slowly towards the northern shore.",
    "Please bring seven green apples and a loaf of bread.",
    "A warm breeze carried the smell of rain across the valley.",
    "We measured the distance twice before cutting the wooden beam.",
    "Her old radio still plays the morning news every day.",
    "The children laughed when the puppy chased its own tail.",
    "Thick fog covered the harbour until nearly noon.",
    "He wrote the numbers on a yellow card and left it by the door.",
    "Fresh coffee and quiet music make a pleasant start.",
    "The train to the coast leaves from platform nine.",
    "Bright lanterns lined the path through the dark garden.",
    "Our neighbour repaired the fence after the winter storm.",
    "Join the meeting at half past four in the blue room.",
    "The violin sounded clear above the low hum of the crowd.",
    "Check the map again before we turn left at the bridge.",
    "Five grey geese flew over the frozen lake at dawn.",
]
SPLITS = {"train": range(0, 12), "cohort": range(12, 16), "dev": range(16, 24),
          "eval": range(24, 32)}


def speakers(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return [{"voice": VOICES[i % len(VOICES)], "variant": VARIANTS[i],
             "pitch": int(rng.integers(15, 86)), "speed": int(rng.integers(130, 200))}
            for i in range(n)]


def synthesise(text, spk) -> np.ndarray:
    """espeak-ng's output for one sentence, as float64 samples at 16 kHz."""
    import soundfile as sf
    from scipy.signal import resample_poly

    wav = subprocess.run(["espeak-ng", "--stdout", "-v", f"{spk['voice']}+{spk['variant']}",
                          "-p", str(spk["pitch"]), "-s", str(spk["speed"]), text],
                         check=True, capture_output=True).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float64")
    if x.ndim > 1:
        x = x[:, 0]
    if rate != RATE:
        g = gcd(int(rate), RATE)
        x = resample_poly(x, RATE // g, int(rate) // g)
    return x


def add_session(x, session, rng) -> np.ndarray:
    """Session 0: white noise at 25 dB SNR; session 1: low-pass channel, pink noise at 12 dB."""
    from scipy.signal import lfilter

    x = x / (np.abs(x).max() + 1e-12) * rng.uniform(0.3, 0.6)
    power = np.mean(x ** 2)
    if session == 0:
        noise, snr = rng.standard_normal(x.size), 25.0
    else:
        x = lfilter([0.5], [1.0, -0.5], x)
        noise, snr = lfilter([1.0], [1.0, -0.95], rng.standard_normal(x.size)), 12.0
    noise *= np.sqrt(power / np.mean(noise ** 2) / 10 ** (snr / 10))
    pad = np.zeros(int(0.2 * RATE))
    y = np.concatenate([pad, x, pad])
    y += np.concatenate([pad, noise, pad]) + 1e-3 * rng.standard_normal(y.size)
    return np.clip(y, -0.99, 0.99)


def make_data(out: Path, per_session=4):
    import soundfile as sf

    rng = np.random.default_rng(1)
    spks = speakers()
    for split, ids in SPLITS.items():
        d = out / "data" / split
        (d / "wav").mkdir(parents=True, exist_ok=True)
        scp, u2s = [], []
        for s in ids:
            for session in (0, 1):
                for k in range(per_session):
                    text = SENTENCES[(s + 5 * session + k) % len(SENTENCES)]
                    utt = f"spk{s:02d}-s{session + 1}-{k}"
                    y = add_session(synthesise(text, spks[s]), session, rng)
                    sf.write(d / "wav" / f"{utt}.wav", y, RATE, subtype="PCM_16")
                    scp.append(f"{utt} wav/{utt}.wav\n")
                    u2s.append(f"{utt} spk{s:02d}\n")
        (d / "wav.scp").write_text("".join(scp))
        (d / "utt2spk").write_text("".join(u2s))
    (out / "lists").mkdir(exist_ok=True)
    for split in ("dev", "eval"):
        ids = SPLITS[split]
        (out / "lists" / f"{split}.enroll").write_text("".join(
            f"spk{s:02d} " + " ".join(f"spk{s:02d}-s1-{k}" for k in range(per_session)) + "\n"
            for s in ids))
        (out / "lists" / f"{split}.trials").write_text("".join(
            f"spk{m:02d} spk{p:02d}-s2-{k} {'target' if m == p else 'nontarget'}\n"
            for m in ids for p in ids for k in range(per_session)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "build",
                        help="where the data, the recipe and its work directory go")
    parser.add_argument("--force", action="store_true", help="re-run every step of the recipe")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng); "
              "nothing to do", file=sys.stderr)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "data" / "eval" / "wav.scp").is_file():
        print(f"synthesising speech into {args.out / 'data'} ...", file=sys.stderr)
        make_data(args.out)
    shutil.copyfile(HERE / "recipe.toml", args.out / "recipe.toml")
    from emkit.recipe import run_recipe

    _, report = run_recipe(args.out / "recipe.toml", force=args.force,
                           echo=lambda text: print(text, file=sys.stderr))
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
