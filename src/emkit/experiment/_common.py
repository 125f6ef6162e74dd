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


def progress_bar(iterable=None, *, total=None, desc: str, enabled: bool,
                 unit: str = "utterance"):
    """A tqdm bar on stderr shown only once the loop has lasted one second (and when enabled),
    and the loop's progress lines on the ``emkit`` logger (INFO, at most every 30 s, then a
    summary; see :class:`emkit._progress.Progress`), whether the bar is enabled or not.

    Iterate over it, or call ``update(n)`` (as a context manager: closed at the end); other
    attributes are the tqdm bar's.  ``unit``: the items' name in the singular.
    """
    return _CountedLoop(iterable, total, desc, enabled, unit)


class _CountedLoop:
    """A tqdm bar and a :class:`~emkit._progress.Progress` counting the same loop."""

    def __init__(self, iterable, total, desc, enabled, unit):
        from tqdm.auto import tqdm

        from .._progress import Progress

        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.bar = tqdm(iterable, total=total, desc=desc, unit="utt" if unit == "utterance"
                        else unit, leave=False, delay=1.0, disable=not enabled)
        self.progress = Progress(desc, total, unit)
        self.closed = False

    def __iter__(self):
        for item in self.bar:
            yield item
            self.progress.advance()
        self.close()

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.progress.advance(n)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bar.close()
            self.progress.finish()

    def __getattr__(self, name):  # (only for names the loop does not have itself)
        if name == "bar":
            raise AttributeError(name)
        return getattr(self.bar, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


#: The smallest norm whose square is a normal float64: np.linalg.norm squares and sums, so a
#: smaller norm comes from a subnormal sum that has lost digits (a row of 2.3e-162: 1.0348).
_SMALLEST_EXACT_NORM = np.sqrt(np.finfo(np.float64).tiny)


def length_norm(x) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (a zero row stays zero).

    Parameters
    ----------
    x : array-like of shape (..., D)
        Vectors along the last axis (i-vectors, one a row).

    Returns
    -------
    ndarray of shape (..., D)
        Float64, a new array (``x`` is not changed).
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):  # rows whose norm leaves float64: below
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
    out = x / np.where(norm > 0, norm, 1.0)
    # a norm that overflowed (rows of 1e300: zeros) or underflowed (1e-300: left as they were);
    # below _SMALLEST_EXACT_NORM the sum of squares is subnormal and the norm imprecise
    out_of_range = ~((norm >= _SMALLEST_EXACT_NORM) & (norm < np.inf))[..., 0]
    out_of_range &= np.any(x != 0, axis=-1)
    if out_of_range.any():
        out[out_of_range] = _unit_rows_of_extreme_size(x[out_of_range])
    return out


def _unit_rows_of_extreme_size(x: np.ndarray) -> np.ndarray:
    """Non-zero rows ``x`` (n, D) whose norm float64 cannot hold, scaled to unit norm: each row is
    divided by its largest magnitude first, which leaves a norm between 1 and sqrt(D)."""
    scaled = x / np.abs(x).max(axis=-1, keepdims=True)
    return scaled / np.linalg.norm(scaled, axis=-1, keepdims=True)


#: The formats of a figure file, by the file's extension (those matplotlib writes itself).
FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".eps": "eps", ".ps": "ps"}


def save_png(fig, path):
    """Write a matplotlib figure to a PNG file (atomically, 110 dpi), whatever its extension.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or path-like
        The file, replaced only once complete.
    """
    _save(fig, path, "png")


def save_figure(fig, path):
    """Write a matplotlib figure (atomically, 110 dpi) in the format of the file's extension.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or path-like
        The file, replaced only once complete; its extension is one of
        :data:`FIGURE_FORMATS` (``.png``, ``.pdf``, ``.svg``, ``.eps``, ``.ps``, any case).

    Raises
    ------
    ValueError
        Another extension, or none.
    """
    from ..io._message_text import show_path

    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(f"{show_path(path)}: a figure file must end in "
                         f"{', '.join(FIGURE_FORMATS)}; got {suffix or 'no extension'!r}")
    _save(fig, path, FIGURE_FORMATS[suffix])


def _save(fig, path, format_):
    from ..io.atomic import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=format_, dpi=110, bbox_inches="tight")
