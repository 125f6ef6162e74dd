"""The reference's single ISV/JFA updates: latent posteriors, accumulators, U (compatibility).

``compute_latent_x``, ``update_z``, ``update_y``, ``compute_accumulators_U/V/D`` and
``update_U``, as in bob.learn.em's step API (see :mod:`._steps`, which has the rest of it, and
:mod:`._training_steps`, which chains them into whole iterations).  They take in-memory lists of
:class:`GMMStats` and class indices ``y`` in ``0..K-1`` and never modify their inputs.
"""

from __future__ import annotations

import numpy as np

from .._fitted import fitted_value
from .._kernels import factor_analysis as kfa
from ..stats import GMMStats, as_stats_sequence
from ._labels import check_class_indices
from ._scoring import stack_sessions


# -- inputs -----------------------------------------------------------------------------------
def _labelled(model, X, y, n_classes):
    X = as_stats_sequence(X)
    X = [X] if isinstance(X, GMMStats) else list(X)
    codes = check_class_indices(y, n_classes)
    if len(codes) != len(X):
        raise ValueError(
            f"X and y have inconsistent numbers of sessions: len(X) = {len(X)}, len(y) = {len(codes)}"
        )
    n, F = stack_sessions(X, model._shape(), "X")
    return codes, n, F


def _class_arrays(model, n_acc, f_acc):
    C, D = model._shape()
    n_acc = np.asarray(n_acc, dtype=np.float64)
    f_acc = np.asarray(f_acc, dtype=np.float64)
    if n_acc.ndim != 2 or n_acc.shape[1] != C:
        raise ValueError(f"n_acc must have shape (n_classes, {C}); got {n_acc.shape}")
    if f_acc.size != n_acc.shape[0] * C * D:
        raise ValueError(f"f_acc must have shape (n_classes, {C}, {D})")
    return n_acc, f_acc.reshape(n_acc.shape[0], C * D)


def _x_matrix(latent_x, codes, r):
    """(S, r) session factors from the per-class lists (missing classes count as zeros)."""
    out = np.zeros((len(codes), r))
    for k in np.unique(codes):
        idx = np.flatnonzero(codes == k)
        if latent_x is None or k >= len(latent_x) or latent_x[k] is None:
            continue
        lx = np.asarray(latent_x[k], dtype=np.float64)
        if lx.ndim != 2 or lx.shape[0] != r or lx.shape[1] < len(idx):
            raise ValueError(f"latent_x[{k}] must have shape ({r}, >= {len(idx)}); got {lx.shape}")
        out[idx] = lx[:, : len(idx)].T
    return out


def _split_by_class(x, codes, n_classes):
    out = [None] * n_classes
    for k in np.unique(codes):
        out[k] = np.ascontiguousarray(x[codes == k].T)
    return out


def _centred_sessions(model, codes, n, F, latent_y, latent_z):
    """``F_h - N_h (m + D z_k)`` minus ``N_h V y_k`` (the terms of the given latents only)."""
    c = model._constants()
    n_sv = np.repeat(n, c.shape[1], axis=1)
    offset = c.m if latent_z is None else c.m + c.D * np.asarray(latent_z, dtype=np.float64)[codes]
    centred = F - n_sv * offset
    if latent_y is not None:
        centred -= n_sv * (np.asarray(latent_y, dtype=np.float64)[codes] @ c.V.T)
    return centred


def _class_UG(model, codes, n, latent_x, n_classes):
    """``sum_{h in k} N_h U x_h`` per class, (K, CD)."""
    c = model._constants()
    G = kfa.class_weighted_sums(codes, n, _x_matrix(latent_x, codes, model.r_U), n_classes)
    return kfa.per_gaussian_products(c.U, G, c.shape[0])


# -- updates ---------------------------------------------------------------------------------
def compute_latent_x(model, *, X, y, n_classes, UProd, latent_y=None, latent_z=None):
    """The posterior means x of every session's channel factor.

    ``x_h = L(U, N_h) U^T Sigma^-1 (F_h - N_h (m + V y_k + D z_k))`` with ``k`` the class of
    session h and ``L(U, N) = (I + sum_c N_c U_c^T Sigma_c^-1 U_c)^-1``; the ``V y`` and ``D z``
    terms are left out when ``latent_y`` or ``latent_z`` is ``None``.  Unlike the reference, ``X``
    is an in-memory list (not a dask-delayed one per class).

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); needs U (and V with ``latent_y``, D
        with ``latent_z``).
    X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_classes : int
        K, the number of classes: the length of the list returned.
    UProd : array-like of shape (C, r_U, r_U)
        ``U_c^T Sigma_c^-1 U_c`` of every Gaussian (the machine's ``_compute_uprod()``).
    latent_y : array-like of shape (K, r_V), or None
        The speaker factors (JFA); ``None`` leaves out the ``V y`` term (ISV).
    latent_z : array-like of shape (K, C * D), or None
        The class offsets z; ``None`` leaves out the ``D z`` term.

    Returns
    -------
    list of ndarray
        Element k has shape (r_U, n_k): the x of class k's sessions in the order of ``X``;
        ``None`` for a class with no session in ``y``.
    """
    codes, n, F = _labelled(model, X, y, n_classes)
    c = model._constants()
    centred = _centred_sessions(model, codes, n, F, latent_y, latent_z)
    UProd = np.asarray(UProd, dtype=np.float64)
    x, _ = kfa.latent_posterior(n, centred, c.U / c.var[:, None], UProd)
    return _split_by_class(x, codes, n_classes)


def compute_accumulators_U(model, X, y, UProd, latent_x, latent_y, latent_z):
    """The accumulators of the U update from given latent factors.

    For every session h of class k, with its x_h from ``latent_x`` and
    ``f~_h = F_h - N_h (m + V y_k + D z_k)`` (terms of the latents given only):
    ``A1_c = sum_h N_hc (L(U, N_h) + x_h x_h^T)`` and ``A2 = sum_h f~_h x_h^T``.  The y and z
    may differ from those x was computed with (ISV's :func:`._training_steps.e_step` passes the
    updated z, as the reference does).

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); needs U (and V with ``latent_y``, D
        with ``latent_z``).
    X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    UProd : array-like of shape (C, r_U, r_U)
        ``U_c^T Sigma_c^-1 U_c`` of every Gaussian (the machine's ``_compute_uprod()``).
    latent_x : list of array-like
        Element k of shape (r_U, n_k): the x of class k's sessions in the order of ``X``, as
        :func:`compute_latent_x` returns them; a missing or ``None`` element counts as zeros.
    latent_y : array-like of shape (K, r_V), or None
        The speaker factors (JFA); ``None`` leaves out the ``V y`` term (ISV).
    latent_z : array-like of shape (K, C * D), or None
        The class offsets z; ``None`` leaves out the ``D z`` term.

    Returns
    -------
    A1 : ndarray of shape (C, r_U, r_U)
    A2 : ndarray of shape (C * D, r_U)
    """
    n_classes = max(len(latent_x), int(np.max(y)) + 1 if len(y) else 0)
    codes, n, F = _labelled(model, X, y, n_classes)
    cov = kfa.posterior_covariance(n, np.asarray(UProd, dtype=np.float64))
    centred = _centred_sessions(model, codes, n, F, latent_y, latent_z)
    return kfa.accumulate_subspace(n, centred, _x_matrix(latent_x, codes, model.r_U), cov)


def update_U(model, acc_U_A1, acc_U_A2):
    """U from its accumulators: ``U_c = A2_c A1_c^-1`` for every Gaussian c; stored in ``model``.

    A Gaussian that no session reached (``A1_c == 0``) keeps its previous block of U, where the
    reference inverted the zero matrix.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); its U is replaced.
    acc_U_A1 : array-like of shape (C, r_U, r_U)
        Summed ``A1`` of :func:`compute_accumulators_U`.
    acc_U_A2 : array-like of shape (C * D, r_U)
        Summed ``A2`` of :func:`compute_accumulators_U`.

    Returns
    -------
    ndarray of shape (C * D, r_U)
        The new U (read-only; also ``model.U``).

    Raises
    ------
    FloatingPointError
        An ``A1_c`` is not positive definite (NaN or degenerate statistics).
    """
    A1, A2 = (np.asarray(a, dtype=np.float64) for a in (acc_U_A1, acc_U_A2))
    return model._store("U", kfa.update_subspace(A1, A2, fitted_value(model, "U")))


def _z_posterior(model, X, y, latent_x, latent_y, n_acc, f_acc):
    """The classes present in ``y`` with their centred statistics, ``N_sv`` and z posterior."""
    n_acc, f_acc = _class_arrays(model, n_acc, f_acc)
    codes, n, F = _labelled(model, X, y, len(n_acc))
    c = model._constants()
    present = np.unique(codes)
    offset = c.m if latent_y is None else c.m + np.asarray(latent_y, dtype=np.float64) @ c.V.T
    centred = (f_acc - np.repeat(n_acc, c.shape[1], axis=1) * offset
               - _class_UG(model, codes, n, latent_x, len(n_acc)))[present]
    N_sv = np.repeat(n_acc[present], c.shape[1], axis=1)
    z, cov = kfa.diagonal_posterior(N_sv, centred, c.D, c.var)
    return present, centred, N_sv, z, cov


def update_z(model, X, y, latent_x, latent_y, latent_z, n_acc, f_acc):
    """New class offsets z for the classes present in ``y``.

    ``z_k = L_D(N_k) D Sigma^-1 (F_k - N_k (m + V y_k) - sum_(h in k) N_h U x_h)`` element-wise,
    with ``L_D(N) = 1 / (1 + D^2 Sigma^-1 N)``.  The reference overwrote the rows of
    ``latent_z`` in place and returned it; emkit returns a new array and leaves ``latent_z`` as
    it was.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); needs U and D (and V with
        ``latent_y``).
    X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    latent_x : list of array-like
        Element k of shape (r_U, n_k): the x of class k's sessions in the order of ``X``, as
        :func:`compute_latent_x` returns them; a missing or ``None`` element counts as zeros.
    latent_y : array-like of shape (K, r_V), or None
        The speaker factors (JFA); ``None`` leaves out the ``V y`` term (ISV).
    latent_z : array-like of shape (K, C * D)
        The current z: the rows of the classes absent from ``y`` are returned unchanged.
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    ndarray of shape (K, C * D)
    """
    present, _, _, z, _ = _z_posterior(model, X, y, latent_x, latent_y, n_acc, f_acc)
    out = np.array(latent_z, dtype=np.float64, copy=True)
    out[present] = z
    return out


def compute_accumulators_D(model, X, y, latent_x, latent_y, latent_z, n_acc, f_acc):
    """The accumulators of the D update over the classes present in ``y``.

    With ``f~_k = F_k - N_k (m + V y_k) - sum_(h in k) N_h U x_h`` and ``L_D`` as in
    :func:`update_z`: ``A1 = sum_k (L_D(N_k) + z_k^2) N_k`` and ``A2 = sum_k f~_k z_k``,
    element-wise over the supervector.

    Parameters
    ----------
    model : ISVMachine or JFAMachine
        The machine (``self`` when called as its method); needs U and D (and V with
        ``latent_y``).
    X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    latent_x : list of array-like
        Element k of shape (r_U, n_k): the x of class k's sessions in the order of ``X``, as
        :func:`compute_latent_x` returns them; a missing or ``None`` element counts as zeros.
    latent_y : array-like of shape (K, r_V), or None
        The speaker factors (JFA); ``None`` leaves out the ``V y`` term (ISV).
    latent_z : array-like of shape (K, C * D)
        The class offsets z, as :func:`update_z` returns them.
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    A1 : ndarray of shape (C * D,)
    A2 : ndarray of shape (C * D,)
    """
    present, centred, N_sv, _, cov = _z_posterior(model, X, y, latent_x, latent_y, n_acc, f_acc)
    z = np.asarray(latent_z, dtype=np.float64)[present]
    return ((cov + z * z) * N_sv).sum(axis=0), (centred * z).sum(axis=0)


def _centred_y(model, codes, n, latent_x, latent_z, n_acc, f_acc):
    # F_k - N_k (m + D z_k) - sum_h N_h U x_h  (the reference had ``m - D z``)
    c = model._constants()
    offset = c.m + c.D * np.asarray(latent_z, dtype=np.float64)
    return (f_acc - np.repeat(n_acc, c.shape[1], axis=1) * offset
            - _class_UG(model, codes, n, latent_x, len(n_acc)))


def update_y(model, *, X, y, n_classes, VProd, latent_x, latent_y, latent_z, n_acc, f_acc):
    """New speaker factors y of every class 0..n_classes-1 (JFA).

    ``y_k = L(V, N_k) V^T Sigma^-1 (F_k - N_k (m + D z_k) - sum_(h in k) N_h U x_h)``.  The
    reference centred on ``m - D z_k`` (a sign error, which only matters when z is not 0) and
    overwrote ``latent_y`` in place; emkit uses ``m + D z_k`` and returns a new array.

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs U, V and D.
    X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    n_classes : int
        K, the number of classes (rows of ``n_acc``).
    VProd : array-like of shape (C, r_V, r_V)
        ``V_c^T Sigma_c^-1 V_c`` of every Gaussian (the machine's ``_compute_vprod()``).
    latent_x : list of array-like
        Element k of shape (r_U, n_k): the x of class k's sessions in the order of ``X``, as
        :func:`compute_latent_x` returns them; a missing or ``None`` element counts as zeros.
    latent_y : array-like of shape (K, r_V)
        Not used: every y is recomputed (kept for the reference's signature).
    latent_z : array-like of shape (K, C * D)
        The class offsets z (zeros during the reference's V phase).
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.

    Returns
    -------
    ndarray of shape (K, r_V)
    """
    n_acc, f_acc = _class_arrays(model, n_acc, f_acc)
    codes, n, F = _labelled(model, X, y, n_classes)
    centred = _centred_y(model, codes, n, latent_x, latent_z, n_acc, f_acc)
    c = model._constants()
    out, _ = kfa.latent_posterior(n_acc, centred, c.V / c.var[:, None],
                                  np.asarray(VProd, dtype=np.float64))
    return out


def compute_accumulators_V(model, X, y, VProd, n_acc, f_acc, latent_x, latent_y, latent_z):
    """The accumulators of the V update over the classes present in ``y`` (JFA).

    With ``f~_k = F_k - N_k (m + D z_k) - sum_(h in k) N_h U x_h``:
    ``A1_c = sum_k N_kc (L(V, N_k) + y_k y_k^T)`` and ``A2 = sum_k f~_k y_k^T``.

    Parameters
    ----------
    model : JFAMachine
        The machine (``self`` when called as its method); needs U, V and D.
    X : list of GMMStats
        The training sessions, each of shape (C, D) (a bare GMMStats is one session).
    y : array-like of shape (n_sessions,)
        The class index 0..K-1 of each session of ``X`` (not the labels given to ``fit``).
    VProd : array-like of shape (C, r_V, r_V)
        ``V_c^T Sigma_c^-1 V_c`` of every Gaussian (the machine's ``_compute_vprod()``).
    n_acc : array-like of shape (K, C)
        Zeroth-order statistics summed per class, as :func:`._steps.initialize` returns them.
    f_acc : array-like of shape (K, C, D)
        First-order statistics summed per class, likewise.
    latent_x : list of array-like
        Element k of shape (r_U, n_k): the x of class k's sessions in the order of ``X``, as
        :func:`compute_latent_x` returns them; a missing or ``None`` element counts as zeros.
    latent_y : array-like of shape (K, r_V)
        The speaker factors, as :func:`update_y` returns them.
    latent_z : array-like of shape (K, C * D)
        The class offsets z.

    Returns
    -------
    A1 : ndarray of shape (C, r_V, r_V)
    A2 : ndarray of shape (C * D, r_V)
    """
    n_acc, f_acc = _class_arrays(model, n_acc, f_acc)
    codes, n, F = _labelled(model, X, y, len(n_acc))
    present = np.unique(codes)
    centred = _centred_y(model, codes, n, latent_x, latent_z, n_acc, f_acc)[present]
    cov = kfa.posterior_covariance(n_acc[present], np.asarray(VProd, dtype=np.float64))
    return kfa.accumulate_subspace(n_acc[present], centred,
                                   np.asarray(latent_y, dtype=np.float64)[present], cov)
