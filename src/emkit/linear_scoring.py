"""Linear scoring (Glembek et al., 2009): a first-order approximation of the GMM log-likelihood ratio."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.exceptions import NotFittedError

from . import _config
from ._describe import describe
from ._validation import check_bool, check_finite
from .gmm import GMMMachine
from .stats import GMMStats, as_stats_sequence

EPSILON = np.finfo(float).eps

__all__ = ["linear_scoring", "GMMMachine", "GMMStats"]  # (the reference imports both here too)


def _machine_means(model, i: int):
    """The means of ``models_means[i]`` when it is a GMMMachine (errors name the model)."""
    if not isinstance(model, GMMMachine):
        raise TypeError(f"models_means[{i}] must be a GMMMachine as the others are; got "
                        f"{type(model).__name__}")
    if not model._has_parameters():
        raise NotFittedError(f"models_means[{i}] is a GMMMachine without means: fit it (or assign "
                             "its means) first")
    return model.means


def _models_array(models_means) -> np.ndarray:
    if isinstance(models_means, GMMMachine):
        models_means = [models_means]
    if isinstance(models_means, np.ndarray) and models_means.dtype == object and models_means.ndim == 1:
        models_means = list(models_means)  # a numpy object array of machines (or of mean arrays)
    if isinstance(models_means, (list, tuple)):
        if len(models_means) == 0:
            raise ValueError("models_means is empty: expected at least one model")
        if any(isinstance(m, GMMMachine) for m in models_means):
            models_means = [_machine_means(m, i) for i, m in enumerate(models_means)]
    try:
        means = np.asarray(models_means, dtype=np.float64)
    except (TypeError, ValueError):  # ragged, or not numbers
        raise ValueError("models_means must be GMMMachines or (n_gaussians, n_features) arrays of numbers, "
                         "all of one shape") from None
    if means.ndim < 2 or means.ndim > 3:
        raise ValueError(
            "models_means must be of shape `(n_models, n_gaussians, n_features)` (or one "
            f"`(n_gaussians, n_features)` model); got shape {means.shape}"
        )
    check_finite(means, "models_means")
    return means[None] if means.ndim == 2 else means


def _offsets_array(offsets, n_probes: int, C: int, D: int) -> np.ndarray:
    try:
        array = np.asarray(offsets)
        numbers_only = array.dtype.kind in "biuf" or (  # (None became NaN, text failed in numpy)
            array.dtype.kind == "O" and all(isinstance(v, numbers.Real) for v in array.flat))
    except ValueError:  # lists of different lengths
        numbers_only = False
    if not numbers_only:
        raise TypeError("test_channel_offsets must be a number or an array of numbers (a scalar, "
                        f"(C, D), (P, C, D) or (P, C*D)); got {type(offsets).__name__} "
                        f"{describe(offsets)}")
    offsets = array.astype(np.float64)
    check_finite(offsets, "test_channel_offsets")
    if offsets.shape == (n_probes, C * D):
        # supervector form, one row per probe.  It never clashes with a broadcastable form: the
        # only shape that is both is (1, D) with P = C = 1, where both readings agree.
        return offsets.reshape(n_probes, C, D)
    try:
        return np.broadcast_to(offsets, (n_probes, C, D))
    except ValueError:
        raise ValueError(
            f"test_channel_offsets must broadcast to (n_probes={n_probes}, C={C}, D={D}) or have shape "
            f"(n_probes, C*D)=({n_probes}, {C * D}); got shape {offsets.shape}"
        ) from None


def linear_scoring(models_means, ubm: GMMMachine, test_stats, test_channel_offsets=0,
                   frame_length_normalization: bool = False) -> np.ndarray:
    """Scores of every model against every probe, shape (n_models, n_probes).

    ``score[j, i] = sum_{c,d} (M_j - m)/var * (F_i - N_i (m + o_i))`` with the UBM's means ``m`` and
    variances ``var`` (a MAP ``ubm`` is replaced by its own UBM), divided by the probe's frame
    count ``T_i`` when ``frame_length_normalization`` (0 when ``T_i`` is 0).

    Parameters
    ----------
    models_means : list of GMMMachine or of arrays of shape (C, D), or array of shape (M, C, D)
        The M enrolled models (a numpy object array of them too), or one (C, D) array.
    ubm : GMMMachine
        The UBM, trained on C Gaussians of D features.
    test_stats : GMMStats or list of P GMMStats
        The probes' statistics.
    test_channel_offsets : scalar or array of shape (C, D), (P, C, D) or (P, C*D), default 0
        Channel offsets ``o_i`` of the probes' means: (P, C*D) as the reference documented
        (its code took only shapes broadcastable to (P, C, D)), or those shapes.
    frame_length_normalization : bool, default False
        Divide each probe's scores by its frame count.

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64
        One row per model, one column per probe.
    """
    if not isinstance(ubm, GMMMachine):
        raise TypeError(f"ubm must be a GMMMachine; got {type(ubm).__name__}")
    check_bool(frame_length_normalization, "frame_length_normalization")  # ('no' read as True)
    models = _models_array(models_means)
    if ubm.trainer == "map" and ubm.ubm is not None:
        ubm = ubm.ubm
    test_stats = as_stats_sequence(test_stats)
    if isinstance(test_stats, GMMStats):
        test_stats = [test_stats]
    if not ubm._has_parameters():
        raise NotFittedError("ubm is a GMMMachine without means: fit it (or assign its parameters) "
                             "first")
    C, D = ubm.means.shape
    check_finite(ubm.means, "ubm.means")
    check_finite(ubm.variances, "ubm.variances")
    if not np.all(ubm.variances > 0):
        raise ValueError("ubm.variances must be > 0 (linear scoring divides by them); got "
                         f"{float(ubm.variances.min())!r}")
    if models.shape[1:] != (C, D):
        raise ValueError(f"models_means must have (n_gaussians, n_features) = {(C, D)}; got {models.shape[1:]}")
    probes = GMMStats.stack(test_stats, name="test_stats", shape=(C, D))
    P, t = len(probes), probes.t
    offsets = _offsets_array(test_channel_offsets, P, C, D)

    if _config._CONFIG["device"] != "cpu":  # scoring on a CUDA device (docs/gpu.md)
        scores = _device_scores(models, ubm, probes, offsets, frame_length_normalization)
        if scores is not None:
            return scores
    a = ((models - ubm.means) / ubm.variances).reshape(len(models), C * D)
    b = (probes.sum_px - probes.n[:, :, None] * (ubm.means + offsets)).reshape(P, C * D)
    if frame_length_normalization:
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(np.abs(t)[:, None] <= EPSILON, 0.0, b / t[:, None])
    return a @ b.T


def _device_scores(models, ubm, probes, offsets, frame_length_normalization):
    """The scores computed on the configured device (numpy float64), or None for the CPU."""
    from ._backend._device import current_device, to_numpy
    from ._device_fit import put
    from ._kernels.scoring_xp import linear_scores

    dev = current_device()
    if dev.is_cpu:  # device="auto" without a usable GPU
        return None
    args = (models, ubm.means, ubm.variances, probes.n, probes.sum_px, np.asarray(probes.t, float),
            np.ascontiguousarray(offsets))
    return to_numpy(linear_scores(*(put(a, dev) for a in args[:6]),
                                  offsets=put(args[6], dev),
                                  frame_length_normalization=frame_length_normalization))
