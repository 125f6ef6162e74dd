"""What :class:`emkit.plda.PLDA` scores: its input vectors checked, models and probes as the
means and counts of their vectors, and the log-likelihood ratios of every model against every
probe by blocks of models (:func:`emkit._kernels.plda.llr_matrix`).  No estimator state lives
here."""

from __future__ import annotations

import numpy as np

from . import _config
from ._backend import small_products
from ._kernels import plda as kp
from ._validation import check_finite, check_frames, check_positive_int

#: Default bound on the size of one block of the score matrix (elements).
BLOCK_ELEMENTS = 1 << 22


def check_vectors(X, name: str, n_features: int | None = None) -> np.ndarray:
    """A (n, D) float64 array of finite vectors (1-D input = one vector)."""
    return check_frames(X, name, n_features=n_features, owner="PLDA", in_memory=True)


def checked_enrollment(means, counts, name: str, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """The means (n, D) and counts (n,) of an enrolment, as float64, checked."""
    means = np.asarray(means, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] != n_features or counts.shape != (means.shape[0],):
        raise ValueError(f"{name} must hold means of shape (n, {n_features}) and counts (n,); got "
                         f"{means.shape} and {counts.shape}")
    if not (counts >= 1).all():
        raise ValueError(f"{name}.counts must all be >= 1; got min {counts.min()}")
    check_finite(means, f"{name}.means")
    return means, counts


def one_model_per_array(models) -> bool:
    """Whether ``models`` is a list of (n_i, D) arrays (one model each), not vectors."""
    return isinstance(models, (list, tuple)) and bool(models) and np.ndim(models[0]) == 2


def vectors_as_models(models, name: str, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Means (n, D) and counts (n,) of a list of (n_i, D) arrays (a model each) or of the rows
    of a (n, D) array (a model each)."""
    if one_model_per_array(models):
        arrays = [check_vectors(m, f"{name}[{i}]", n_features) for i, m in enumerate(models)]
        return (np.array([a.mean(axis=0) for a in arrays]),
                np.array([a.shape[0] for a in arrays], dtype=np.float64))
    X = check_vectors(models, name, n_features)
    return X, np.ones(X.shape[0])


def checked_out(out, shape: tuple) -> np.ndarray:
    """``out`` when it is a float ndarray of ``shape`` (a new one when None)."""
    if out is None:
        return np.empty(shape)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype.kind != "f":
        raise ValueError(f"out must be a float ndarray of shape {shape}; got "
                         f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}")
    return out


@small_products  # small (D, D) factorisations: threads only cost time
def scoring_basis(plda) -> tuple[np.ndarray, np.ndarray]:
    """The read-only scoring basis ``(proj, lam)`` of a fitted PLDA (cached by the caller and
    shared by every call: :func:`emkit._kernels.plda.scoring_basis`)."""
    proj, lam = kp.scoring_basis(plda.F_, plda.within_covariance_)
    proj.flags.writeable = lam.flags.writeable = False
    return proj, lam


def llr_scores(mean, proj, lam, models, probes, out: np.ndarray, block_size) -> np.ndarray:
    """The LLRs of the ``models`` against the ``probes`` (enrolments: ``means``, ``counts``)
    written into ``out``, with the scoring basis ``proj``, ``lam`` of a PLDA of mean ``mean``;
    ``block_size`` models per block (None: about :data:`BLOCK_ELEMENTS` scores a block).  A score
    that overflows ``out``'s dtype is refused (vectors far out of the training data's scale) as
    soon as its block is written."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name
        return _llr_scores(mean, proj, lam, models, probes, out, block_size)


def finite_scores_check(out: np.ndarray, models, probes):
    """``written(rows, cols)`` for :func:`emkit._kernels.plda.llr_matrix`: refuses a block of
    ``out`` holding inf or NaN as soon as it is written (a second pass over a memory-mapped
    ``out`` would read it all again), naming the index of the first such score."""
    def written(rows: slice, cols) -> None:
        block = out[rows] if cols is None else out[rows, cols]
        finite = np.isfinite(block)
        if finite.all():
            return
        i, j = np.argwhere(~finite)[0]
        column = j if cols is None else cols[j]
        raise ValueError(
            f"the log-likelihood ratio at index ({rows.start + i}, {column}) overflows {out.dtype} "
            f"(models hold values up to {_largest(models.means):.3g} in magnitude, probes up to "
            f"{_largest(probes.means):.3g}): vectors far out of the training data's scale cannot "
            "be scored; check or rescale models and probes")

    return written


def _largest(means: np.ndarray) -> float:
    return float(np.abs(means).max(initial=0.0))


def _llr_scores(mean, proj, lam, models, probes, out: np.ndarray, block_size) -> np.ndarray:
    uE = (models.means - mean) @ proj * models.counts[:, None]
    uP = (probes.means - mean) @ proj * probes.counts[:, None]
    block = block_size
    if block is None:
        block = max(1, BLOCK_ELEMENTS // max(len(probes.counts), 1))
    else:
        check_positive_int(block, "block_size")
    nE, nP = models.counts, probes.counts
    if _config.get_config()["device"] != "cpu":  # scoring on a CUDA device (docs/gpu.md)
        from ._backend._device import current_device, to_device

        dev = current_device()
        uE, nE, uP, nP, lam = (to_device(a, dev) for a in (uE, nE, uP, nP, lam))
    return kp.llr_matrix(uE, nE, uP, nP, lam, out, block, finite_scores_check(out, models, probes))
