"""Probabilistic linear discriminant analysis (PLDA): EM training, enrolment, LLR scoring.

bob.learn.em 2.x had Prince and Elder's PLDA; 3.x dropped it.  :class:`PLDA` offers three members
of the family, chosen with ``model=``:

``"two-covariance"``
    ``x = y_i + e``, ``y_i ~ N(mu, S_b)``, ``e ~ N(0, S_w)``, full between- and within-class
    covariances (Kaldi's and most i-vector back-ends' PLDA).  Trained as the simplified model
    with a square ``F`` (``S_b = F F^T``, ``S_w = S``).
``"simplified"``
    ``x = mu + F h_i + e``, ``h_i ~ N(0, I_dim_f)``, ``e ~ N(0, S)`` with a full ``S``.
``"full"``
    Prince and Elder's ``x = mu + F h_i + G w_ij + eps``, ``w_ij ~ N(0, I_dim_g)``,
    ``eps ~ N(0, diag(sigma))`` (bob 2.x's ``PLDABase``).

EM is parameter-expanded (the "minimum divergence" step of Kenny and Brummer: the latent
variables' posterior mean and covariance are folded back into ``mu``, ``F`` and ``G`` after every
M-step), which keeps it monotone and makes it converge in far fewer iterations.  An iteration uses
only the class sums and the scatter matrix of the training data (computed once).

Scores are log-likelihood ratios ``log p(enrolment, probe | same class) - log p(enrolment) -
log p(probe)``, for many models against many probes in one call (one matrix product per block of
models, see :func:`emkit._kernels.plda.llr_matrix`).

Typical back-end, with scikit-learn's LDA and length normalisation (``Normalizer`` scales every
vector to unit Euclidean norm) as pipeline steps before PLDA::

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    from emkit.plda import PLDA

    backend = make_pipeline(LinearDiscriminantAnalysis(n_components=150), Normalizer(),
                            PLDA(model="two-covariance"))
    backend.fit(train_ivectors, train_speakers)
    preprocess, plda = backend[:-1], backend[-1]
    models = plda.enroll(preprocess.transform(enrol_ivectors), enrol_speakers)  # one per speaker
    llr = plda.log_likelihood_ratio(models, preprocess.transform(probe_ivectors))  # (M, P)

(PLDA is deliberately not given a ``score`` method: ``Pipeline.score(X, y)`` would call it with
labels in place of probes.)
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

from . import _config
from ._backend import map_reduce, single_threaded_blas
from ._em import run_em
from ._kernels import plda as kp
from ._validation import check_finite, check_frames, check_positive_int, check_random_state


__all__ = ["PLDA", "PLDAEnrollment", "encode_labels"]

_MODELS = ("two-covariance", "simplified", "full")
_INITS = ("scatter", "random")
#: Default bound on the size of one block of the score matrix (elements).
_BLOCK_ELEMENTS = 1 << 22


def encode_labels(y, n_samples: int, name: str = "y"):
    """Integer codes (N,) and the list of distinct labels, in order of first appearance.

    Labels may be of any hashable type (str, int, tuples, ...).
    """
    if isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype != object:
        if len(y) != n_samples:
            raise ValueError(f"{name} must have one label per sample ({n_samples}); got {len(y)} labels")
        uniq, first, codes = np.unique(y, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # first-appearance order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[codes.reshape(-1)], list(uniq[order])
    try:
        labels = list(y)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of labels; got {type(y).__name__}") from None
    if len(labels) != n_samples:
        raise ValueError(f"{name} must have one label per sample ({n_samples}); got {len(labels)} labels")
    index: dict = {}
    try:
        codes = np.fromiter((index.setdefault(lab, len(index)) for lab in labels), dtype=np.intp,
                            count=len(labels))
    except TypeError as exc:
        raise TypeError(f"{name} must hold hashable labels; {exc}") from None
    return codes, list(index)


def _blas_threads(limit):
    """One BLAS thread inside a ``with`` block when ``limit`` is 1; ``None``: no change."""
    return contextlib.nullcontext() if limit is None else single_threaded_blas()


def _check_vectors(X, name: str, n_features: int | None = None) -> np.ndarray:
    """A (n, D) float64 array of finite vectors (1-D input = one vector)."""
    return np.asarray(check_frames(X, name, n_features=n_features), dtype=np.float64)


def _check_within_class_samples(n_samples: int, n_classes: int, n_features: int):
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


def _class_statistics(X, codes, n_classes) -> kp.ClassStatistics:
    offset = X.mean(axis=0)
    partial = map_reduce(kp.statistics_chunk, X, offset, codes, n_classes, with_offset=True)
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    return kp.class_statistics(offset, counts, partial)


@dataclass(frozen=True)
class PLDAEnrollment:
    """Enrolled PLDA models (or multi-vector probes): everything scoring needs.

    means : (n_models, n_features) mean of each model's enrolment vectors
    counts : (n_models,) number of enrolment vectors of each model
    labels : list of the models' labels (None when enrolled without labels)

    They hold no PLDA parameters, so they stay valid when the PLDA is retrained.
    """

    means: np.ndarray
    counts: np.ndarray
    labels: list | None = None

    def __len__(self) -> int:
        return len(self.counts)


class PLDA(BaseEstimator):
    """Probabilistic LDA trained by EM (see the module docstring for the three models).

    Parameters
    ----------
    model : {"two-covariance", "simplified", "full"}
    dim_f : int or None
        Dimension of the between-class subspace ``F`` ("simplified" and "full"; "two-covariance"
        has a full-rank ``S_b`` and ignores it).  None: ``min(n_features, n_classes - 1)``.
    dim_g : int or None
        Dimension of the within-class subspace ``G`` ("full" only).  None: ``n_features``.
    max_iterations : int
        EM iterations at most (0 keeps the initial parameters).
    convergence_threshold : float or None
        Stop when the relative change of the average log-likelihood is at most this.
    variance_threshold : float
        Floor on the diagonal ``sigma`` ("full") and on the eigenvalues of the within-class /
        noise covariance (the others).
    init_method : {"scatter", "random"}
        "scatter": eigenvectors of the between- and within-class scatter matrices (PPCA-like);
        "random": random ``F``/``G`` scaled to the data, noise = the data's variance.
    random_state : None, int, RandomState or Generator
        Used by ``init_method="random"`` only.
    block_size : int or None
        Models per block in :meth:`log_likelihood_ratio`; None bounds a block to about 4M scores.

    Attributes (after ``fit``)
    --------------------------
    mean_ : (D,)
    F_ : (D, dim_f); for "two-covariance" (D, D) with ``F_ F_^T = S_b``
    G_ : (D, dim_g) for "full", None otherwise
    sigma_ : (D,) diagonal noise variances for "full"; (D, D) ``S_w`` / ``S`` for the others
    between_covariance_, within_covariance_ : (D, D) (properties)
    log_likelihood_ : (n_iter_ + 1,) average log-likelihood per training vector at the start and
        after every EM iteration (never decreases)
    n_iter_, converged_, n_features_in_, n_classes_
    """

    def __init__(self, model: str = "two-covariance", dim_f: int | None = None, dim_g: int | None = None,
                 max_iterations: int = 100, convergence_threshold: float | None = 1e-6,
                 variance_threshold: float = 1e-8, init_method: str = "scatter", random_state=None,
                 block_size: int | None = None):
        self.model = model
        self.dim_f = dim_f
        self.dim_g = dim_g
        self.max_iterations = max_iterations
        self.convergence_threshold = convergence_threshold
        self.variance_threshold = variance_threshold
        self.init_method = init_method
        self.random_state = random_state
        self.block_size = block_size

    # --- parameters ---------------------------------------------------------------------------

    def _check_params(self, n_features: int, n_classes: int):
        if self.model not in _MODELS:
            raise ValueError(f"model must be one of {_MODELS}; got {self.model!r}")
        if self.init_method not in _INITS:
            raise ValueError(f"init_method must be one of {_INITS}; got {self.init_method!r}")
        check_positive_int(self.max_iterations, "max_iterations", minimum=0)
        if self.convergence_threshold is not None and not self.convergence_threshold >= 0:
            raise ValueError("convergence_threshold must be >= 0 or None; "
                             f"got {self.convergence_threshold!r}")
        threshold = self.variance_threshold
        if not (isinstance(threshold, (int, float, np.floating)) and threshold >= 0):
            raise ValueError(f"variance_threshold must be a float >= 0; got {self.variance_threshold!r}")
        dim_f = dim_g = None
        if self.model != "two-covariance":
            dim_f = min(n_features, n_classes - 1) if self.dim_f is None else self.dim_f
            check_positive_int(dim_f, "dim_f")
            if dim_f > n_features:
                raise ValueError(f"dim_f must be <= n_features ({n_features}); got {dim_f}")
        if self.model == "full":
            dim_g = n_features if self.dim_g is None else self.dim_g
            check_positive_int(dim_g, "dim_g")
            if dim_g > n_features:
                raise ValueError(f"dim_g must be <= n_features ({n_features}); got {dim_g}")
        return dim_f, dim_g

    @property
    def within_covariance_(self) -> np.ndarray:
        """Covariance of the vectors of one class around their class variable, (D, D)."""
        self._check_fitted()
        if self.model == "full":
            return self.G_ @ self.G_.T + np.diag(self.sigma_)
        return self.sigma_

    @property
    def between_covariance_(self) -> np.ndarray:
        """Covariance of the class variable, ``F F^T``, (D, D)."""
        self._check_fitted()
        return self.F_ @ self.F_.T

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mean_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _check_fitted(self):
        if not hasattr(self, "mean_"):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")

    # --- training -----------------------------------------------------------------------------

    def _initial(self, stats: kp.ClassStatistics, dim_f, dim_g):
        N, D = stats.n_samples, stats.scatter.shape[0]
        floor = float(self.variance_threshold)
        mu = np.zeros(D)
        within = stats.within_scatter / N
        if self.init_method == "random":
            rng = check_random_state(self.random_state)
            var = np.diag(stats.scatter) / N
            scale = np.sqrt(var.mean())
            F = rng.normal(size=(D, D if dim_f is None else dim_f)) * scale / np.sqrt(D)
            G = None if dim_g is None else rng.normal(size=(D, dim_g)) * scale / np.sqrt(D)
            noise = np.maximum(var, floor) if self.model == "full" else np.diag(np.maximum(var, floor))
            return mu, F, G, noise
        means = stats.sums / stats.counts[:, None]
        between = means.T @ (stats.counts[:, None] * means) / N
        F = kp.eigen_factor(between, dim_f)
        if self.model != "full":
            return mu, F, None, kp.floor_eigenvalues(within, floor)
        w, U = np.linalg.eigh(within)
        w, U = w[::-1], U[:, ::-1]
        rest = w[dim_g:].mean() if dim_g < D else 0.5 * w[-1]
        G = U[:, :dim_g] * np.sqrt(np.maximum(w[:dim_g] - rest, 0.0))
        sigma = np.maximum(np.diag(within) - np.einsum("ij,ij->i", G, G), max(floor, rest * 1e-3))
        return mu, F, G, sigma

    def _params_to_w(self, G, noise):
        return G @ G.T + np.diag(noise) if self.model == "full" else noise

    def fit(self, X, y):
        """Train on vectors ``X`` (n_samples, n_features) with class labels ``y`` (n_samples,).

        Labels may be of any hashable type.  At least two classes are needed, and enough samples
        per class to estimate the within-class covariance: ``n_samples - n_classes >=
        n_features`` (one sample per class, or too few repeated samples, is a ValueError naming
        ``y`` rather than a model whose within-class covariance is ``variance_threshold``).
        """
        X = _check_vectors(X, "X")
        if y is None:
            raise ValueError("PLDA requires y to be passed, but the target y is None (one class label per "
                             "row of X)")
        codes, classes = encode_labels(y, X.shape[0])
        if len(classes) < 2:
            raise ValueError(f"y must contain at least 2 classes; got 1 class ({classes[0]!r})")
        N, D = X.shape
        dim_f, dim_g = self._check_params(D, len(classes))
        _check_within_class_samples(N, len(classes), D)
        stats = _class_statistics(X, codes, len(classes))
        floor = float(self.variance_threshold)
        mu, F, G, noise = self._initial(stats, dim_f, dim_g)
        state = {"mu": mu, "F": F, "G": G, "noise": noise}

        def e_step():
            s = state
            return kp.posterior(stats, s["mu"], s["F"], self._params_to_w(s["G"], s["noise"]))

        def m_step(post):
            s = state
            if self.model != "full":
                s["mu"], s["F"], s["noise"] = kp.m_step_simplified(stats, s["mu"], s["F"], post, floor)
            else:
                s["mu"], s["F"], s["G"], s["noise"] = kp.m_step_full(
                    stats, s["mu"], s["F"], s["G"], s["noise"], post, floor)
            return post.log_likelihood / N

        history: list = []
        converged = False
        # an iteration is a few small dense products: BLAS threads only cost time below this size
        with _blas_threads(1 if D * D * max(D, len(classes)) < 1e9 else None):
            if self.max_iterations > 0:
                result = run_em(e_step, m_step, max_iterations=self.max_iterations,
                                convergence_threshold=self.convergence_threshold,
                                name=f"PLDA({self.model})", quantity="average log-likelihood")
                history, converged = result.history, result.converged
            final = e_step().log_likelihood / N
        if not math.isfinite(final):
            raise FloatingPointError(f"PLDA({self.model}): the final log-likelihood is {final}")
        self.mean_ = stats.offset + state["mu"]
        self.F_ = state["F"]
        self.G_ = state["G"]
        self.sigma_ = state["noise"]
        self.log_likelihood_ = np.array(history + [final])
        self.n_iter_ = len(history)
        self.converged_ = converged
        self.n_features_in_ = D
        self.n_classes_ = len(classes)
        return self

    def log_likelihood(self, X, y) -> float:
        """Total marginal log-likelihood of labelled vectors under the fitted model."""
        self._check_fitted()
        X = _check_vectors(X, "X", self.n_features_in_)
        codes, classes = encode_labels(y, X.shape[0])
        stats = _class_statistics(X, codes, len(classes))
        mu = self.mean_ - stats.offset
        return kp.posterior(stats, mu, self.F_, self.within_covariance_).log_likelihood

    # --- enrolment and scoring ----------------------------------------------------------------

    def enroll(self, X, y=None) -> PLDAEnrollment:
        """Enrol one model from all rows of ``X`` (n_vectors, n_features), or one model per
        distinct label of ``y`` (models in order of first appearance of their label)."""
        n_features = getattr(self, "n_features_in_", None)
        X = _check_vectors(X, "X", n_features)
        if y is None:
            return PLDAEnrollment(X.mean(axis=0, keepdims=True), np.array([X.shape[0]], dtype=np.float64))
        codes, labels = encode_labels(y, X.shape[0])
        counts = np.bincount(codes, minlength=len(labels)).astype(np.float64)
        sums = kp.class_sums(X, codes, len(labels))
        return PLDAEnrollment(sums / counts[:, None], counts, labels)

    def _as_enrollment(self, models, name: str) -> PLDAEnrollment:
        D = self.n_features_in_
        if isinstance(models, PLDAEnrollment):
            means = np.asarray(models.means, dtype=np.float64)
            counts = np.asarray(models.counts, dtype=np.float64)
            if means.ndim != 2 or means.shape[1] != D or counts.shape != (means.shape[0],):
                raise ValueError(f"{name} must hold means of shape (n, {D}) and counts (n,); got "
                                 f"{means.shape} and {counts.shape}")
            if not (counts >= 1).all():
                raise ValueError(f"{name}.counts must all be >= 1; got min {counts.min()}")
            check_finite(means, f"{name}.means")
            return PLDAEnrollment(means, counts, models.labels)
        if isinstance(models, (list, tuple)) and models and np.ndim(models[0]) == 2:
            arrays = [_check_vectors(m, f"{name}[{i}]", D)
                      for i, m in enumerate(models)]
            return PLDAEnrollment(np.array([a.mean(axis=0) for a in arrays]),
                                  np.array([a.shape[0] for a in arrays], dtype=np.float64))
        X = _check_vectors(models, name, D)
        return PLDAEnrollment(X, np.ones(X.shape[0]))

    def log_likelihood_ratio(self, models, probes, *, out=None) -> np.ndarray:
        """LLR of every model against every probe, shape (n_models, n_probes).

        models : :class:`PLDAEnrollment` (from :meth:`enroll`), a list of (n_i, D) arrays (one
            model per array), or a (n_models, D) array (one vector per model).
        probes : (n_probes, D) array (one vector per probe) or a :class:`PLDAEnrollment`
            (multi-vector probes).
        out : optional (n_models, n_probes) float array (e.g. a ``np.memmap`` or float32) to
            write into; returned.

        Working memory besides ``out`` is O((n_models + n_probes) * r): the score matrix is
        computed by blocks of models, one matrix product each.
        """
        self._check_fitted()
        enr = self._as_enrollment(models, "models")
        prb = self._as_enrollment(probes, "probes")
        M, P = len(enr), len(prb)
        if out is None:
            out = np.empty((M, P))
        elif not isinstance(out, np.ndarray) or out.shape != (M, P) or out.dtype.kind != "f":
            raise ValueError(f"out must be a float ndarray of shape ({M}, {P}); got "
                             f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}")
        with _blas_threads(1):  # small (D, D) factorisations: threads only cost time
            proj, lam = kp.scoring_basis(self.F_, self.within_covariance_)
        uE = (enr.means - self.mean_) @ proj * enr.counts[:, None]
        uP = (prb.means - self.mean_) @ proj * prb.counts[:, None]
        block = self.block_size
        if block is None:
            block = max(1, _BLOCK_ELEMENTS // max(P, 1))
        else:
            check_positive_int(block, "block_size")
        nE, nP = enr.counts, prb.counts
        if _config.get_config()["device"] != "cpu":  # scoring on a CUDA device (docs/gpu.md)
            from ._backend._device import current_device, to_device

            dev = current_device()
            uE, nE, uP, nP, lam = (to_device(a, dev) for a in (uE, nE, uP, nP, lam))
        return kp.llr_matrix(uE, nE, uP, nP, lam, out, block)

    # --- persistence --------------------------------------------------------------------------

    def save(self, hdf5):
        """Write parameters and fitted state to an HDF5 path or open group (emkit layout)."""
        from .io.plda import write_plda

        write_plda(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "PLDA":
        from .io.plda import read_plda

        return read_plda(hdf5, cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the PLDA stored in ``hdf5``."""
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)
        return self
