"""The reference's ISV/JFA training steps (``e_step``, ``m_step``, the JFA V/U/D phases).

Compatibility only, like :mod:`._steps`, whose single updates they chain; attached as methods
in the class bodies of :class:`~emkit.factor_analysis.ISVMachine` (``e_step``, ``m_step``) and
:class:`~emkit.factor_analysis.JFAMachine` (``e_step_v`` ... ``m_step_d``).
"""

from __future__ import annotations

import numpy as np

from .._fitted import fitted_value
from .._kernels import factor_analysis as kfa
from ._steps import (_compute_uprod, _compute_vprod, compute_accumulators_D,
                     compute_accumulators_U, compute_accumulators_V, compute_latent_x,
                     initialize_XYZ, update_U, update_y, update_z)


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
    """x at z = 0, then z, then the U accumulators with the new z: ``(A1, A2)``."""
    K = len(n_samples_per_class)
    UProd = _compute_uprod(model)
    _, _, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_x = compute_latent_x(model, X=X, y=y, n_classes=K, UProd=UProd)
    latent_z = update_z(model, X, y, latent_x, None, latent_z, n_acc, f_acc)
    return compute_accumulators_U(model, X, y, UProd, latent_x, None, latent_z)


def m_step(model, acc_U_A1_acc_U_A2_list):
    """U from the sum of a list of ``(A1, A2)`` pairs; returns U."""
    return update_U(model, *_reduce(acc_U_A1_acc_U_A2_list, "acc_U_A1_acc_U_A2_list"))


# -- JFA (V, then U, then D phases) -------------------------------------------------------------
def e_step_v(model, X, y, n_samples_per_class, n_acc, f_acc):
    """y at x = z = 0, then the V accumulators ``(A1, A2)``."""
    VProd = _compute_vprod(model)
    latent_x, latent_y, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_y = update_y(model, X=X, y=y, n_classes=len(n_samples_per_class), VProd=VProd,
                        latent_x=latent_x, latent_y=latent_y, latent_z=latent_z,
                        n_acc=n_acc, f_acc=f_acc)
    return compute_accumulators_V(model, X, y, VProd, n_acc, f_acc, latent_x, latent_y, latent_z)


def m_step_v(model, acc_V_A1_acc_V_A2_list):
    """V from the sum of a list of ``(A1, A2)`` pairs; returns V."""
    A1, A2 = _reduce(acc_V_A1_acc_V_A2_list, "acc_V_A1_acc_V_A2_list")
    return model._store("V", kfa.update_subspace(A1, A2, fitted_value(model, "V")))


def finalize_v(model, X, y, n_samples_per_class, n_acc, f_acc):
    """The last y (K, r_V) with the final V (x = z = 0)."""
    latent_x, latent_y, latent_z = initialize_XYZ(model, n_samples_per_class)
    return update_y(model, X=X, y=y, n_classes=len(n_samples_per_class),
                    VProd=_compute_vprod(model), latent_x=latent_x, latent_y=latent_y,
                    latent_z=latent_z, n_acc=n_acc, f_acc=f_acc)


def e_step_u(model, X, y, n_samples_per_class, latent_y):
    """x with the given y (z = 0), then the U accumulators ``(A1, A2)``."""
    UProd = _compute_uprod(model)
    _, _, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_x = compute_latent_x(model, X=X, y=y, n_classes=len(n_samples_per_class), UProd=UProd,
                                latent_y=latent_y)
    return compute_accumulators_U(model, X, y, UProd, latent_x, latent_y, latent_z)


def finalize_u(model, X, y, n_samples_per_class, latent_y):
    """The last x (list of (r_U, n_k)) with the final U and the given y."""
    return compute_latent_x(model, X=X, y=y, n_classes=len(n_samples_per_class),
                            UProd=_compute_uprod(model), latent_y=latent_y)


def e_step_d(model, X, y, n_samples_per_class, latent_x, latent_y, n_acc, f_acc):
    """z with the given x and y, then the D accumulators ``(A1, A2)`` (both (CD,))."""
    _, _, latent_z = initialize_XYZ(model, n_samples_per_class)
    latent_z = update_z(model, X, y, latent_x, latent_y, latent_z, n_acc, f_acc)
    return compute_accumulators_D(model, X, y, latent_x, latent_y, latent_z, n_acc, f_acc)


def m_step_d(model, acc_D_A1_acc_D_A2_list):
    """``D = A2 / A1`` from the sum of a list of ``(A1, A2)`` pairs; returns D."""
    A1, A2 = _reduce(acc_D_A1_acc_D_A2_list, "acc_D_A1_acc_D_A2_list")
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = fitted_value(model, "D")
        D = np.where(A1 != 0, A2 / A1, 0.0 if previous is None else previous)
    return model._store("D", D)
