"""The reference's public step methods of ISV/JFA (``update_z``, ``e_step_v``, ...), vectorised.

``fit`` does not use them (it runs fused single-pass E-steps, see :mod:`emkit.factor_analysis`);
they exist so that code written against bob.learn.em's step API keeps working, with the same
meaning.  They take in-memory lists of :class:`GMMStats` and **class indices** ``y`` in
``0..K-1`` (the rows of ``n_acc``/``f_acc``), like the reference, and never modify their inputs.
A latent ``x`` is given per class as a list of (r_U, n_k) arrays (sessions in input order).
"""

from __future__ import annotations

import numpy as np

from ._factor_analysis_data import check_class_indices, check_finite_rows, check_stats
from ._kernels import factor_analysis as kfa
from .stats import GMMStats, as_stats_sequence


def stack_sessions(X, shape, name="X"):
    """``n`` (S, C) and ``F`` (S, CD) float64 of a list of GMMStats of the given (C, D) shape."""
    C, D = shape
    n = np.empty((len(X), C))
    F = np.empty((len(X), C * D))
    for i, s in enumerate(X):
        check_stats(s, i, shape, name)
        n[i] = s.n
        F[i] = np.reshape(s.sum_px, -1)
    check_finite_rows(n, name)
    check_finite_rows(F, name)
    return n, F


def _reduce(pairs, name):
    pairs = list(pairs)
    if not pairs:
        raise ValueError(f"{name} is empty: expected a list of (A1, A2) accumulator pairs")
    A1 = sum(
        (np.asarray(p[0], dtype=np.float64) for p in pairs[1:]),
        np.asarray(pairs[0][0], dtype=np.float64),
    )
    A2 = sum(
        (np.asarray(p[1], dtype=np.float64) for p in pairs[1:]),
        np.asarray(pairs[0][1], dtype=np.float64),
    )
    return A1, A2


class ReferenceStepsMixin:
    """Step methods shared by ISV and JFA (see the module docstring)."""

    # -- inputs -------------------------------------------------------------------------------
    def _labelled(self, X, y, n_classes):
        X = as_stats_sequence(X)
        if isinstance(X, GMMStats):
            X = [X]
        X = list(X)
        codes = check_class_indices(y, n_classes)
        if len(codes) != len(X):
            raise ValueError(
                f"X and y have inconsistent numbers of sessions: len(X) = {len(X)}, len(y) = {len(codes)}"
            )
        n, F = stack_sessions(X, self._shape(), "X")
        return codes, n, F

    def _class_arrays(self, n_acc, f_acc):
        C, D = self._shape()
        n_acc = np.asarray(n_acc, dtype=np.float64)
        f_acc = np.asarray(f_acc, dtype=np.float64)
        if n_acc.ndim != 2 or n_acc.shape[1] != C:
            raise ValueError(f"n_acc must have shape (n_classes, {C}); got {n_acc.shape}")
        f_acc = (
            f_acc.reshape(n_acc.shape[0], C * D) if f_acc.size == n_acc.shape[0] * C * D else None
        )
        if f_acc is None:
            raise ValueError(f"f_acc must have shape (n_classes, {C}, {D})")
        return n_acc, f_acc

    @staticmethod
    def _x_matrix(latent_x, codes, r):
        """(S, r) session factors from the per-class lists (missing classes count as zeros)."""
        out = np.zeros((len(codes), r))
        for k in np.unique(codes):
            idx = np.flatnonzero(codes == k)
            if latent_x is None or k >= len(latent_x) or latent_x[k] is None:
                continue
            lx = np.asarray(latent_x[k], dtype=np.float64)
            if lx.ndim != 2 or lx.shape[0] != r or lx.shape[1] < len(idx):
                raise ValueError(
                    f"latent_x[{k}] must have shape ({r}, >= {len(idx)}); got {lx.shape}"
                )
            out[idx] = lx[:, : len(idx)].T
        return out

    @staticmethod
    def _split_by_class(x, codes, n_classes):
        out = [None] * n_classes
        for k in np.unique(codes):
            out[k] = np.ascontiguousarray(x[codes == k].T)
        return out

    def _centred_sessions(self, codes, n, F, latent_y, latent_z):
        """``F_h - N_h (m + D z_k)`` minus ``N_h V y_k`` (the terms of the given latents only)."""
        (C, D), m, _ = self._sv()
        n_sv = np.repeat(n, D, axis=1)
        offset = (
            m
            if latent_z is None
            else m + self._get("D") * np.asarray(latent_z, dtype=np.float64)[codes]
        )
        centred = F - n_sv * offset
        if latent_y is not None:
            centred -= n_sv * (np.asarray(latent_y, dtype=np.float64)[codes] @ self._get("V").T)
        return centred

    def _class_UG(self, codes, n, latent_x, n_classes):
        """``sum_{h in k} N_h U x_h`` per class, (K, CD)."""
        xm = self._x_matrix(latent_x, codes, self.r_U)
        G = kfa.class_weighted_sums(codes, n, xm, n_classes)
        return kfa.per_gaussian_products(self._get("U"), G, self._shape()[0])

    # -- shared steps -------------------------------------------------------------------------
    def estimate_number_of_classes(self, y) -> int:
        """Number of distinct labels in ``y``."""
        from ._factor_analysis_data import encode_labels

        return len(encode_labels(y)[1])

    def initialize(self, ubm_projected_X, y, n_classes):
        """Initialise the missing parameters; return ``(n_acc (K, C), f_acc (K, C, D))`` per class.

        ``y`` holds class indices 0..n_classes-1, each at least once.
        """
        self._create_missing()
        codes, n, F = self._labelled(ubm_projected_X, y, n_classes)
        counts = np.bincount(codes, minlength=n_classes)
        if (counts == 0).any():
            raise ValueError(
                f"y: class {int(np.flatnonzero(counts == 0)[0])} has no session (y must hold every "
                f"class index 0..{n_classes - 1} at least once)"
            )
        C, D = self._shape()
        return kfa.group_sum(codes, n, n_classes), kfa.group_sum(codes, F, n_classes).reshape(
            n_classes, C, D
        )

    def initialize_XYZ(self, n_samples_per_class, like=None):
        """Zero latents: x list of (r_U, n_k), y (K, r_V) or None, z (K, CD)."""
        K = len(n_samples_per_class)
        latent_x = [np.zeros((self.r_U, int(n_k))) for n_k in n_samples_per_class]
        latent_y = np.zeros((K, self.r_V)) if self.r_V else None
        return latent_x, latent_y, np.zeros((K, self.supervector_dimension))

    def compute_latent_x(self, *, X, y, n_classes, UProd, latent_y=None, latent_z=None):
        """Posterior means x_h of every session, as a list of (r_U, n_k) per class (None when absent)."""
        codes, n, F = self._labelled(X, y, n_classes)
        var = self.variance_supervector
        centred = self._centred_sessions(codes, n, F, latent_y, latent_z)
        x, _ = kfa.latent_posterior(
            n, centred, self._get("U") / var[:, None], np.asarray(UProd, dtype=np.float64)
        )
        return self._split_by_class(x, codes, n_classes)

    def compute_accumulators_U(self, X, y, UProd, latent_x, latent_y, latent_z):
        """``(A1 (C, r_U, r_U), A2 (CD, r_U))`` of the U update from the given latents."""
        n_classes = max(len(latent_x), int(np.max(y)) + 1 if len(y) else 0)
        codes, n, F = self._labelled(X, y, n_classes)
        cov = kfa.posterior_covariance(n, np.asarray(UProd, dtype=np.float64))
        centred = self._centred_sessions(codes, n, F, latent_y, latent_z)
        return kfa.accumulate_subspace(n, centred, self._x_matrix(latent_x, codes, self.r_U), cov)

    def update_U(self, acc_U_A1, acc_U_A2):
        """``U_c = A2_c A1_c^-1`` for every Gaussian; stores and returns U (CD, r_U)."""
        U = kfa.update_subspace(
            np.asarray(acc_U_A1, dtype=np.float64),
            np.asarray(acc_U_A2, dtype=np.float64),
            self.__dict__.get("_U"),
        )
        self._store("U", U, copy=False)
        return self._U

    def _centred_z(self, codes, n, latent_x, latent_y, n_acc, f_acc):
        (C, D), m, _ = self._sv()
        K = len(n_acc)
        offset = (
            m if latent_y is None else m + np.asarray(latent_y, dtype=np.float64) @ self._get("V").T
        )
        return f_acc - np.repeat(n_acc, D, axis=1) * offset - self._class_UG(codes, n, latent_x, K)

    def _z_posterior(self, X, y, latent_x, latent_y, n_acc, f_acc):
        """The classes present in ``y`` with their centred statistics, ``N_sv`` and z posterior."""
        n_acc, f_acc = self._class_arrays(n_acc, f_acc)
        codes, n, F = self._labelled(X, y, len(n_acc))
        present = np.unique(codes)
        centred = self._centred_z(codes, n, latent_x, latent_y, n_acc, f_acc)[present]
        N_sv = np.repeat(n_acc[present], self.feature_dimension, axis=1)
        z, cov = kfa.diagonal_posterior(N_sv, centred, self._get("D"), self.variance_supervector)
        return present, centred, N_sv, z, cov

    def update_z(self, X, y, latent_x, latent_y, latent_z, n_acc, f_acc):
        """New z for the classes present in ``y`` (other rows of ``latent_z`` kept); returns (K, CD)."""
        present, _, _, z, _ = self._z_posterior(X, y, latent_x, latent_y, n_acc, f_acc)
        out = np.array(latent_z, dtype=np.float64, copy=True)
        out[present] = z
        return out

    def compute_accumulators_D(self, X, y, latent_x, latent_y, latent_z, n_acc, f_acc):
        """``(A1 (CD,), A2 (CD,))`` of the D update over the classes present in ``y``."""
        present, centred, N_sv, _, cov = self._z_posterior(X, y, latent_x, latent_y, n_acc, f_acc)
        z = np.asarray(latent_z, dtype=np.float64)[present]
        return ((cov + z * z) * N_sv).sum(axis=0), (centred * z).sum(axis=0)

    def _centred_y(self, codes, n, latent_x, latent_z, n_acc, f_acc):
        # F_k - N_k (m + D z_k) - sum_h N_h U x_h  (the reference had ``m - D z``)
        (C, D), m, _ = self._sv()
        offset = m + self._get("D") * np.asarray(latent_z, dtype=np.float64)
        return (
            f_acc
            - np.repeat(n_acc, D, axis=1) * offset
            - self._class_UG(codes, n, latent_x, len(n_acc))
        )

    def update_y(self, *, X, y, n_classes, VProd, latent_x, latent_y, latent_z, n_acc, f_acc):
        """New y for every class 0..n_classes-1, (K, r_V)."""
        n_acc, f_acc = self._class_arrays(n_acc, f_acc)
        codes, n, F = self._labelled(X, y, n_classes)
        centred = self._centred_y(codes, n, latent_x, latent_z, n_acc, f_acc)
        var = self.variance_supervector
        out, _ = kfa.latent_posterior(
            n_acc, centred, self._get("V") / var[:, None], np.asarray(VProd, dtype=np.float64)
        )
        return out

    def compute_accumulators_V(self, X, y, VProd, n_acc, f_acc, latent_x, latent_y, latent_z):
        """``(A1 (C, r_V, r_V), A2 (CD, r_V))`` of the V update over the classes present in ``y``."""
        n_acc, f_acc = self._class_arrays(n_acc, f_acc)
        codes, n, F = self._labelled(X, y, len(n_acc))
        present = np.unique(codes)
        centred = self._centred_y(codes, n, latent_x, latent_z, n_acc, f_acc)[present]
        cov = kfa.posterior_covariance(n_acc[present], np.asarray(VProd, dtype=np.float64))
        return kfa.accumulate_subspace(
            n_acc[present], centred, np.asarray(latent_y, dtype=np.float64)[present], cov
        )


class ISVStepsMixin:
    """ISV's ``e_step``/``m_step`` (one iteration of ``fit`` on a list of statistics)."""

    def e_step(self, X, y, n_samples_per_class, n_acc, f_acc):
        """x at z = 0, then z, then the U accumulators with the new z: ``(A1, A2)``."""
        K = len(n_samples_per_class)
        UProd = self._compute_uprod()
        _, _, latent_z = self.initialize_XYZ(n_samples_per_class)
        latent_x = self.compute_latent_x(X=X, y=y, n_classes=K, UProd=UProd)
        latent_z = self.update_z(X, y, latent_x, None, latent_z, n_acc, f_acc)
        return self.compute_accumulators_U(X, y, UProd, latent_x, None, latent_z)

    def m_step(self, acc_U_A1_acc_U_A2_list):
        """U from the sum of a list of ``(A1, A2)`` pairs; returns U."""
        return self.update_U(*_reduce(acc_U_A1_acc_U_A2_list, "acc_U_A1_acc_U_A2_list"))


class JFAStepsMixin:
    """JFA's phase steps (V, then U, then D), each over a list of statistics."""

    def e_step_v(self, X, y, n_samples_per_class, n_acc, f_acc):
        """y at x = z = 0, then the V accumulators ``(A1, A2)``."""
        VProd = self._compute_vprod()
        latent_x, latent_y, latent_z = self.initialize_XYZ(n_samples_per_class)
        latent_y = self.update_y(
            X=X,
            y=y,
            n_classes=len(n_samples_per_class),
            VProd=VProd,
            latent_x=latent_x,
            latent_y=latent_y,
            latent_z=latent_z,
            n_acc=n_acc,
            f_acc=f_acc,
        )
        return self.compute_accumulators_V(X, y, VProd, n_acc, f_acc, latent_x, latent_y, latent_z)

    def m_step_v(self, acc_V_A1_acc_V_A2_list):
        """V from the sum of a list of ``(A1, A2)`` pairs; returns V."""
        A1, A2 = _reduce(acc_V_A1_acc_V_A2_list, "acc_V_A1_acc_V_A2_list")
        self._store("V", kfa.update_subspace(A1, A2, self.__dict__.get("_V")), copy=False)
        return self._V

    def finalize_v(self, X, y, n_samples_per_class, n_acc, f_acc):
        """The last y (K, r_V) with the final V (x = z = 0)."""
        latent_x, latent_y, latent_z = self.initialize_XYZ(n_samples_per_class)
        return self.update_y(
            X=X,
            y=y,
            n_classes=len(n_samples_per_class),
            VProd=self._compute_vprod(),
            latent_x=latent_x,
            latent_y=latent_y,
            latent_z=latent_z,
            n_acc=n_acc,
            f_acc=f_acc,
        )

    def e_step_u(self, X, y, n_samples_per_class, latent_y):
        """x with the given y (z = 0), then the U accumulators ``(A1, A2)``."""
        UProd = self._compute_uprod()
        _, _, latent_z = self.initialize_XYZ(n_samples_per_class)
        latent_x = self.compute_latent_x(
            X=X, y=y, n_classes=len(n_samples_per_class), UProd=UProd, latent_y=latent_y
        )
        return self.compute_accumulators_U(X, y, UProd, latent_x, latent_y, latent_z)

    def m_step_u(self, acc_U_A1_acc_U_A2_list):
        """U from the sum of a list of ``(A1, A2)`` pairs; returns U."""
        return self.update_U(*_reduce(acc_U_A1_acc_U_A2_list, "acc_U_A1_acc_U_A2_list"))

    def finalize_u(self, X, y, n_samples_per_class, latent_y):
        """The last x (list of (r_U, n_k)) with the final U and the given y."""
        return self.compute_latent_x(
            X=X,
            y=y,
            n_classes=len(n_samples_per_class),
            UProd=self._compute_uprod(),
            latent_y=latent_y,
        )

    def e_step_d(self, X, y, n_samples_per_class, latent_x, latent_y, n_acc, f_acc):
        """z with the given x and y, then the D accumulators ``(A1, A2)`` (both (CD,))."""
        _, _, latent_z = self.initialize_XYZ(n_samples_per_class)
        latent_z = self.update_z(X, y, latent_x, latent_y, latent_z, n_acc, f_acc)
        return self.compute_accumulators_D(X, y, latent_x, latent_y, latent_z, n_acc, f_acc)

    def m_step_d(self, acc_D_A1_acc_D_A2_list):
        """``D = A2 / A1`` from the sum of a list of ``(A1, A2)`` pairs; returns D."""
        A1, A2 = _reduce(acc_D_A1_acc_D_A2_list, "acc_D_A1_acc_D_A2_list")
        with np.errstate(divide="ignore", invalid="ignore"):
            D = np.where(A1 != 0, A2 / A1, self.__dict__.get("_D", 0.0))
        self._store("D", D, copy=False)
        return self._D
