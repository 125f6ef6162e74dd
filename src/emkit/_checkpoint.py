"""Resumable training: an estimator's state written atomically after every completed iteration.

A checkpoint file (HDF5) records which run it belongs to (estimator class, a hash of its
parameters and a fingerprint of the training data), the number of completed iterations, the
history of the convergence quantity and the estimator's state arrays.  Starting ``fit`` again
with the same arguments resumes after the last completed iteration and ends with the same
parameters as an uninterrupted run; a checkpoint from another run is refused.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from ._validation import is_dask_collection

logger = logging.getLogger("emkit")

_CLASS = "TrainingCheckpoint"
_VERSION = 1


def _digest(obj) -> str:
    import joblib

    return joblib.hash(obj)


def data_fingerprint(X) -> str:
    """Shape, dtype and a hash of 16 evenly spaced rows (cheap, also for dask or on-disk data)."""
    if isinstance(X, (list, tuple)):
        return _digest(("sequence", len(X), [_digest(x) for x in (X[0], X[len(X) // 2], X[-1])] if X else []))
    if hasattr(X, "npartitions") and not hasattr(X, "shape"):  # dask bag
        return _digest(("bag", X.name))
    n = X.shape[0]
    rows = np.unique(np.linspace(0, max(n - 1, 0), 16).astype(int)) if n else np.array([], int)
    sample = X[rows]
    if is_dask_collection(sample):
        sample = sample.compute()
    return _digest((tuple(X.shape), str(X.dtype), np.asarray(sample)))


def _describe(value):
    """A hashable description of a parameter value; estimators by their parameters and, for
    fitted GMMs (a UBM), their Gaussians, but not by other fitted state that ``fit`` may change."""
    if hasattr(value, "get_params"):
        params = {k: _describe(v) for k, v in value.get_params(deep=False).items() if k != "checkpoint"}
        gaussians = tuple(getattr(value, name, None) for name in ("_means", "_variances", "_weights"))
        return (type(value).__name__, sorted(params.items()), gaussians)
    return value


def parameter_fingerprint(estimator) -> str:
    return _digest(_describe(estimator))


@dataclass
class SavedState:
    step: int
    history: list
    arrays: dict
    completed: bool
    extra: dict = field(default_factory=dict)


class Checkpoint:
    """The checkpoint of one ``fit`` call: ``load`` what a previous attempt saved, ``save`` progress."""

    def __init__(self, path, estimator, X):
        self.path = os.fspath(path)
        self.owner = type(estimator).__name__
        self.run_id = parameter_fingerprint(estimator) + ":" + data_fingerprint(X)

    def load(self) -> SavedState | None:
        if not os.path.exists(self.path):
            return None
        from .io.h5 import as_str, open_for_reading, read_stamp

        with open_for_reading(self.path) as f:
            read_stamp(f, _CLASS, _VERSION)
            owner, run_id = as_str(f.attrs["owner"]), as_str(f.attrs["run_id"])
            if owner != self.owner or run_id != self.run_id:
                raise ValueError(
                    f"checkpoint {self.path!r} belongs to another training run ({owner} with other "
                    "parameters or data); delete it or pass another checkpoint path"
                )
            state = SavedState(
                step=int(f.attrs["step"]),
                history=[float(v) for v in f["history"][...]],
                arrays={name: _read_value(f["state"][name]) for name in f["state"]},
                completed=bool(f.attrs["completed"]),
                extra=json.loads(as_str(f.attrs["extra"])),
            )
        logger.info("%s: resuming from checkpoint %s after %d completed iteration(s)%s", self.owner,
                    self.path, state.step, " (training had finished)" if state.completed else "")
        return state

    def save(self, step: int, history, arrays: dict, *, completed: bool = False, extra: dict | None = None):
        from .io.h5 import atomic_h5_write, write_stamp

        with atomic_h5_write(self.path) as f:
            write_stamp(f, _CLASS, _VERSION)
            f.attrs["owner"] = self.owner
            f.attrs["run_id"] = self.run_id
            f.attrs["step"] = np.int64(step)
            f.attrs["completed"] = bool(completed)
            f.attrs["extra"] = json.dumps(extra or {})
            f["history"] = np.asarray(history, dtype=np.float64)
            group = f.create_group("state")
            for name, value in arrays.items():
                group[name] = np.asarray(value)


def _read_value(dataset):
    value = dataset[()]
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def resumable_em(estimator, X, *, initialize, get_state, set_state, phase: int = 0, **run_em_kwargs):
    """Run :func:`emkit._em.run_em`, resuming from and saving to ``estimator.checkpoint`` (a path or None).

    ``initialize()`` prepares a fresh run; ``get_state()`` returns the arrays that define the
    estimator between iterations and ``set_state(arrays)`` restores them.  Training made of
    successive loops (JFA's V, U and D phases) numbers them with ``phase``: a checkpoint of a
    later phase means this one has finished (its state is restored and nothing is trained), one
    of an earlier phase means this one starts afresh.
    """
    from ._em import EMResult, run_em

    path = getattr(estimator, "checkpoint", None)
    checkpoint = Checkpoint(path, estimator, X) if path is not None else None
    saved = checkpoint.load() if checkpoint is not None else None
    saved_phase = saved.extra.get("phase", 0) if saved is not None else None
    if saved is not None and saved_phase > phase:
        set_state(saved.arrays)
        return EMResult(n_iter=0, converged=True, history=[])
    if saved is None or saved_phase < phase:
        initialize()
        start, history = 0, []
        if checkpoint is not None:
            checkpoint.save(0, [], get_state(), extra={"phase": phase})
    else:
        set_state(saved.arrays)
        start, history = saved.step, saved.history
        if saved.completed:
            return EMResult(n_iter=start, converged=True, history=history)

    def save(step, hist):
        checkpoint.save(step, hist, get_state(), extra={"phase": phase})

    result = run_em(start_step=start, history=history,
                    on_iteration=save if checkpoint is not None else None, **run_em_kwargs)
    if checkpoint is not None:
        checkpoint.save(result.n_iter, result.history, get_state(), completed=True, extra={"phase": phase})
    return result
