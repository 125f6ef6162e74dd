"""What every part of the experiment layer shares: system titles, the error for a missing
system, progress bars, length normalisation and figure output (PNG, PDF, SVG, EPS)."""

from __future__ import annotations

import os

import numpy as np

#: Display names of the systems, in the order of the demo's table.
SYSTEM_TITLES = {
    "gmm-map": "GMM-MAP, linear scoring",
    "isv": "ISV",
    "jfa": "JFA",
    "ivector-cosine": "i-vector, WCCN, cosine",
    "ivector-plda": "i-vector, PLDA",
}

#: Probes scored together (bounds the (n_probes, C*D) channel offsets of ISV/JFA).
PROBE_BLOCK = 256


class SystemUnavailable(RuntimeError):
    """A system needs a module or a part of a machine that is not there."""


def progress_bar(iterable=None, *, total=None, desc: str, enabled: bool):
    """A tqdm bar on stderr shown only once the loop has lasted one second (and when enabled)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="utt", leave=False, delay=1.0,
                disable=not enabled)


def length_norm(x) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


#: The formats of a figure file, by the file's extension (those matplotlib writes itself).
FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".eps": "eps", ".ps": "ps"}


def save_png(fig, path):
    """Write the matplotlib figure ``fig`` to ``path`` as a PNG (atomically)."""
    _save(fig, path, "png")


def save_figure(fig, path):
    """Write the matplotlib figure ``fig`` to ``path`` (atomically) in the format of its
    extension, one of :data:`FIGURE_FORMATS` (another is a ``ValueError``)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(f"{os.fspath(path)!r}: a figure file must end in "
                         f"{', '.join(FIGURE_FORMATS)}; got {suffix or 'no extension'!r}")
    _save(fig, path, FIGURE_FORMATS[suffix])


def _save(fig, path, format_):
    from ..io.atomic import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=format_, dpi=110, bbox_inches="tight")
