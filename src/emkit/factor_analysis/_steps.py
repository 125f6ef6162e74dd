"""The reference's public step API of ISV/JFA (``update_z``, ``e_step_v``, ...): compatibility only.

``fit`` does not use any of this (it runs the fused single-pass E-steps of :mod:`._training`);
these functions exist so that code written against bob.learn.em's step API keeps working, with
the same meaning.  They are plain functions of the machine ``model`` (its parameters and
:class:`~._constants.Constants`), attached as methods in the class bodies of
:class:`~emkit.factor_analysis.ISVMachine` and :class:`~emkit.factor_analysis.JFAMachine`;
the single latent and accumulator updates (``compute_latent_x``, ``update_z``...) are in
:mod:`._latent_steps`, and the whole-iteration steps made of them (``e_step``, ``m_step``, the
JFA phases) in :mod:`._training_steps`.  They take in-memory lists of :class:`GMMStats` and
**class indices** ``y`` in ``0..K-1`` (the rows of ``n_acc``/``f_acc``), like the reference, and
never modify their inputs.  Latent x is passed per class as a list of (r_U, n_k) arrays
(sessions in input order).
"""

from __future__ import annotations

import functools
import operator

import numpy as np

try:
    from numpy.exceptions import AxisError
except ImportError:  # numpy < 1.25
    from numpy import AxisError

from .._kernels import factor_analysis as kfa
from ._labels import encode_labels
from ._latent_steps import _labelled
from ._scoring import probe_x, templates


def reduce_iadd(*args):
    """Sum each list of accumulators.

    The reference summed with ``+=``, into the first accumulator of each list; emkit adds with
    ``+`` and mutates nothing.

    Parameters
    ----------
    *args : list
        Lists of accumulators that ``+`` adds (arrays of one shape, numbers, GMMStats...).

    Returns
    -------
    object or list
        The sum of the one list given, or a list of the sums of each.
    """
    sums = [functools.reduce(operator.add, a) for a in args]
    return sums[0] if len(sums) == 1 else sums


def mult_along_axis(A, B, axis: int):
    """``A`` multiplied by the 1-D ``B`` broadcast along ``axis`` (as in the reference).

    Parameters
    ----------
    A : array-like of shape (..., n, ...)
    B : array-like of shape (n,)
        ``n``: the length of ``A`` along ``axis``.
    axis : int

    Returns
    -------
    ndarray of the shape of A

    Raises
    ------
    numpy.exceptions.AxisError
        ``A`` has no axis ``axis``.
    ValueError
        ``B`` has not ``A.shape[axis]`` elements.
    """
    A = np.asarray(A)
    if axis >= A.ndim:
        raise AxisError(axis, A.ndim)
    if A.shape[axis] != np.size(B):
        raise ValueError("Length of 'A' along the given axis must be the same as B.size")
    shape = [1] * A.ndim
    shape[axis] = -1
    return A * np.reshape(B, shape)


# -- shared steps ---------------------------------------------------------------------------
def estimate_number_of_classes(model, y) -> int:
    """The number of distinct labels in ``y`` (the reference's ``len(unique_labels(y))``).

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); not used.
    y : array-like of shape (n_sessions,)
        Labels: any hashable values (the reference's ``unique_labels`` took numbers and strings).

    Returns
    -------
    int
    """
    return len(encode_labels(y)[1])


def initialize(model, ubm_projected_X, y, n_classes):
    """Give the missing parameters their initial values; sum the statistics per class.

    Each of U, V (JFA) and D that is not set takes the reference's initial value (U and V drawn
    from ``random_state``, ``D = sqrt(Sigma / relevance_factor)``); the parameters already set
    are kept and their shapes checked.  The reference re-drew all of them when U or D was
    missing (overwriting an assigned U without D).

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); needs a trained UBM.
    ubm_projected_X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..n_classes-1 of each session, every class at least once.
    n_classes : int
        K, the number of classes.

    Returns
    -------
    n_acc : ndarray of shape (K, C)
        ``sum_(h in k) N_h``: the zeroth-order statistics of each class.
    f_acc : ndarray of shape (K, C, D)
        ``sum_(h in k) F_h``: the first-order statistics of each class.

    Raises
    ------
    ValueError
        A class has no session, ``y`` is not class indices or not one per session, a session
        does not have the UBM's shape, or a set parameter has the wrong shape.
    """
    model._create_missing()
    codes, n, F = _labelled(model, ubm_projected_X, y, n_classes)
    counts = np.bincount(codes, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(
            f"y: class {int(np.flatnonzero(counts == 0)[0])} has no session (y must hold every "
            f"class index 0..{n_classes - 1} at least once)"
        )
    C, D = model._shape()
    return (kfa.group_sum(codes, n, n_classes),
            kfa.group_sum(codes, F, n_classes).reshape(n_classes, C, D))


def initialize_XYZ(model, n_samples_per_class, like=None):
    """Zero latent factors for the given class sizes: the starting point of every E-step.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method): gives r_U, r_V and C * D.
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class.
    like : object, optional
        Not used: the latents are always numpy arrays (the reference made dask zeros when
        ``like`` was a dask array).

    Returns
    -------
    latent_x : list of ndarray
        Element k of shape (r_U, n_k): zeros for each session of class k.
    latent_y : ndarray of shape (K, r_V), or None
        Zeros; ``None`` for a machine without V (ISV).
    latent_z : ndarray of shape (K, C * D)
        Zeros.
    """
    K = len(n_samples_per_class)
    latent_x = [np.zeros((model.r_U, int(n_k))) for n_k in n_samples_per_class]
    latent_y = np.zeros((K, model.r_V)) if model.r_V else None
    return latent_x, latent_y, np.zeros((K, model.supervector_dimension))


def _compute_uprod(model):
    """``U_c^T Sigma_c^-1 U_c`` for every Gaussian, (C, r_U, r_U)."""
    return model._constants().uprod


def _compute_vprod(model):
    """``V_c^T Sigma_c^-1 V_c`` for every Gaussian, (C, r_V, r_V)."""
    return model._constants().vprod


def estimate_x(model, X) -> np.ndarray:
    """Channel factor of a probe: ``x = L(U, N) U^T Sigma^-1 (F - N m)`` with N, F summed over ``X``.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        A machine with U (``self`` when called as its method).
    X : list of GMMStats, or GMMStats
        The sessions of one probe template, each of shape (C, D); a bare GMMStats is one
        session (the reference raised ``TypeError``).

    Returns
    -------
    ndarray of shape (r_U,)
    """
    c = model._constants("estimate_x")
    n, F, _, _ = templates(X, c.shape, "X")
    return probe_x(c, n, F)[0]


def estimate_ux(model, X) -> np.ndarray:
    """The probe's channel offset ``U @ estimate_x(X)``.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        A machine with U (``self`` when called as its method).
    X : list of GMMStats, or GMMStats
        As :func:`estimate_x`.

    Returns
    -------
    ndarray of shape (CD,)
    """
    return model._constants("estimate_ux").U @ estimate_x(model, X)
