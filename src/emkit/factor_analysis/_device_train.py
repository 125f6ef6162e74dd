"""The U training of ISV (and JFA's V, U and D phases) on a device, everything resident there.

:class:`DeviceU` keeps U, its per-iteration constants (``Sigma^-1 U``, ``U_c^T Sigma_c^-1 U_c``,
``W_mean``, JFA's projections of the class offsets), ISV's class-level arrays (``F_k - N_k m``
and the gain of ``D z_k``, computed once), the staged statistics and the accumulators on the
device between iterations.  The E-step is :func:`._device.device_pass`; the M-step is
:func:`._mstep.u_update` written on the array API for all Gaussians at once (the same algebra,
so U equals the numpy path's within rounding).  Each iteration reads back three norms (the
relative change of U, the EM loop's convergence quantity); U comes back as numpy float64 at the
end of the phase and before each checkpoint (:meth:`DeviceU.sync`).
"""

from __future__ import annotations

import numpy as np

from .._backend import _device
from .._fitted import fitted_value, set_fitted
from .._kernels import factor_analysis as kfa
from .._progress import Progress
from ._device import _staged, device_pass


class _Resident:
    """A parameter of ``machine`` (``name``) kept on the device ``dev`` during a training phase:
    ``resident()`` is its device copy, ``dirty`` says it changed since :meth:`sync`."""

    def put(self, a):
        return _device.to_device(np.asarray(a, dtype=np.float64), self.dev)

    def resident(self):
        raise NotImplementedError

    def sync(self) -> None:
        """The device's parameter stored on the machine (numpy float64), if newer."""
        if self.dirty:
            from .._backend._staging import to_host

            set_fitted(self.machine, self.name, to_host(self.resident(), self.dev), copy=False)
            self.dirty = False


class DeviceU(_Resident):
    """E-step and M-step of the U updates of ``machine`` over the in-memory training set
    ``data`` on ``dev``: ISV's (``totals`` given: the :class:`~._blocks.ClassTotals`, for the
    class offsets ``D z_k``) or JFA's (``class_offsets`` (C, D, K) numpy: ``V y_k``).
    ``name="V"``: JFA's V phase, ``data`` the classes as sessions (their summed statistics),
    no offsets; the same algebra with V in place of U.  ``what``: the name of each E-step in the
    progress lines of the ``emkit`` logger, counting the rows of ``data`` (named ``unit``) as
    they are queued on the device; None: none."""

    def __init__(self, machine, data, dev, *, totals=None, class_offsets=None, name="U",
                 what=None, unit="session"):
        self.machine, self.dev, self.xp, self.name = machine, dev, dev.xp, name
        self.what, self.unit = what, unit
        self.staged = _staged(data, dev)
        self.n_classes = data.n_classes
        c = machine._constants()
        put = self.put
        self.shape = (C, D) = c.shape
        self.means, self.variances, self.m, self.var = (put(a) for a in (c.means, c.variances,
                                                                         c.m, c.var))
        self.offsets = None if class_offsets is None else put(class_offsets)
        self.isv = None
        if totals is not None:  # ISV: D z_k = gain * (centred_k - sum_{h in k} N_h U x_h)
            N = self.xp.permute_dims(put(totals.n), (1, 0))[:, None, :]  # (C, 1, K)
            F = kfa.gaussian_major(put(totals.F), C)  # (C, D, K)
            centred = F - N * self.xp.reshape(self.means, (C, D, 1))
            D3 = self.xp.reshape(put(machine.D), (C, D, 1))
            gain = kfa.diagonal_gain(N, D3, self.xp.reshape(self.variances, (C, D, 1)))
            self.isv = (centred, gain)
        self.U = None  # U (or V) on the device, from the machine at the first E-step
        self.dirty = False

    def resident(self):
        return self.U

    def e_step(self):
        """The accumulators ``(A1, A2F, G)`` of one pass, on the device."""
        xp, (C, D) = self.xp, self.shape
        if self.U is None:
            self.U = self.put(fitted_value(self.machine, self.name))
        U = self.U
        r = U.shape[1]
        U_over_var = U / self.var[:, None]
        uprod = kfa.subspace_products(U, self.variances)
        W_mean = kfa.weighted_blocks(self.m, U_over_var, C)
        offset_proj = None
        if self.offsets is not None:  # Q[k, c] = U_c^T Sigma_c^-1 o_kc, (K, C, r)
            W3 = xp.reshape(U_over_var, (C, D, r))
            Q = xp.matmul(xp.permute_dims(self.offsets, (0, 2, 1)), W3)  # (C, K, r)
            offset_proj = xp.permute_dims(Q, (1, 0, 2))
        return device_pass(self.staged, U_over_var, uprod, W_mean, offset_proj, self.n_classes,
                           True, xp, self._progress())

    def _progress(self):
        if self.what is None:
            return None
        return Progress(self.what, self.staged.host.shape[0], self.unit)

    def m_step(self, acc) -> float:
        """The new U (kept on the device); returns its relative change."""
        xp, (C, D) = self.xp, self.shape
        A1, A2F, G = acc
        U = self.U
        r = U.shape[1]
        g = xp.sum(G, axis=0)  # sum_h N_h x_h, (C, r)
        A2 = xp.reshape(A2F, (C, D, r)) - self.means[:, :, None] * g[:, None, :]
        Gc = xp.permute_dims(G, (1, 0, 2))  # (C, K, r)
        offsets = self.offsets
        if self.isv is not None:
            centred, gain = self.isv
            U3 = xp.reshape(U, (C, D, r))
            offsets = gain * (centred - xp.matmul(U3, xp.permute_dims(Gc, (0, 2, 1))))
        if offsets is not None:
            A2 = A2 - xp.matmul(offsets, Gc)
        new = kfa.update_subspace(A1, xp.reshape(A2, (C * D, r)), U)
        change = _relative_change(new, U, xp)
        self.U, self.dirty = new, True
        return change



def _relative_change(new, old, xp) -> float:
    """``|new - old| / |old|`` (``|new|`` when old is zero), as the host path's ``_set_param``:
    one read of three norms from the device."""
    norms = xp.stack([xp.linalg.vector_norm(new - old), xp.linalg.vector_norm(old),
                      xp.linalg.vector_norm(new)])
    change, scale, size = (float(v) for v in _device.to_numpy(norms))
    return change / scale if scale > 0 else size


class DeviceD(_Resident):
    """JFA's D phase on a device: the phase's fixed inputs ``centred`` (C, D, K) and ``N``
    (C, 1, K) (:func:`~._mstep.jfa_d_terms`, numpy) and D stay there between iterations; the
    update is :func:`~._mstep.d_update`'s algebra on the array API.  Same protocol as
    :class:`DeviceU` (``e_step``, ``m_step``, ``sync``)."""

    name = "D"

    def __init__(self, machine, centred, N, var, dev):
        self.machine, self.dev, self.xp = machine, dev, dev.xp
        C, D, _ = centred.shape
        self.shape = (C, D)
        put = self.put
        self.centred, self.N = put(centred), put(N)
        self.var = self.xp.reshape(put(var), (C, D, 1))
        self.D = None  # D (CD,) on the device, from the machine at the first M-step
        self.dirty = False

    def resident(self):
        return self.D

    def e_step(self):
        return None  # the phase's statistics are fixed: everything happens in the M-step

    def m_step(self, _) -> float:
        """The new D (kept on the device); returns its relative change."""
        xp, (C, D) = self.xp, self.shape
        if self.D is None:
            self.D = self.put(fitted_value(self.machine, "D"))
        old = xp.reshape(self.D, (C, D, 1))
        z, cov = kfa.diagonal_posterior(self.N, self.centred, old, self.var)
        A2 = xp.sum(self.centred * z, axis=2)
        A1 = xp.sum(self.N * (cov + z * z), axis=2)
        reached = A1 != 0  # a coordinate no statistic reached keeps its value
        ratio = A2 / xp.where(reached, A1, xp.ones_like(A1))
        new = xp.reshape(xp.where(reached, ratio, old[:, :, 0]), (C * D,))
        change = _relative_change(new, self.D, xp)
        self.D, self.dirty = new, True
        return change
