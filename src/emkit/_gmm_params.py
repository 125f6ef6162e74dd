"""Validation of ``GMMMachine``'s constructor arguments (at construction and again in ``fit``), the
descriptor of its parameters and the values they start from, and its scikit-learn hooks."""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ._fitted import FittedArray, assigned
from ._kernels import gmm as kg
from ._validation import (check_bool, check_checkpoint, check_finite, check_iteration_limits, check_positive_int,
                          check_random_state_type, check_real)
from ._describe import describe
from ._gmm_mstep import EPSILON

TRAINERS = ("ml", "map")
COMPUTE_DTYPES = {"float64": np.float64, "float32": np.float32}


def check_gmm_parameters(machine, gmm_class, kmeans_class) -> None:
    """Raise ``ValueError``/``TypeError`` naming the first invalid argument of ``machine``."""
    check_positive_int(machine.n_gaussians, "n_gaussians")
    if not isinstance(machine.trainer, str) or machine.trainer not in TRAINERS:
        raise ValueError(f"trainer must be one of {TRAINERS} (lower case); "
                         f"got {describe(machine.trainer)}")
    ubm = machine.ubm
    if ubm is not None:
        if not isinstance(ubm, gmm_class):
            raise TypeError(f"ubm must be a GMMMachine or None; got {type(ubm).__name__}")
        if ubm.n_gaussians != machine.n_gaussians:
            raise ValueError(
                f"The UBM machine is not compatible with this machine: ubm has {ubm.n_gaussians} "
                f"Gaussians, n_gaussians={machine.n_gaussians}."
            )
    elif machine.trainer == "map":
        raise ValueError("A UBM is required for MAP GMM (ubm=None was given with trainer='map').")
    check_iteration_limits(machine.max_fitting_steps, machine.convergence_threshold, "max_fitting_steps")
    check_random_state_type(machine.random_state)
    check_checkpoint(machine.checkpoint)
    if machine.k_means_trainer is not None and not isinstance(machine.k_means_trainer, kmeans_class):
        raise TypeError(f"k_means_trainer must be a KMeansMachine or None; got "
                        f"{type(machine.k_means_trainer).__name__}")
    if (machine.k_means_trainer is not None and machine.trainer == "ml"
            and machine.k_means_trainer.n_clusters != machine.n_gaussians):
        raise ValueError(f"k_means_trainer has n_clusters={machine.k_means_trainer.n_clusters!r}; it "
                         f"must equal n_gaussians={machine.n_gaussians!r} (one centroid per Gaussian)")
    for name in ("update_means", "update_variances", "update_weights"):
        check_bool(getattr(machine, name), name)
    check_real(machine.mean_var_update_threshold, "mean_var_update_threshold", minimum=0)
    check_map_alpha(machine.map_alpha, machine.n_gaussians)
    check_real(machine.map_relevance_factor, "map_relevance_factor", minimum=0, allow_none=True)
    compute_dtype(machine.compute_dtype)
    check_weights(getattr(machine, "_weights_param", None), machine.n_gaussians, "weights")


def check_training_state(arrays: dict) -> None:
    """A checkpoint's GMM parameters (finite numbers, as read): parameters a machine can use (the
    weights need not sum to one: assigned weights need not, nor do ML's with a large floor)."""
    weights, variances = arrays["weights"], arrays["variances"]
    if np.any(weights < 0) or not np.any(weights > 0):
        raise ValueError("weights must be >= 0, not all zero")
    if not np.all(variances > 0) or np.any(arrays["variance_thresholds"] < 0):
        raise ValueError("variances must be > 0 and variance thresholds >= 0")


def compute_dtype(name) -> type:
    """The numpy type of a ``compute_dtype`` argument ("float64" or "float32")."""
    if not isinstance(name, str) or name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be 'float64' or 'float32'; got {describe(name)}")
    return COMPUTE_DTYPES[name]


def check_map_alpha(alpha, n_gaussians: int) -> None:
    """A number in [0, 1], or an array of ``n_gaussians`` such numbers."""
    if np.ndim(alpha) == 0:
        check_real(alpha, "map_alpha", minimum=0, maximum=1)
        return
    try:
        a = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"map_alpha must be a number or an array of numbers in [0, 1]; "
                        f"got {describe(alpha)}") from None
    if a.shape != (n_gaussians,) or not np.all(_in_unit_interval(a)):
        raise ValueError(f"map_alpha must be a number in [0, 1] or an array of {n_gaussians} "
                         "such numbers (n_gaussians); "
                         f"got {_first_bad(a, n_gaussians, _in_unit_interval)}")


def _in_unit_interval(a):
    return (a >= 0) & (a <= 1)


def _finite_non_negative(a):
    return np.isfinite(a) & (a >= 0)


def _first_bad(a, n_gaussians: int, valid) -> str:
    """What is wrong with ``a``, which must be ``n_gaussians`` values each ``valid`` (a mask
    function): its shape when that is wrong, else its first invalid value and where it is."""
    if a.shape != (n_gaussians,):
        return f"shape {a.shape}"
    bad = int(np.flatnonzero(~valid(a))[0])
    return f"{float(a[bad])!r} at index {bad}"


def check_weights(weights, n_gaussians: int, name: str) -> None:
    """None, or ``n_gaussians`` finite non-negative numbers (they need not sum to one)."""
    if weights is None:
        return
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of {n_gaussians} numbers; "
                        f"got {describe(weights)}") from None
    if w.shape != (n_gaussians,) or not np.all(_finite_non_negative(w)):
        raise ValueError(f"{name} must be {n_gaussians} finite non-negative values; "
                         f"got {_first_bad(w, n_gaussians, _finite_non_negative)}")


def check_parameter_value(name: str, value):
    """``value`` assigned to parameter ``name`` as a float64 array: NaN/inf are refused, and negative
    ``weights``/``variance_thresholds`` (negative variances are floored silently, as in the reference)
    and complex values (numpy would drop their imaginary part with only a warning)."""
    if np.iscomplexobj(value):
        raise TypeError(f"GMMMachine.{name} must hold real numbers; got complex values")
    a = np.asarray(value, dtype=np.float64)
    check_finite(a, f"GMMMachine.{name}")
    if name in ("weights", "variance_thresholds") and np.any(a < 0):
        bad = tuple(int(i) for i in np.argwhere(a < 0)[0])
        raise ValueError(f"GMMMachine.{name} must be >= 0; got {float(a[bad])!r} at index {bad}")
    return a


def check_floor_shape(thresholds, variances_shape) -> None:
    """Refuse variance thresholds that do not broadcast to the variances' shape (C, D) without
    changing it (numpy's broadcasting error named neither; (1, C, D) made the variances 3-D)."""
    shape = np.shape(thresholds)
    try:
        fits = np.broadcast_shapes(shape, variances_shape) == tuple(variances_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"GMMMachine.variance_thresholds must be a scalar, (D,) or (C, D) to floor "
                         f"variances of shape (C, D) = {tuple(variances_shape)}; got thresholds of "
                         f"shape {shape}")


def check_usable_parameters(n_gaussians, means, variances, weights) -> None:
    """Parameters that give finite likelihoods, checked before their E-step constants are built:
    means (C, D), variances (C, D) > 0 and weights (C,) not all zero, C = ``n_gaussians``
    (assigned one at a time, they are only known to agree here)."""
    means, variances, weights = (np.asarray(a) for a in (means, variances, weights))
    if means.ndim != 2 or means.shape[0] != n_gaussians:
        raise ValueError(f"GMMMachine.means must have shape (n_gaussians, n_features) = ({n_gaussians}, D); "
                         f"got {means.shape}")
    if variances.shape != means.shape:
        raise ValueError(f"GMMMachine.variances must have the shape of the means {means.shape}; "
                         f"got {variances.shape}")
    if weights.shape != (n_gaussians,):
        raise ValueError(f"GMMMachine.weights must have shape (n_gaussians,) = ({n_gaussians},); "
                         f"got {weights.shape}")
    if not np.all(variances > 0):
        bad = tuple(int(i) for i in np.argwhere(~(variances > 0))[0])
        raise ValueError(f"GMMMachine.variances must be > 0; got {float(variances[bad])!r} at index {bad} "
                         "(the floor, variance_thresholds or mean_var_update_threshold in fit, must be > 0)")
    if not np.any(weights > 0):
        raise ValueError("GMMMachine.weights are all zero: at least one Gaussian needs a positive weight")


def e_step_constants(machine, dtype) -> kg.DiagGMMCoefficients:
    """The E-step constants of a GMMMachine's parameters, in ``dtype``, once they are usable."""
    check_usable_parameters(machine.n_gaussians, machine.means, machine.variances, machine.weights)
    return kg.DiagGMMCoefficients.from_parameters(machine.means, machine.variances, machine.log_weights,
                                                  dtype, norms=machine.g_norms)


def floored_value(machine, name: str, value, variances):
    """A checked ``value`` of parameter ``name`` as ``GMMMachine._assign`` stores it: variances
    floored at the thresholds; a floor's shape checked against the current ``variances``."""
    if value is None:
        return None
    if name == "variances":
        check_floor_shape(machine.variance_thresholds, value.shape)
        return np.maximum(machine.variance_thresholds, value)
    if name == "variance_thresholds" and variances is not None:
        check_floor_shape(value, variances.shape)  # (before anything is stored)
    return value


def starting_value(machine, name: str, *, from_ubm: bool):
    """The value an unset parameter ``name`` of ``machine`` starts from (see
    ``GMMMachine._missing_parameter``), None for weights with no valid ``n_gaussians``; an unset
    means/variances without a UBM to start from is a ``NotFittedError``."""
    ubm = machine.ubm
    if name == "weights":
        if machine._weights_param is not None:
            return machine._weights_param
        if from_ubm:
            return ubm.weights
        if isinstance(machine.n_gaussians, numbers.Integral) and machine.n_gaussians >= 1:
            return np.full((machine.n_gaussians,), 1.0 / machine.n_gaussians)
        return None
    if name == "variance_thresholds" and not from_ubm or name == "variances" and from_ubm:
        threshold = machine.mean_var_update_threshold
        floor = EPSILON if threshold is None else threshold
        return floor if name == "variance_thresholds" else np.maximum(ubm.variances, floor)
    if from_ubm:
        return getattr(ubm, name)
    raise NotFittedError(f"GMMMachine {name} were never set.")


def log_of_weights(weights) -> np.ndarray:
    """``log(weights)``; a zero weight gives -inf, without a warning."""
    with np.errstate(divide="ignore"):
        return np.log(weights)


def clone_keeping_ubm(machine):
    """``GMMMachine.__sklearn_clone__``: the prior (a trained UBM) is an input, so it is copied
    (scikit-learn's clone would untrain it, and MAP would fail)."""
    params = machine.get_params(deep=False)
    ubm = params.pop("ubm")
    others = {k: clone(v, safe=False) for k, v in params.items()}
    return type(machine)(ubm=copy.deepcopy(ubm), **others)


def reference_transformer_tags(tags):
    """``tags`` of an estimator that needs ``fit`` and whose ``transform`` keeps the reference's
    output (see the class docstring), not scikit-learn's."""
    from sklearn.utils import TransformerTags

    tags.requires_fit = True
    tags.transformer_tags = TransformerTags(preserves_dtype=[])
    return tags


def constructor_params(machine, deep: bool) -> dict:
    """``GMMMachine.get_params``: ``weights`` is the constructor argument, not the live value.
    (BaseEstimator's reads every parameter as an attribute: reading ``weights`` would fix the live
    weights from the current n_gaussians/ubm, so a repr changed what fit starts from.)"""
    params = {}
    for key in machine._get_param_names():
        value = machine._weights_param if key == "weights" else getattr(machine, key)
        if deep and hasattr(value, "get_params") and not isinstance(value, type):
            params.update((f"{key}__{k}", v) for k, v in value.get_params().items())
        params[key] = value
    return params


class GMMParameter(FittedArray):
    """A GMM parameter: a :class:`FittedArray` assigned through its machine's ``_assign``."""

    def __set__(self, obj, value):
        obj._assign(self.name, value)
        assigned(obj, self.name)
