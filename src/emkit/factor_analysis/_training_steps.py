"""The reference's ISV/JFA training steps (``e_step``, ``m_step``, the JFA V/U/D phases).

Compatibility only, like :mod:`._steps`, whose single updates they chain; attached as methods
in the class bodies of :class:`~emkit.factor_analysis.ISVMachine` (``e_step``, ``m_step``) and
:class:`~emkit.factor_analysis.JFAMachine` (``e_step_v`` ... ``m_step_d``).
"""

from __future__ import annotations

import numpy as np

from .._fitted import fitted_value
from .._kernels import factor_analysis as kfa
from ._latent_steps import (compute_accumulators_D, compute_accumulators_U,
                            compute_accumulators_V, compute_latent_x, update_U, update_y,
                            update_z)
from ._steps import _compute_uprod, _compute_vprod, initialize_XYZ


def _reduce(pairs, name):
    pairs = list(pairs)
    if not pairs:
        raise ValueError(f"{name} is empty: expected a list of (A1, A2) accumulator pairs")
    A1 = sum((np.asarray(p[0], dtype=np.float64) for p in pairs[1:]),
             np.asarray(pairs[0][0], dtype=np.float64))
    A2 = sum((np.asarray(p[1], dtype=np.float64) for p in pairs[1:]),
             np.asarray(pairs[0][1], dtype=np.float64))
    return A1, A2


# -- ISV ---------------------------------------------------------------------------------------
def e_step(model, X, y, n_samples_per_class, n_acc, f_acc):
    """ISV E-step: the U accumulators ``(A1, A2)`` of one pass over ``X``.

    Computes every session's channel factor x at z = 0, then every class's z with those x,
    then the U accumulators of the x with the **new** z (the reference's order, which keeps
    bob 2.x's reset of z every iteration).  Sum the pairs of several calls (e.g. per chunk)
    with :func:`m_step`.  ``model``'s parameters are not changed.

    Parameters
    ----------
    model : ISVMachine
        The machine (``self`` when called as its method); needs U and D.
    X : list of GMMStats
        The training sessions, each of shape (C, D).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class (``K = len(n_samples_per_class)``).
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    A1 : ndarray of shape (C, r_U, r_U)
        ``sum N_c (L + x x^T)`` per Gaussian, with ``L`` the posterior covariance.
    A2 : ndarray of shape (C * D, r_U)
        ``sum f~ x^T``, with ``f~`` the centred first-order statistics.
    """
    K = len(n_samples_per_class)
    UProd = _compute_uprod(model)
    _, _, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_x = compute_latent_x(model, X=X, y=y, n_classes=K, UProd=UProd)
    latent_z = update_z(model, X, y, latent_x, None, latent_z, n_acc, f_acc)
    return compute_accumulators_U(model, X, y, UProd, latent_x, None, latent_z)


def m_step(model, acc_U_A1_acc_U_A2_list):
    """ISV M-step (and JFA's ``m_step_u``): U from summed accumulators.

    Sums the pairs, then solves ``U_c = A2_c A1_c^-1`` for every Gaussian c and stores U in
    ``model``.  A Gaussian that no session reached (``A1_c == 0``) keeps its previous block of
    U, where the reference inverted the zero matrix.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); its U is replaced.
    acc_U_A1_acc_U_A2_list : list of (ndarray, ndarray)
        ``(A1, A2)`` pairs from :func:`e_step` or :func:`e_step_u`: A1 of shape (C, r_U, r_U),
        A2 of shape (C * D, r_U).

    Returns
    -------
    ndarray of shape (C * D, r_U)
        The new U (read-only; also ``model.U``).

    Raises
    ------
    ValueError
        The list is empty.
    FloatingPointError
        An A1 block is not positive definite (NaN or degenerate statistics).
    """
    return update_U(model, *_reduce(acc_U_A1_acc_U_A2_list, "acc_U_A1_acc_U_A2_list"))


# -- JFA (V, then U, then D phases) -------------------------------------------------------------
def e_step_v(model, X, y, n_samples_per_class, n_acc, f_acc):
    """JFA V-phase E-step: the V accumulators ``(A1, A2)`` with x = 0 and z = 0.

    Computes every class's speaker factor y from its summed statistics, then the V
    accumulators.  Sum the pairs of several calls with :func:`m_step_v`.  ``model``'s
    parameters are not changed.

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs V.
    X : list of GMMStats
        The training sessions, each of shape (C, D).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class (``K = len(n_samples_per_class)``).
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    A1 : ndarray of shape (C, r_V, r_V)
        ``sum N_c (L + y y^T)`` per Gaussian, with ``L`` the posterior covariance.
    A2 : ndarray of shape (C * D, r_V)
        ``sum f~ y^T``, with ``f~`` the centred first-order statistics.
    """
    VProd = _compute_vprod(model)
    latent_x, latent_y, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_y = update_y(model, X=X, y=y, n_classes=len(n_samples_per_class), VProd=VProd,
                        latent_x=latent_x, latent_y=latent_y, latent_z=latent_z,
                        n_acc=n_acc, f_acc=f_acc)
    return compute_accumulators_V(model, X, y, VProd, n_acc, f_acc, latent_x, latent_y, latent_z)


def m_step_v(model, acc_V_A1_acc_V_A2_list):
    """JFA V-phase M-step: V from summed accumulators.

    Sums the pairs, then solves ``V_c = A2_c A1_c^-1`` for every Gaussian c and stores V in
    ``model``; a Gaussian that no class reached keeps its previous block, where the reference
    inverted the zero matrix.

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); its V is replaced.
    acc_V_A1_acc_V_A2_list : list of (ndarray, ndarray)
        ``(A1, A2)`` pairs from :func:`e_step_v`: A1 of shape (C, r_V, r_V), A2 of shape
        (C * D, r_V).

    Returns
    -------
    ndarray of shape (C * D, r_V)
        The new V (read-only; also ``model.V``).

    Raises
    ------
    ValueError
        The list is empty.
    FloatingPointError
        An A1 block is not positive definite.
    """
    A1, A2 = _reduce(acc_V_A1_acc_V_A2_list, "acc_V_A1_acc_V_A2_list")
    return model._store("V", kfa.update_subspace(A1, A2, fitted_value(model, "V")))


def finalize_v(model, X, y, n_samples_per_class, n_acc, f_acc):
    """The speaker factors y of every class with the final V (x = 0, z = 0).

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs V.
    X : list of GMMStats
        The training sessions, each of shape (C, D).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class (``K = len(n_samples_per_class)``).
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    ndarray of shape (K, r_V)
        ``latent_y`` for :func:`e_step_u`, :func:`finalize_u` and :func:`e_step_d`.
    """
    latent_x, latent_y, latent_z = initialize_XYZ(model, n_samples_per_class)
    return update_y(model, X=X, y=y, n_classes=len(n_samples_per_class),
                    VProd=_compute_vprod(model), latent_x=latent_x, latent_y=latent_y,
                    latent_z=latent_z, n_acc=n_acc, f_acc=f_acc)


def e_step_u(model, X, y, n_samples_per_class, latent_y):
    """JFA U-phase E-step: the U accumulators ``(A1, A2)`` with the given y and z = 0.

    Computes every session's channel factor x, centred on ``m + V y_k`` of its class, then
    the U accumulators.  Sum the pairs with :func:`m_step` (``JFAMachine.m_step_u``).

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs U and V.
    X : list of GMMStats
        The training sessions, each of shape (C, D).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class (``K = len(n_samples_per_class)``).
    latent_y : array-like of shape (K, r_V)
        The speaker factors, as :func:`finalize_v` returns them.

    Returns
    -------
    A1 : ndarray of shape (C, r_U, r_U)
        ``sum N_c (L + x x^T)`` per Gaussian, with ``L`` the posterior covariance.
    A2 : ndarray of shape (C * D, r_U)
        ``sum f~ x^T``, with ``f~`` the centred first-order statistics.
    """
    UProd = _compute_uprod(model)
    _, _, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_x = compute_latent_x(model, X=X, y=y, n_classes=len(n_samples_per_class), UProd=UProd,
                                latent_y=latent_y)
    return compute_accumulators_U(model, X, y, UProd, latent_x, latent_y, latent_z)


def finalize_u(model, X, y, n_samples_per_class, latent_y):
    """The channel factors x of every session with the final U and the given y (z = 0).

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs U and V.
    X : list of GMMStats
        The training sessions, each of shape (C, D).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class (``K = len(n_samples_per_class)``).
    latent_y : array-like of shape (K, r_V)
        The speaker factors, as :func:`finalize_v` returns them.

    Returns
    -------
    list of ndarray
        Element k has shape (r_U, n_k): the x of class k's sessions in the order of ``X``
        (``None`` for a class with no session in ``y``).
    """
    return compute_latent_x(model, X=X, y=y, n_classes=len(n_samples_per_class),
                            UProd=_compute_uprod(model), latent_y=latent_y)


def e_step_d(model, X, y, n_samples_per_class, latent_x, latent_y, n_acc, f_acc):
    """JFA D-phase E-step: the D accumulators ``(A1, A2)`` with the given x and y.

    Computes the z of every class present in ``y`` (z starts at 0), then the D accumulators
    over those classes.  Sum the pairs with :func:`m_step_d`.

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs U, V and D.
    X : list of GMMStats
        The training sessions, each of shape (C, D).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_samples_per_class : sequence of int, of length K
        The number of sessions of each class (``K = len(n_samples_per_class)``).
    latent_x : list of array-like
        Element k of shape (r_U, n_k): the x of class k's sessions, as :func:`finalize_u`
        returns them.
    latent_y : array-like of shape (K, r_V)
        The speaker factors, as :func:`finalize_v` returns them.
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    A1 : ndarray of shape (C * D,)
        ``sum (L_D + z^2) N``, element-wise over the supervector.
    A2 : ndarray of shape (C * D,)
        ``sum f~ z``, with ``f~`` the class's centred first-order statistics.
    """
    _, _, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_z = update_z(model, X, y, latent_x, latent_y, latent_z, n_acc, f_acc)
    return compute_accumulators_D(model, X, y, latent_x, latent_y, latent_z, n_acc, f_acc)


def m_step_d(model, acc_D_A1_acc_D_A2_list):
    """JFA D-phase M-step: ``D = A2 / A1`` from summed accumulators.

    Sums the pairs and stores the element-wise ratio as D in ``model``.  Where ``A1`` is 0 (a
    Gaussian no class reached) D keeps its previous value (0 if it had none); the reference
    divided there (NaN).

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); its D is replaced.
    acc_D_A1_acc_D_A2_list : list of (ndarray, ndarray)
        ``(A1, A2)`` pairs from :func:`e_step_d`, each of shape (C * D,).

    Returns
    -------
    ndarray of shape (C * D,)
        The new D (read-only; also ``model.D``).

    Raises
    ------
    ValueError
        The list is empty.
    """
    A1, A2 = _reduce(acc_D_A1_acc_D_A2_list, "acc_D_A1_acc_D_A2_list")
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = fitted_value(model, "D")
        D = np.where(A1 != 0, A2 / A1, 0.0 if previous is None else previous)
    return model._store("D", D)
