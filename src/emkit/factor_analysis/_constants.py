"""Constants derived from the parameters of an ISV/JFA machine and its UBM.

:class:`Constants` is a frozen dataclass built by :func:`build` from U, V, D and the UBM; the
machine caches it with :func:`emkit._fitted.derived`, so assigning U, V or D (fit, a user, a
loaded file) drops it, and rebuilds it when the UBM's means or variances change in place
(:meth:`Constants.is_current`).  Training, enrolment and scoring all take it as an argument.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .._kernels import factor_analysis as kfa


def same(cached: np.ndarray, value) -> bool:
    """``np.array_equal`` for a cached float64 array, with less overhead (called per score)."""
    value = np.asarray(value)
    return cached.shape == value.shape and bool((cached == value).all())


@dataclass(frozen=True, eq=False)
class Constants:
    """UBM supervectors and the U/V-derived products of a machine (shapes with r = r_U).

    ``scratch`` is the scoring caches that depend on these constants only: ``"model"`` (the
    score terms of the last model scored) and ``"probes"`` (channel factors of recent probes).
    """

    U: np.ndarray  # (CD, r_U)
    V: np.ndarray | None  # (CD, r_V), JFA
    D: np.ndarray | None  # (CD,)
    ubm: object
    key: tuple  # what initial values depend on (see FactorAnalysisBase._default_key)
    means: np.ndarray  # (C, D) copies of the UBM's
    variances: np.ndarray  # (C, D)
    shape: tuple  # (C, D)
    m: np.ndarray  # mean supervector (CD,)
    var: np.ndarray  # variance supervector (CD,)
    U_over_var: np.ndarray  # Sigma^-1 U (CD, r_U)
    uprod: np.ndarray  # U_c^T Sigma_c^-1 U_c (C, r_U, r_U)
    W_mean: np.ndarray  # sum_d m_cd U_cd / var_cd (C, r_U): U^T Sigma^-1 (N m) = n @ W_mean
    n_products: np.ndarray  # kfa.projection_products(W_mean, uprod)
    V_over_var: np.ndarray | None = None  # Sigma^-1 V (CD, r_V)
    vprod: np.ndarray | None = None  # (C, r_V, r_V)
    v_products: np.ndarray | None = None
    scratch: dict = field(default_factory=dict)

    @functools.cached_property
    def VtU(self) -> np.ndarray | None:
        """``V_c^T Sigma_c^-1 U_c`` flattened (r_V, C*r_U) (JFA scoring; None for ISV)."""
        if self.V is None:
            return None
        C, Dim = self.shape
        VtU = np.matmul(self.V.reshape(C, Dim, -1).transpose(0, 2, 1),
                        self.U_over_var.reshape(C, Dim, -1))
        return np.ascontiguousarray(VtU.transpose(1, 0, 2).reshape(self.V.shape[1], -1))

    def is_current(self, ubm, key=None) -> bool:
        """True while the UBM is the same object with the same means and variances (and, when
        ``key`` is given, the initial values were drawn for it)."""
        return (
            self.ubm is ubm
            and same(self.means, ubm.means)
            and same(self.variances, ubm.variances)
            and (key is None or key == self.key)
        )


def _subspace_parts(W, m, variances):
    """``(W / var, W_c^T Sigma_c^-1 W_c, W_mean, projection_products)`` of a subspace W (CD, r)
    (see :class:`Constants`), by slices of Gaussians on the training threads (many small
    products: one BLAS thread each)."""
    from ._mstep import by_gaussians
    from ._training import session_threads

    (C, D), r = variances.shape, W.shape[1]
    W_over_var, wprod = np.empty(W.shape), np.empty((C, r, r))
    products = np.empty((C, r + kfa.packed_size(r)))

    def fill(gs):
        rows = slice(gs.start * D, gs.stop * D)
        np.divide(W[rows], variances[gs].reshape(-1, 1), out=W_over_var[rows])
        wprod[gs] = kfa.subspace_products(W[rows], variances[gs])
        W_mean = kfa.weighted_blocks(m[rows], W_over_var[rows], gs.stop - gs.start)
        products[gs] = kfa.projection_products(W_mean, wprod[gs])

    by_gaussians(fill, C, session_threads())
    return W_over_var, wprod, np.ascontiguousarray(products[:, :r]), products


def check_shapes(owner: str, U, V, D, CD: int) -> None:
    """Refuse parameters (assigned, or left by a fit with another UBM) whose supervector size is
    not the UBM's C*D: numpy's broadcasting or indexing error named none of them."""
    for name, value, wanted in (("U", U, f"({CD}, r_U)"), ("V", V, f"({CD}, r_V)"), ("D", D, f"({CD},)")):
        ndim = 1 if name == "D" else 2
        if value is not None and (np.ndim(value) != ndim or np.shape(value)[0] != CD):
            raise ValueError(f"{owner}.{name} has shape {np.shape(value)}; the UBM (C*D = {CD}) "
                             f"needs {name} of shape {wanted}")


def build(U, V, D, ubm, key, previous: Constants | None = None) -> Constants:
    """The :class:`Constants` of the parameters ``U`` (CD, r_U), ``V`` (CD, r_V) or None, ``D``
    (CD,) or None and the trained GMM ``ubm``.  The U- (V-) products of ``previous`` (the
    constants of earlier parameters) are reused when it holds the same U (V) array object and is
    current for ``ubm``: JFA's phases update one subspace at a time."""
    means = np.array(ubm.means, dtype=np.float64)
    variances = np.array(ubm.variances, dtype=np.float64)
    m, var = means.ravel(), variances.ravel()
    C, Dim = means.shape
    reuse = previous is not None and previous.is_current(ubm)
    if reuse and previous.U is U:
        u_parts = (previous.U_over_var, previous.uprod, previous.W_mean, previous.n_products)
    else:
        u_parts = _subspace_parts(U, m, variances)
    U_over_var, uprod, W_mean, n_products = u_parts
    extra = {}
    if V is not None:
        if reuse and previous.V is V:
            V_over_var, vprod, v_products = previous.V_over_var, previous.vprod, previous.v_products
        else:
            V_over_var, vprod, _, v_products = _subspace_parts(V, m, variances)
        extra = dict(V_over_var=V_over_var, vprod=vprod, v_products=v_products)
    return Constants(
        U=U, V=V, D=D, ubm=ubm, key=key, means=means, variances=variances, shape=means.shape,
        m=m, var=var, U_over_var=U_over_var, uprod=uprod, W_mean=W_mean, n_products=n_products,
        **extra,
    )
