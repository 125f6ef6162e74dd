"""``PLDA`` in emkit's versioned HDF5 layout (bob.learn.em 3.x has no PLDA to be compatible with).

Layout version 1 (root attributes ``emkit_class = "PLDA"``, ``emkit_format_version = 1``):

* parameters, one scalar dataset each: ``model``, ``init_method`` (strings), ``dim_f``, ``dim_g``,
  ``max_iterations``, ``block_size`` (int64, -1 = None), ``convergence_threshold`` (float64, NaN
  = None), ``variance_threshold`` (float64), ``random_state`` (:mod:`emkit.io.random_state`:
  int64 for an int, attribute ``random_state_generator`` for a RandomState or Generator);
* group ``fitted`` (only for a fitted PLDA): ``mean`` (D,), ``F`` (D, dim_f), ``G`` (D, dim_g;
  "full" only), ``sigma`` ((D,) for "full", (D, D) otherwise), ``log_likelihood`` (n_iter + 1,),
  ``n_iter``, ``converged``, ``n_features_in``, ``n_classes``, and (optional) ``feature_names``
  (D,) text, the ``feature_names_in_`` of a fit on a DataFrame.  The reader checks the sizes
  against each other and ``dim_f``/``dim_g``, and the magnitudes against :data:`MAX_MAGNITUDE`.

Registered for :func:`emkit.io.save`/:func:`emkit.io.load` at the bottom of :mod:`emkit.plda`;
the reader builds the object through ``cls(**params)`` and ``cls._from_fitted``.
"""

from __future__ import annotations

import numpy as np

from .fit_summary import read_feature_names, write_feature_names
from .h5 import (check_values, child, int_or_minus_one, open_for_reading, open_for_writing,
                 read_array, read_scalar, read_stamp, write_stamp)
from .h5_values import within
from .read_back import write_array
from .random_state import MISSING, read_random_state, write_random_state

__all__ = ["write_plda", "read_plda"]

CLASS_NAME = "PLDA"
FORMAT_VERSION = 1



def write_plda(plda, hdf5) -> None:
    """Write a PLDA in emkit's layout ``PLDA`` (see the module docstring).

    Called by ``PLDA.save`` and :func:`emkit.io.save`.

    Parameters
    ----------
    plda : PLDA
        Its parameters, and its fitted arrays when fitted.
    hdf5 : str, path-like or h5py.Group
        A path (written atomically) or an open, writable group.
    """
    with open_for_writing(hdf5) as f:
        write_stamp(f, CLASS_NAME, FORMAT_VERSION)
        f["model"] = str(plda.model)
        f["init_method"] = str(plda.init_method)
        f["dim_f"] = int_or_minus_one(plda.dim_f)
        f["dim_g"] = int_or_minus_one(plda.dim_g)
        f["max_iterations"] = int_or_minus_one(plda.max_iterations)
        f["block_size"] = int_or_minus_one(plda.block_size)
        threshold = plda.convergence_threshold
        f["convergence_threshold"] = np.float64(np.nan if threshold is None else threshold)
        f["variance_threshold"] = np.float64(plda.variance_threshold)
        write_random_state(f, plda.random_state)
        if not hasattr(plda, "mean_"):
            return
        g = f.create_group("fitted")
        write_array(g, "mean", plda.mean_)
        write_array(g, "F", plda.F_)
        if plda.G_ is not None:
            write_array(g, "G", plda.G_)
        write_array(g, "sigma", plda.sigma_)
        write_array(g, "log_likelihood", plda.log_likelihood_)
        g["n_iter"] = np.int64(plda.n_iter_)
        g["converged"] = bool(plda.converged_)
        g["n_features_in"] = np.int64(plda.n_features_in_)
        g["n_classes"] = np.int64(plda.n_classes_)
        write_feature_names(g, getattr(plda, "feature_names_in_", None))


def _none_if_negative(value):
    value = int(value)
    return None if value < 0 else value


def _text_choice(f, name, choices):
    value = read_scalar(f, name, "str")
    check_values(f, name, value in choices, f"must be one of {choices}")
    return value


def read_plda(hdf5, cls):
    """Read a PLDA from emkit's layout ``PLDA``.

    Parameters
    ----------
    hdf5 : str, path-like or h5py.Group
        A path or an open group.
    cls : type
        The class to build (PLDA or a subclass), through its own constructor.

    Returns
    -------
    PLDA

    Raises
    ------
    InvalidFileError
        A file of another object, an unsupported layout version, or damaged or inconsistent
        contents (shapes, types and values are checked before use).
    """
    with open_for_reading(hdf5, CLASS_NAME) as f:
        read_stamp(f, CLASS_NAME, FORMAT_VERSION)
        threshold = read_scalar(f, "convergence_threshold", low=0.0, allow_nan=True)
        random_state = read_random_state(f)
        params = dict(
            model=_text_choice(f, "model", cls.MODELS),
            dim_f=_none_if_negative(read_scalar(f, "dim_f", "int")),
            dim_g=_none_if_negative(read_scalar(f, "dim_g", "int")),
            max_iterations=_none_if_negative(read_scalar(f, "max_iterations", "int")),
            convergence_threshold=None if np.isnan(threshold) else float(threshold),
            variance_threshold=float(read_scalar(f, "variance_threshold", low=0.0)),
            init_method=_text_choice(f, "init_method", cls.INIT_METHODS),
            random_state=None if random_state is MISSING else random_state,
            block_size=_none_if_negative(read_scalar(f, "block_size", "int")),
        )
        g = child(f, "fitted", "group", required=False)
        if g is None:
            return cls(**params)
        fitted = _read_fitted(g, params)
        names = read_feature_names(g, fitted["mean"].shape[0])
        return cls._from_fitted(**fitted, **params, copy=False)._restore_feature_names(names)


#: Largest magnitude of a fitted parameter: far beyond any real model, small enough that the
#: squares and products scoring forms stay finite in float64 (a mean of 1e308 scored NaN).
MAX_MAGNITUDE = 1e100


def _read_bounded(g, name, shape, **kwargs):
    value = read_array(g, name, shape=shape, **kwargs)
    if value is not None:
        check_values(g, name, within(value, MAX_MAGNITUDE),
                     f"holds values beyond +-{MAX_MAGNITUDE:g} (scoring would overflow)")
    return value


def _check_columns(g, name, found: int, D: int, expected, why: str) -> None:
    """A subspace of 1 to D columns, ``expected`` of them when known (``why``)."""
    check_values(g, name, 1 <= found <= D, f"must have 1 to {D} columns; found {found}")
    if expected is not None:
        check_values(g, name, found == expected, f"must have {expected} columns ({why}); found "
                                                 f"{found}")


def _read_fitted(g, params) -> dict:
    """The fitted attributes, checked against each other and the parameters (sizes), and for a
    usable model."""
    model = params["model"]
    mean = _read_bounded(g, "mean", (None,))
    D = mean.shape[0]
    check_values(g, "mean", D >= 1, "must hold at least one value")
    F = _read_bounded(g, "F", (D, None))
    if model == "two-covariance":
        _check_columns(g, "F", F.shape[1], D, D, "a two-covariance model's F is square")
    else:
        _check_columns(g, "F", F.shape[1], D, params["dim_f"], "dim_f")
    full = model == "full"
    G = _read_bounded(g, "G", (D, None), required=full)
    if full:
        dim_g = D if params["dim_g"] is None else params["dim_g"]
        _check_columns(g, "G", G.shape[1], D, dim_g, "dim_g, or the dimension when it is None")
        sigma = _read_bounded(g, "sigma", (D,), positive=True)
    else:
        sigma = _read_bounded(g, "sigma", (D, D))
        scale = float(np.max(np.abs(sigma)))
        check_values(g, "sigma", bool(np.allclose(sigma, sigma.T, rtol=0.0, atol=1e-10 * scale)),
                     "must be a symmetric matrix")
        try:
            np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            check_values(g, "sigma", False, "must be positive definite")
    variances = sigma if full else np.diag(sigma)
    check_values(g, "sigma", bool(np.all(variances >= 1 / MAX_MAGNITUDE)),
                 f"must have variances >= {1 / MAX_MAGNITUDE:g} (scoring would overflow)")
    n_iter = int(read_scalar(g, "n_iter", "int", low=0))
    fitted = dict(mean=mean, F=F, G=G if full else None, sigma=sigma,
                  log_likelihood=read_array(g, "log_likelihood", shape=(n_iter + 1,)),
                  n_iter=n_iter, converged=bool(read_scalar(g, "converged", "bool")))
    read_scalar(g, "n_features_in", "int", low=D, high=D)  # (D is the mean's size)
    fitted["n_classes"] = int(read_scalar(g, "n_classes", "int", low=2))
    return fitted
