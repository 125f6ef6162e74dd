"""What :class:`emkit.gmm.GMMMachine`'s ``fit``, ``initialize_gaussians`` and ``adapt`` run and
compute: the frames and device of a ``fit``, its E- and M-steps and the EM loop over them, the
k-means start of ML training and the statistics MAP adaptation takes.  The machine's methods
assign what these return; only the machine's own methods (``_start_training``,
``_restore_training_state``...) and :func:`emkit._gmm_mstep.apply_m_step` update it."""

from __future__ import annotations

import logging

from . import _device_fit
from . import _gmm_estep as estep
from ._backend import _staging, cached_frames
from ._checkpoint import resumable_em
from ._describe import describe
from ._gmm_mstep import apply_m_step
from .stats import GMMStats

logger = logging.getLogger("emkit")


def check_training_feature_names(machine, X) -> None:
    """The feature names of ``X`` checked against the UBM's (MAP), or against the machine's when
    ``fit`` goes on from its parameters."""
    if machine.ubm is not None:  # (MAP: the UBM's features, in its order)
        machine.ubm._check_feature_names(X)
    elif machine._has_parameters() and getattr(machine, "feature_names_in_", None) is not None:
        machine._check_feature_names(X)  # (fit goes on from the parameters of those features)


def training_frames(machine, X):
    """``(X, device)`` of a ``fit``: the frames checked (against the machine's means, when it
    has some) and read once if a dask array fits in memory, and the device resident training
    runs on (:class:`emkit._device_fit.DeviceGMM`), None on the numpy path (docs/gpu.md)."""
    dev = _device_fit.fit_device(X, dask_on_workers=True)
    n_features = machine.means.shape[1] if machine._has_parameters() else None
    X = cached_frames(_device_fit.check_fit_frames(X, n_features, "GMMMachine"))
    return X, None if dev is None else _device_fit.DeviceGMM(machine, X, dev)


def e_step(machine, X, device):
    """The statistics of one EM iteration over ``X`` (``sum_pxx`` only when the M-step updates
    variances): on ``device`` unless Gaussian selection is configured (it runs on the CPU)."""
    selection = estep.selection(n_gaussians=machine.n_gaussians)  # config's gselect, or None
    if device is None or selection is not None:
        return estep.total_stats(X, machine._coefficients(), machine.update_variances, selection,
                                 f"GMM {machine.trainer.upper()} E-step")
    return device.e_step()


def m_step(machine, device, stats) -> float:
    """Apply the M-step of ``stats`` (the device's own on the device) and return the average
    log-likelihood per frame of the E-step."""
    if not isinstance(stats, GMMStats):  # the device's (shift, acc, ll)
        return device.m_step(stats)
    apply_m_step(machine, stats)
    return stats.log_likelihood / stats.t


def state_shapes(n_gaussians: int, n_features: int) -> dict:
    """The shapes of a checkpoint's arrays (``variance_thresholds``: a scalar, (D,) or (C, D),
    as assigned, so not checked here)."""
    C = n_gaussians
    return {"means": (C, n_features), "variances": (C, n_features), "weights": (C,)}


def run_em(machine, X, device) -> None:
    """``fit``'s EM iterations on the checked frames ``X`` (resumable from ``checkpoint``): the
    machine's methods start and finish the run and the M-steps update it; a device's parameters
    come back to the machine at the end."""
    with _staging.synced(device):
        resumable_em(machine, X, initialize=lambda: machine._start_training(X),
                     set_state=machine._restore_training_state,
                     get_state=device.state if device else machine._training_state,
                     state_shapes=state_shapes(machine.n_gaussians, X.shape[1]),
                     e_step=lambda: e_step(machine, X, device),
                     m_step=lambda stats: m_step(machine, device, stats),
                     max_iterations=machine.max_fitting_steps,
                     convergence_threshold=machine.convergence_threshold,
                     name=f"GMM {machine.trainer.upper()}",
                     finish=lambda result: machine._finish_fit(result, X.shape[1]))


def kmeans_start(machine, data, kmeans_class):
    """``(means, variances, weights)`` of the k-means clusters of ``data`` that ML training
    starts from: ``machine.k_means_trainer`` (fitted in place, as in the reference) or
    ``kmeans_class(n_gaussians, random_state=machine.random_state)``."""
    if data is None:
        raise ValueError("Data is required when training with k-means.")
    logger.info("GMM: initialising %d Gaussians with k-means", machine.n_gaussians)
    kmeans = machine.k_means_trainer or kmeans_class(machine.n_gaussians, random_state=machine.random_state)
    kmeans.fit(data)
    return (kmeans.centroids_, *kmeans.get_variances_and_weights_for_each_cluster(data))


def check_adaptable(machine) -> None:
    """Refuse ``adapt`` on a machine that is not a MAP machine with a UBM."""
    if machine.trainer != "map" or machine.ubm is None:
        raise ValueError("adapt needs a MAP machine: GMMMachine(trainer='map', ubm=<a trained "
                         f"GMMMachine>); "
                         f"got trainer={describe(machine.trainer)}, ubm={describe(machine.ubm)}")


def adaptation_stats(stats, shape: tuple, second_order: bool) -> GMMStats:
    """The one :class:`GMMStats` ``adapt`` adapts to: ``stats`` checked against the UBM's
    ``shape`` (C, D), a list of them summed (a single one keeps its moments about a shift, for
    precise variances)."""
    single = isinstance(stats, GMMStats)
    batch = GMMStats.stack([stats] if single else stats, name="stats", indexed=not single,
                           shape=shape, second_order=second_order)
    return stats if single else batch.total()
