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

import math
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ._checkpoint import resumable_em
from ._feature_names import FeatureNamesMixin
from ._fitted import FittedArray, PicklesFitted, derived, fitted_value, set_fitted
from ._kernels import plda as kp
from ._plda_scoring import (check_vectors, checked_enrollment, checked_out, llr_scores, one_model_per_array,
                            scoring_basis, vectors_as_models)
from ._plda_training import (PLDAEM, check_within_class_samples, class_statistics, data_log_likelihood,
                             encode_labels, training_labels, variance_floor)
from ._validation import check_positive_int, is_finite_number
from .io import _registry
from .whitening import check_spread
from ._describe import describe


__all__ = ["PLDA", "PLDAEnrollment"]


@dataclass(frozen=True)
class PLDAEnrollment:
    """Enrolled PLDA models (or multi-vector probes): everything scoring needs.

    They hold no PLDA parameters, so they stay valid when the PLDA is retrained.

    Parameters
    ----------
    means : ndarray of shape (n_models, n_features)
        Mean of each model's enrolment vectors.
    counts : ndarray of shape (n_models,)
        Number of enrolment vectors of each model.
    labels : list or None
        The models' labels (None when enrolled without labels).
    """

    means: np.ndarray
    counts: np.ndarray
    labels: list | None = None

    def __len__(self) -> int:
        return len(self.counts)


class PLDA(FeatureNamesMixin, PicklesFitted, BaseEstimator):
    """Probabilistic LDA trained by EM (see the module docstring for the three models).

    Fitted arrays are read-only; stopping at ``max_iterations`` with a threshold set warns a
    ``ConvergenceWarning``.

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
        noise covariance (the others), relative to the mean variance of a feature of the
        training data (``trace(Cov(X)) / D``), so that the model and its scores do not depend on
        the unit of the data.
    init_method : {"scatter", "random"}
        "scatter": eigenvectors of the between- and within-class scatter matrices (PPCA-like);
        "random": random ``F``/``G`` scaled to the data, noise = the data's variance.
    random_state : None, int, RandomState or Generator
        Used by ``init_method="random"`` only.
        A RandomState or Generator given is advanced by ``fit`` (docs/reproducibility.md).
    block_size : int or None
        Models per block in :meth:`log_likelihood_ratio`; None bounds a block to about 4M scores.

    Attributes
    ----------
    mean_ : (D,)
    F_ : (D, dim_f); for "two-covariance" (D, D) with ``F_ F_^T = S_b``
    G_ : (D, dim_g) for "full", None otherwise
    sigma_ : (D,) diagonal noise variances for "full"; (D, D) ``S_w`` / ``S`` for the others
    between_covariance_, within_covariance_ : (D, D) (properties)
    log_likelihood_ : (n_iter_ + 1,) average log-likelihood per training vector at the start and
        after every EM iteration (never decreases)
    n_iter_, converged_, n_features_in_, n_classes_
    feature_names_in_ : the column names of a DataFrame ``X`` given to ``fit``; vectors given to
        the other methods are checked against them, as scikit-learn does
    """

    #: the choices of ``model`` and ``init_method``
    MODELS = ("two-covariance", "simplified", "full")
    INIT_METHODS = ("scatter", "random")

    _FEATURE_AXES = {"mean_": 0, "F_": 0, "G_": 0, "sigma_": 0}
    mean_ = FittedArray("Mean of the vectors, (D,)")
    F_ = FittedArray("Between-class factor, (D, dim_f); (D, D) for two-covariance")
    G_ = FittedArray("Within-class subspace, (D, dim_g) for full; None otherwise")
    sigma_ = FittedArray("Noise: (D,) variances for full, (D, D) covariance otherwise")
    log_likelihood_ = FittedArray("Average log-likelihood at the start and after every iteration")

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
        if self.model not in self.MODELS:
            raise ValueError(f"model must be one of {self.MODELS}; got {describe(self.model)}")
        if self.init_method not in self.INIT_METHODS:
            raise ValueError(f"init_method must be one of {self.INIT_METHODS}; "
                             f"got {describe(self.init_method)}")
        check_positive_int(self.max_iterations, "max_iterations", minimum=0)
        for name in ("block_size", "dim_f", "dim_g"):  # (sizes the model ignores too: a typo shows)
            check_positive_int(getattr(self, name), name, allow_none=True)
        if self.convergence_threshold is not None and not (
                is_finite_number(self.convergence_threshold) and self.convergence_threshold >= 0):
            raise ValueError("convergence_threshold must be a finite number >= 0 or None; "
                             f"got {describe(self.convergence_threshold)}")
        threshold = self.variance_threshold
        if not (is_finite_number(threshold) and threshold >= 0):
            raise ValueError(f"variance_threshold must be a finite float >= 0; "
                             f"got {describe(self.variance_threshold)}")
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
        return fitted_value(self, "mean_") is not None

    def _missing_parameter(self, name: str):
        if name == "G_" and self.__sklearn_is_fitted__():
            return None  # "two-covariance" and "simplified" have no G
        raise NotFittedError(f"this {type(self).__name__} has no {name}: it is not fitted yet")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():  # (NotFittedError is an AttributeError too)
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")

    # --- training -----------------------------------------------------------------------------

    def fit(self, X, y):
        """Train by EM until the relative change of the average log-likelihood is at most
        ``convergence_threshold``, or ``max_iterations`` iterations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training vectors (e.g. length-normalised i-vectors); NaN or inf is a ``ValueError``.
        y : array-like of shape (n_samples,)
            Class labels of any hashable type; at least two classes, and enough samples per
            class to estimate the within-class covariance: ``n_samples - n_classes >=
            n_features`` (too few is a ``ValueError`` naming ``y`` rather than a model whose
            within-class covariance is ``variance_threshold``).

        Returns
        -------
        PLDA
            ``self``, fitted.
        """
        raw = X  # its feature names are recorded once the fit has succeeded
        X = check_vectors(X, "X")
        codes, classes = training_labels(y, X.shape[0])
        N, D = X.shape
        dim_f, dim_g = self._check_params(D, len(classes))
        check_within_class_samples(N, len(classes), D)
        stats = class_statistics(X, codes, len(classes))
        check_spread(X, "PLDA", stats.scatter)
        em = PLDAEM(stats, model=self.model, floor=variance_floor(stats, self.variance_threshold),
                    init_method=self.init_method, random_state=self.random_state, dim_f=dim_f, dim_g=dim_g)
        with em.blas_threads():
            # max_iterations=0 keeps the initial parameters: not a run that failed to converge
            result = resumable_em(
                self, X, y=codes, initialize=em.initialize, get_state=em.arrays, set_state=em.restore,
                warn_not_converged=self.max_iterations > 0,
                e_step=em.e_step, m_step=em.m_step, max_iterations=self.max_iterations,
                convergence_threshold=self.convergence_threshold, name=f"PLDA({self.model})",
                quantity="average log-likelihood")
            final = em.e_step().log_likelihood / N
        if not math.isfinite(final):
            raise FloatingPointError(f"PLDA({self.model}): the final log-likelihood is {final}")
        p = em.params
        self._store(stats.offset + p["mu"], p["F"], p["G"], p["noise"],
                    np.array(result.history + [final]), n_classes=len(classes))
        self.n_iter_, self.converged_ = result.n_iter, result.converged
        self._record_feature_names(raw)
        return self

    def _store(self, mean, F, G, sigma, log_likelihood, *, n_classes: int) -> None:
        """Set the fitted parameters (arrays this object owns from now on)."""
        for name, value in (("mean_", mean), ("F_", F), ("G_", G), ("sigma_", sigma),
                            ("log_likelihood_", log_likelihood)):
            set_fitted(self, name, value, copy=False)
        self.n_features_in_ = int(np.shape(mean)[0])
        self.n_classes_ = int(n_classes)

    @classmethod
    def _from_fitted(cls, *, mean, F, G, sigma, log_likelihood, n_iter: int, converged: bool,
                     n_classes: int, copy: bool = True, **params) -> "PLDA":
        """A fitted PLDA from plain arrays (a file's contents): ``cls(**params)`` with ``mean_``
        (D,), ``F_`` (D, dim_f), ``G_`` (D, dim_g) or None, ``sigma_`` ((D,) for "full", (D, D)
        otherwise), ``log_likelihood_`` (n_iter + 1,), ``n_iter_``, ``converged_``,
        ``n_classes_``.  The arrays are copied; ``copy=False`` keeps float64 arrays the caller
        owns (a file's reader: a copy would double the memory of a load, and of save's
        read-back).  Their sizes are the caller's to check."""
        plda = cls(**params)
        as_array = np.array if copy else np.asarray
        plda._store(*(None if a is None else as_array(a, dtype=np.float64)
                      for a in (mean, F, G, sigma, log_likelihood)), n_classes=n_classes)
        plda.n_iter_ = int(n_iter)
        plda.converged_ = bool(converged)
        return plda

    def log_likelihood(self, X, y) -> float:
        """Total marginal log-likelihood of labelled vectors under the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The vectors.
        y : array-like of shape (n_samples,)
            Their class labels (any hashable type): the vectors of a class share one class
            variable.

        Returns
        -------
        float
            ``log p(X | y)``, summed over the vectors (``log_likelihood_`` is per vector).
        """
        self._check_fitted()
        self._check_feature_names(X)
        X = check_vectors(X, "X", self.n_features_in_)
        codes, classes = encode_labels(y, X.shape[0])
        stats = class_statistics(X, codes, len(classes))
        return data_log_likelihood(stats, self.mean_ - stats.offset, self.F_, self.within_covariance_)

    # --- enrolment and scoring ----------------------------------------------------------------

    def enroll(self, X, y=None) -> PLDAEnrollment:
        """Enrol one model from all the vectors, or one model per distinct label (the means and
        counts of their vectors: no PLDA parameter, so no fitted PLDA is needed).

        Parameters
        ----------
        X : array-like of shape (n_vectors, n_features)
            The enrolment vectors.
        y : array-like of shape (n_vectors,), optional
            Their labels (any hashable type); None enrols all the rows as one model.

        Returns
        -------
        PLDAEnrollment
            One model, or one per label, in order of first appearance of the label.
        """
        n_features = getattr(self, "n_features_in_", None)
        if self.__sklearn_is_fitted__():
            self._check_feature_names(X)
        X = check_vectors(X, "X", n_features)
        if y is None:
            return PLDAEnrollment(X.mean(axis=0, keepdims=True), np.array([X.shape[0]], dtype=np.float64))
        codes, labels = encode_labels(y, X.shape[0])
        counts = np.bincount(codes, minlength=len(labels)).astype(np.float64)
        sums = kp.class_sums(X, codes, len(labels))
        return PLDAEnrollment(sums / counts[:, None], counts, labels)

    def _as_enrollment(self, models, name: str) -> PLDAEnrollment:
        D = self.n_features_in_
        if isinstance(models, PLDAEnrollment):
            return PLDAEnrollment(*checked_enrollment(models.means, models.counts, name, D), models.labels)
        if one_model_per_array(models):
            self._check_feature_names_of_each(models, name)
        else:
            self._check_feature_names(models, name)
        return PLDAEnrollment(*vectors_as_models(models, name, D))

    def log_likelihood_ratio(self, models, probes, *, out=None) -> np.ndarray:
        """Log-likelihood ratio of every model against every probe: ``log p(model, probe | same
        class) - log p(model) - log p(probe)``.

        Working memory besides ``out`` is O((n_models + n_probes) * r): the score matrix is
        computed by blocks of models (``block_size``), one matrix product each.

        Parameters
        ----------
        models : PLDAEnrollment, list of arrays of shape (n_i, D), or array of shape (n_models, D)
            Enrolled models (:meth:`enroll`), one model per array, or one vector per model.
        probes : PLDAEnrollment or array of shape (n_probes, D)
            Multi-vector probes, or one vector per probe (a list of arrays: one probe each).
        out : ndarray of shape (n_models, n_probes), optional
            A float array (e.g. a ``np.memmap`` or float32) to write the scores into.

        Returns
        -------
        ndarray of shape (n_models, n_probes)
            ``out`` when given, else a new float64 array.
        """
        self._check_fitted()
        enr = self._as_enrollment(models, "models")
        prb = self._as_enrollment(probes, "probes")
        out = checked_out(out, (len(enr), len(prb)))
        proj, lam = derived(self, ("scoring_basis", self.model), lambda: scoring_basis(self))
        return llr_scores(self.mean_, proj, lam, enr, prb, out, self.block_size)

    # --- persistence --------------------------------------------------------------------------

    def save(self, hdf5):
        """Write the parameters and the fitted state in emkit's HDF5 layout (:mod:`emkit.io.plda`;
        bob.learn.em 3.x had no PLDA).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group (see :func:`emkit.io.save`).
        """
        _registry.save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "PLDA":
        """Read a PLDA written by :meth:`save`.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        PLDA
            A new fitted PLDA; a damaged or foreign file is an :class:`emkit.io.InvalidFileError`.
        """
        return _registry.load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the parameters and state of ``self`` by those of a PLDA :meth:`save` wrote.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        PLDA
            ``self`` (unchanged when the file cannot be read).
        """
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)
        return self


_registry.register(PLDA, "PLDA", write="emkit.io.plda:write_plda", read="emkit.io.plda:read_plda")
