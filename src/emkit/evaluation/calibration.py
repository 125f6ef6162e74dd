"""Linear calibration of scores to log-likelihood ratios, and the Cllr / min Cllr measures.

:class:`LinearCalibration` fits ``llr = w . s + b`` by prior-weighted logistic regression (a
Newton solver on standardised scores): target trials carry the total weight ``prior`` and
non-target trials ``1 - prior``, so the regression's log-odds are posterior log-odds at that
prior; subtracting ``logit(prior)`` leaves a log-likelihood ratio (Brummer's linear calibration /
fusion, as in the BOSARIS and FoCal toolkits).  Several systems' scores (columns) are fused.

The measures ``cllr`` and ``min_cllr`` live in :mod:`emkit.metrics` (target scores first, like
every metric there) and are re-exported here.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._caller_warnings import warn_at_caller
from .._feature_names import FeatureNamesMixin
from .._fitted import FittedArray, PicklesFitted, set_fitted
from .._object_arrays import objects_as_numbers
from .._validation import check_positive_int, is_finite_number
from .metrics import check_labels, cllr, min_cllr
from .._describe import describe

__all__ = ["LinearCalibration", "cllr", "min_cllr", "trial_labels"]


def _real_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def trial_labels(model_ids, probe_ids) -> np.ndarray:
    """The target trials (same identity) of a score matrix, for :meth:`LinearCalibration.fit`.

    Flatten it with the scores: ``fit(scores.ravel(), trial_labels(models, probes).ravel())``.

    Parameters
    ----------
    model_ids : array-like of shape (n_models,)
        Identity of each model (row of the score matrix).
    probe_ids : array-like of shape (n_probes,)
        Identity of each probe (column).

    Returns
    -------
    ndarray of shape (n_models, n_probes), bool
        True where the identities are equal.
    """
    a, b = np.asarray(model_ids), np.asarray(probe_ids)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"model_ids and probe_ids must be 1-D; got shapes {a.shape} and {b.shape}")
    return a[:, None] == b[None, :]


def _standardised_by_class(X: np.ndarray, y: np.ndarray):
    """``(Z, loc, scale, exponent)``: the scores ``X`` (n, k) as a (k, n) array of standardised
    rows, the target trials first (both classes in file order), and what maps ``Z`` back.

    The moments are taken of ``X / 2^e`` (exact, by ldexp: 2^e itself overflows for scores of
    2^1023 and more) with 2^e ~ max|X| per system, so scores near 1e308 neither overflow nor
    collapse to a zero weight.  Each row is filled and scaled in place: no copy of ``X`` beyond
    ``Z`` itself (the loss is a sum over trials, so their order is free)."""
    n_tar = int(np.count_nonzero(y))
    Z = np.empty((X.shape[1], X.shape[0]))
    non = ~y
    for row, column in zip(Z, X.T):
        np.compress(y, column, out=row[:n_tar])
        np.compress(non, column, out=row[n_tar:])
    exponent = np.frexp(np.maximum(Z.max(axis=1), -Z.min(axis=1)))[1]  # (max |X|, no |X| array)
    loc, scale = np.empty(Z.shape[0]), np.empty(Z.shape[0])
    for i, row in enumerate(Z):
        np.ldexp(row, -exponent[i], out=row)
        loc[i], scale[i] = row.mean(), row.std()
    scale[scale == 0] = 1.0
    Z -= loc[:, None]
    Z /= scale[:, None]
    return Z, loc, scale, exponent


class _ClassWeights(NamedTuple):
    """The trials of ``Z`` (k, n): the first ``n_tar`` are targets; each target's loss counts
    ``target`` times, each non-target's ``nontarget`` times (the prior's weights / n)."""

    n_tar: int
    target: float
    nontarget: float

    def signed_log_odds(self, Z: np.ndarray, theta: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out`` (n,) := the log-odds ``Z' v + c`` of each trial, negated for the targets, so
        that each trial's loss is ``log(1 + exp(out))``."""
        np.matmul(theta[:-1], Z, out=out)
        out += theta[-1]
        np.negative(out[:self.n_tar], out=out[:self.n_tar])
        return out

    def weigh(self, values: np.ndarray, sign: float = 1.0) -> np.ndarray:
        """``values`` (n,) times each trial's weight (and ``sign`` for the targets), in place."""
        values[:self.n_tar] *= sign * self.target
        values[self.n_tar:] *= self.nontarget
        return values

    def loss(self, signed: np.ndarray) -> float:
        """The weighted loss of the :meth:`signed_log_odds` ``signed`` (overwritten)."""
        np.logaddexp(0.0, signed, out=signed)
        return self.target * signed[:self.n_tar].sum() + self.nontarget * signed[self.n_tar:].sum()


def _minimise(Z, weights: _ClassWeights, penalty: float, max_iter: int):
    """``(v, c)`` minimising ``sum(weight * log(1 + exp(-+(Z' v + c)))) + penalty/2 |v|^2`` (the
    sign is - for targets) over the trials of ``Z`` (k, n), by Newton's method with a
    backtracking line search.  Returns the parameters, the number of iterations and whether the
    Newton decrement fell to the precision of the objective (after which one more full step was
    taken).  Three buffers of n floats are all it allocates per trial."""
    from scipy.special import expit

    k, n = Z.shape
    reg = np.r_[np.full(k, penalty), 0.0]
    signed, p, curvature = np.empty(n), np.empty(n), np.empty(n)

    def objective(theta):
        return weights.loss(weights.signed_log_odds(Z, theta, signed)) + 0.5 * reg @ theta ** 2

    theta = np.zeros(k + 1)
    f = objective(theta)
    hess = np.empty((k + 1, k + 1))
    for it in range(1, max_iter + 1):
        weights.signed_log_odds(Z, theta, signed)
        expit(signed, out=p)  # d loss / d signed
        np.negative(signed, out=curvature)
        expit(curvature, out=curvature)
        curvature *= p  # d^2 loss / d signed^2 = p (1 - p), without the cancellation of 1 - p
        residual = weights.weigh(p, sign=-1.0)  # d loss / d (log-odds), weighted
        weights.weigh(curvature)
        grad = np.r_[Z @ residual, residual.sum()] + reg * theta
        for i in range(k):  # (signed is free until the line search: it holds curvature * Z[i])
            np.multiply(curvature, Z[i], out=signed)
            hess[i, :i + 1] = hess[:i + 1, i] = Z[:i + 1] @ signed
            hess[i, k] = hess[k, i] = signed.sum()
        hess[k, k] = curvature.sum()
        step = -np.linalg.solve(hess + np.diag(reg), grad)
        decrement = -grad @ step
        t = 1.0
        for _ in range(60):  # the slack: decreases below the objective's rounding are accepted
            new = objective(theta + t * step)
            if new - f <= -1e-4 * t * decrement + 4 * np.finfo(float).eps * abs(f):
                break
            t /= 2
        theta, f = theta + t * step, new
        if decrement <= 1e-15 * f:
            return theta, it, True
    return theta, max_iter, False


class LinearCalibration(FeatureNamesMixin, TransformerMixin, PicklesFitted, BaseEstimator):
    """Affine map of scores to calibrated log-likelihood ratios, fitted by logistic regression.

    Parameters
    ----------
    prior : float in (0, 1)
        Effective target prior the regression is weighted for.
    C : float > 0
        Inverse regularisation strength (like scikit-learn's ``LogisticRegression``'s, but on
        the weights of the standardised scores, so that it does not depend on the scores' unit):
        the objective is BOSARIS's prior-weighted cross-entropy (nats)
        ``prior * mean_tar log(1 + exp(-a)) + (1 - prior) * mean_non log(1 + exp(a))``,
        ``a = llr + logit(prior)``, plus ``sum((coef_ * std(scores))**2) / (2 C n_trials)``.
        The default 1e6 moves a calibration by 1e-8 to 2e-6 relative (2,300 trials, priors
        0.01 to 0.9), far below what any metric shows.  It matters on perfectly separated
        development scores, where the objective alone has no minimum (its infimum is at an
        infinite slope): the calibration is then finite, set by ``C`` rather than by the data
        (|llr| of a few tens), and ``fit`` warns.
    max_iter : int
        Most Newton iterations (about 10 are needed, 20-30 on separated scores); a
        ``ConvergenceWarning`` if they do not suffice.

    Attributes
    ----------
    coef_ : ndarray of shape (n_systems,)
        The weights ``w`` of ``llr = scores @ w + b`` (after ``fit``), read-only; weights
        assigned by hand (finite) for another number of systems set ``n_features_in_`` and drop
        ``feature_names_in_``.
    intercept_ : float
        ``b``.
    n_features_in_ : int
        Number of systems fused.
    n_iter_ : int
        Newton iterations run.
    feature_names_in_ : ndarray of shape (n_systems,), str
        The systems' names, when ``scores`` was a DataFrame (``transform`` then refuses a
        DataFrame whose columns differ or come in another order).
    """

    # coef_ assigned by hand (read-only, finite) sets n_features_in_, as the other estimators'
    _FEATURE_AXES = {"coef_": 0}
    coef_ = FittedArray("The weights w of llr = scores @ w + b, (n_systems,)")

    def __init__(self, prior: float = 0.5, C: float = 1e6, max_iter: int = 1000):
        self.prior = prior
        self.C = C
        self.max_iter = max_iter

    def _scores(self, scores, name="scores", n_systems=None) -> np.ndarray:
        from sklearn.utils import check_array

        scores = objects_as_numbers(scores, name)  # (None is not NaN)
        X = check_array(scores, accept_sparse=False, dtype=np.float64, ensure_2d=False,
                        ensure_all_finite=True, input_name=name)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"{name} must be (n_trials,) or (n_trials, n_systems); got shape {X.shape}")
        if n_systems is not None and X.shape[1] != n_systems:
            raise ValueError(f"{name} must have {n_systems} column(s) (systems); got shape {X.shape}")
        return X

    @classmethod
    def _from_fitted(cls, coef, intercept: float, *, prior: float = 0.5, C: float = 1e6,
                     max_iter: int = 1000) -> "LinearCalibration":
        """A fitted calibration from its parameters (a file's contents): ``coef`` (n_systems,)."""
        calibration = cls(prior=prior, C=C, max_iter=max_iter)
        set_fitted(calibration, "coef_", coef)
        calibration.intercept_ = float(intercept)
        calibration.n_features_in_ = calibration.coef_.shape[0]
        return calibration

    def fit(self, scores, y):
        """Fit the calibration on development scores.

        Parameters
        ----------
        scores : array-like of shape (n_trials,) or (n_trials, n_systems)
            Finite development scores of one system, or of several to fuse (a DataFrame too).
        y : array-like of shape (n_trials,)
            True/1 for target trials, False/0 for non-target trials; both must occur.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Invalid ``prior``, ``C`` or ``max_iter``; non-finite scores; ``y`` of one class.
        """
        if not (isinstance(self.prior, numbers.Real) and 0.0 < self.prior < 1.0):
            raise ValueError(f"prior must be a float in (0, 1); got {describe(self.prior)}")
        if isinstance(self.C, bool) or not (isinstance(self.C, numbers.Real)
                                            and 0.0 < self.C < np.inf):
            raise ValueError(f"C must be a finite number > 0; got {describe(self.C)}")
        check_positive_int(self.max_iter, "max_iter")
        X = self._scores(scores)
        y = check_labels(y, X.shape[0], "y")
        n_tar = int(np.count_nonzero(y))
        n_non = y.size - n_tar
        if n_tar == 0 or n_non == 0:
            raise ValueError(f"y must contain both target and non-target trials; got {n_tar} target(s) "
                             f"and {n_non} non-target(s)")
        # each target's loss weighs prior / n_tar, each non-target's (1 - prior) / n_non: the
        # weights sum to 1 (the regulariser keeps its usual meaning for n_trials)
        n = n_tar + n_non
        weights = _ClassWeights(n_tar, self.prior * n / n_tar / n,
                                (1.0 - self.prior) * n / n_non / n)
        # standardised inputs make the solver's job scale-free; mapped back below
        Z, loc, scale, exponent = _standardised_by_class(X, y)
        theta, self.n_iter_, converged = _minimise(Z, weights, 1.0 / (self.C * n), self.max_iter)
        if not converged:
            from sklearn.exceptions import ConvergenceWarning

            warn_at_caller(f"LinearCalibration did not converge in max_iter={self.max_iter} Newton "
                          "iterations", ConvergenceWarning)
        posterior_log_odds = theta[:-1] @ Z + theta[-1]  # (targets first)
        del Z
        if (posterior_log_odds[:n_tar] > 0).all() and (posterior_log_odds[n_tar:] < 0).all():
            warn_at_caller("the development scores are perfectly separated: the calibration "
                          "objective has no minimum, so the slope is set by the regularisation "
                          f"C={self.C:g}, not by the data; calibrate on more or harder trials",
                          UserWarning)
        w = theta[:-1] / scale  # weights of Xs
        set_fitted(self, "coef_", np.ldexp(w, -exponent), copy=False)
        log_odds = np.log(self.prior / (1.0 - self.prior))
        self.intercept_ = float(theta[-1] - w @ loc - log_odds)
        self.n_features_in_ = X.shape[1]
        self._record_feature_names(scores)  # (the systems, when scores is a DataFrame)
        return self

    def transform(self, scores) -> np.ndarray:
        """Calibrated log-likelihood ratios ``scores @ coef_ + intercept_``.

        Parameters
        ----------
        scores : array-like of any shape (one system) or of shape (n_trials, n_systems)
            One system: e.g. an (M, P) score matrix.

        Returns
        -------
        ndarray of the shape of ``scores`` (one system) or of shape (n_trials,), float64

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            Non-finite scores, or calibrated scores beyond float64.
        """
        self._check_parameters()
        self._check_feature_names(scores, "scores")
        if self.n_features_in_ == 1:
            s = _real_array(scores, "scores")
            if not np.isfinite(s).all():
                raise ValueError(f"scores contains {'NaN' if np.isnan(s).any() else 'infinity'}")
            with np.errstate(over="ignore"):
                llr = s * self.coef_[0] + self.intercept_
        else:
            with np.errstate(over="ignore"):
                llr = self._scores(scores, n_systems=self.n_features_in_) @ self.coef_ + self.intercept_
        if not np.isfinite(llr).all():
            raise ValueError("the calibrated scores overflow float64 (|coef * score + intercept| above "
                             f"1.8e308): coef {self.coef_.tolist()}, scores up to {float(np.max(np.abs(scores))):.3g}")
        return llr

    def _check_parameters(self) -> None:
        """Refuse an unfitted calibration, and parameters assigned by hand that make no affine map
        (numpy's indexing or broadcasting error named neither)."""
        from sklearn.exceptions import NotFittedError  # (an AttributeError too)

        if not hasattr(self, "coef_"):
            raise NotFittedError("this LinearCalibration is not fitted yet: call fit(scores, y) first")
        if self.coef_.ndim != 1:
            raise ValueError("LinearCalibration.coef_ must be 1-D, one weight per system; got shape "
                             f"{self.coef_.shape}")
        if not hasattr(self, "intercept_"):
            raise NotFittedError("LinearCalibration has coef_ but no intercept_: assign it (a number) "
                                 "or call fit(scores, y)")
        if not is_finite_number(self.intercept_):
            raise ValueError(f"LinearCalibration.intercept_ must be a finite number; got "
                             f"{describe(self.intercept_)}")

    def fit_transform(self, scores, y):
        """``fit(scores, y)``, then the calibrated LLRs of ``scores``.

        Parameters
        ----------
        scores : array-like of shape (n_trials,) or (n_trials, n_systems)
        y : array-like of shape (n_trials,)
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_trials,), float64
        """
        return self.fit(scores, y).transform(scores)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # fit needs y
        return tags
