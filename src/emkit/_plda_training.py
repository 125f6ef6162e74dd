"""What :class:`emkit.plda.PLDA` trains from: labels as integer codes, the class statistics
(computed once per ``fit``) and the initial parameters of EM.  No estimator state lives here."""

from __future__ import annotations

import numpy as np

from . import _labels
from ._backend import map_reduce
from ._kernels import plda as kp
from ._validation import check_random_state

__all__ = ["encode_labels", "check_within_class_samples", "class_statistics", "initial_parameters",
           "within_covariance"]


def encode_labels(y, n_samples: int, name: str = "y"):
    """Integer codes (N,) and the list of distinct labels, in order of first appearance
    (:func:`emkit._labels.encode_labels`: any hashable labels, dask labels computed, NaN refused),
    one label per sample."""
    codes, classes = _labels.encode_labels(y, name, first_appearance=True)
    if len(codes) != n_samples:
        raise ValueError(f"{name} must have one label per sample ({n_samples}); got {len(codes)} labels")
    return codes, list(classes)


def check_within_class_samples(n_samples: int, n_classes: int, n_features: int):
    """Refuse training data whose within-class scatter is singular whatever the features.

    The within-class scatter has rank at most ``n_samples - n_classes``; below ``n_features`` the
    ML within-class covariance is singular and only ``variance_threshold`` keeps it invertible, so
    the model and its LLRs (about -1e8 with the default floor) would be meaningless.
    """
    dof = n_samples - n_classes
    if dof == 0:
        raise ValueError(f"y: every one of the {n_classes} classes has a single sample, so the "
                         "within-class covariance cannot be estimated; PLDA needs several samples "
                         f"per class (in all, n_samples - n_classes >= n_features = {n_features})")
    if dof < n_features:
        raise ValueError(f"y: n_samples - n_classes = {n_samples} - {n_classes} = {dof} is less than "
                         f"n_features ({n_features}): the within-class covariance would be singular; "
                         "add samples to the classes or reduce the dimension first (e.g. PCA/LDA)")


def class_statistics(X, codes, n_classes) -> kp.ClassStatistics:
    """Class counts and sums and the scatter of ``X`` (N, D) around its mean (one data pass)."""
    offset = X.mean(axis=0)
    partial = map_reduce(kp.statistics_chunk, X, offset, codes, n_classes, with_offset=True)
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    return kp.class_statistics(offset, counts, partial)


def within_covariance(model: str, G, noise):
    """The within-class covariance (D, D) of the parameters: ``G G' + diag(sigma)`` for "full",
    the noise covariance itself otherwise."""
    return G @ G.T + np.diag(noise) if model == "full" else noise


def initial_parameters(stats: kp.ClassStatistics, *, model: str, init_method: str, random_state,
                       floor: float, dim_f, dim_g):
    """``(mu, F, G, noise)`` to start EM from (``mu`` relative to ``stats.offset``; ``G`` None
    unless ``model == "full"``; ``noise`` (D,) for "full", (D, D) otherwise)."""
    N, D = stats.n_samples, stats.scatter.shape[0]
    mu = np.zeros(D)
    within = stats.within_scatter / N
    if init_method == "random":
        rng = check_random_state(random_state)
        var = np.diag(stats.scatter) / N
        scale = np.sqrt(var.mean())
        F = rng.normal(size=(D, D if dim_f is None else dim_f)) * scale / np.sqrt(D)
        G = None if dim_g is None else rng.normal(size=(D, dim_g)) * scale / np.sqrt(D)
        noise = np.maximum(var, floor) if model == "full" else np.diag(np.maximum(var, floor))
        return mu, F, G, noise
    means = stats.sums / stats.counts[:, None]
    between = means.T @ (stats.counts[:, None] * means) / N
    F = kp.eigen_factor(between, dim_f)
    if model != "full":
        return mu, F, None, kp.floor_eigenvalues(within, floor)
    w, U = np.linalg.eigh(within)
    w, U = w[::-1], U[:, ::-1]
    rest = w[dim_g:].mean() if dim_g < D else 0.5 * w[-1]
    G = U[:, :dim_g] * np.sqrt(np.maximum(w[:dim_g] - rest, 0.0))
    sigma = np.maximum(np.diag(within) - np.einsum("ij,ij->i", G, G), max(floor, rest * 1e-3))
    return mu, F, G, sigma
