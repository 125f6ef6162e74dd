"""What :class:`emkit.plda.PLDA` trains from: labels as integer codes, the class statistics
(computed once per ``fit``), the initial parameters of EM and its steps (:class:`PLDAEM`).
No estimator state lives here."""

from __future__ import annotations

import contextlib

import numpy as np

from . import _labels
from ._backend import map_reduce, small_products
from ._describe import describe
from ._kernels import plda as kp
from ._validation import check_random_state
from .whitening import check_scatter

__all__ = ["encode_labels", "training_labels", "check_within_class_samples", "class_statistics",
           "data_log_likelihood", "variance_floor", "initial_parameters", "within_covariance", "PLDAEM"]


def encode_labels(y, n_samples: int, name: str = "y"):
    """Integer codes (N,) and the list of distinct labels, in order of first appearance
    (:func:`emkit._labels.encode_labels`: any hashable labels, dask labels computed, NaN refused),
    one label per sample."""
    codes, classes = _labels.encode_labels(y, name, first_appearance=True)
    if len(codes) != n_samples:
        raise ValueError(f"{name} must have one label per sample ({n_samples}); got {len(codes)} labels")
    return codes, list(classes)


def training_labels(y, n_samples: int):
    """:func:`encode_labels` of the labels ``fit`` was given, of at least two classes."""
    if y is None:
        raise ValueError("PLDA requires y to be passed, but the target y is None (one class label per "
                         "row of X)")
    codes, classes = encode_labels(y, n_samples)
    if len(classes) < 2:
        raise ValueError(f"y must contain at least 2 classes; got 1 class ({describe(classes[0])})")
    return codes, classes


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
    """Class counts and sums and the scatter of ``X`` (N, D) around its mean (one data pass); a
    scatter that overflows float64 is refused, naming X."""
    with np.errstate(over="ignore", invalid="ignore"):  # refused just below, by name
        offset = X.mean(axis=0)
        partial = map_reduce(kp.statistics_chunk, X, offset, codes, n_classes, with_offset=True)
        counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
        stats = kp.class_statistics(offset, counts, partial)
    check_scatter(stats.scatter, "scatter of X")
    return stats


def data_log_likelihood(stats: kp.ClassStatistics, mu, F, within) -> float:
    """``log p(X | y)`` of the data of ``stats`` under a PLDA of mean ``stats.offset + mu``,
    between-class factors ``F`` and within-class covariance ``within``; refused when it
    overflows float64 (vectors far out of the model's scale), rather than returned as NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = kp.posterior(stats, mu, F, within).log_likelihood
    if not np.isfinite(value):
        raise ValueError(f"the log-likelihood of X overflows float64 (got {value}): X holds vectors "
                         "far out of the model's scale; check or rescale X")
    return value


def variance_floor(stats: kp.ClassStatistics, variance_threshold: float) -> float:
    """``variance_threshold`` relative to the mean variance of a feature of the training data
    (``trace(Cov(X)) / D``); a scatter that is not finite, or constant data, is refused."""
    N, D = stats.n_samples, stats.scatter.shape[0]
    scale = float(np.trace(stats.scatter)) / (N * D)  # the mean variance of a feature
    check_scatter(stats.scatter, "scatter of X")
    if not scale > 0:
        raise ValueError("X is constant (every row the same): PLDA has no variance to model")
    return float(variance_threshold) * scale


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


class PLDAEM:
    """The parameters of a PLDA under training, ``mu`` (relative to ``stats.offset``), ``F``,
    ``G`` (None unless "full") and ``noise``, in :attr:`params`, with the EM steps that update
    them from the class statistics; :meth:`arrays` and :meth:`restore` are a checkpoint's."""

    def __init__(self, stats: kp.ClassStatistics, *, model: str, floor: float, init_method: str,
                 random_state, dim_f, dim_g):
        self.stats, self.model, self.floor = stats, model, floor
        self._start = dict(init_method=init_method, random_state=random_state, dim_f=dim_f, dim_g=dim_g)
        self.params: dict = {}

    def blas_threads(self):
        """The BLAS threads of the iterations: one below about 1e9 multiply-adds (an iteration is
        a few small dense products, where threads only cost time), else the default."""
        D, n_classes = self.stats.scatter.shape[0], len(self.stats.counts)
        return small_products() if D * D * max(D, n_classes) < 1e9 else contextlib.nullcontext()

    def initialize(self) -> None:
        p = self.params
        p["mu"], p["F"], p["G"], p["noise"] = initial_parameters(
            self.stats, model=self.model, floor=self.floor, **self._start)

    def e_step(self):
        p = self.params
        W = within_covariance(self.model, p["G"], p["noise"])
        return kp.posterior(self.stats, p["mu"], p["F"], W)

    def m_step(self, post) -> float:
        """Update the parameters; the average log-likelihood per vector of the E-step."""
        p, stats, floor = self.params, self.stats, self.floor
        if self.model != "full":
            p["mu"], p["F"], p["noise"] = kp.m_step_simplified(stats, p["mu"], p["F"], post, floor)
        else:
            p["mu"], p["F"], p["G"], p["noise"] = kp.m_step_full(
                stats, p["mu"], p["F"], p["G"], p["noise"], post, floor)
        return post.log_likelihood / stats.n_samples

    def arrays(self) -> dict:
        return {k: v for k, v in self.params.items() if v is not None}

    def restore(self, arrays: dict) -> None:
        self.params.update({"G": None, **arrays})
