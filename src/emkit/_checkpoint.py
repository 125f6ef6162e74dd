"""Resumable training: an estimator's state written atomically after every completed iteration.

A checkpoint file (HDF5) records which run it belongs to (estimator class, a digest of each of
its parameters, of every byte of the training data and of the labels: see :mod:`emkit._fingerprint`;
and whether the data were in memory or dask collections, whose digests never agree), the number
of completed iterations, the history of the convergence quantity and the estimator's state
arrays.  Starting ``fit`` again with the same arguments resumes after the last completed
iteration and ends with the same parameters as an uninterrupted run; a checkpoint of another run
is refused with :class:`CheckpointMismatchError`, which says what differs.

A training step without iterations (an i-vector back-end) saves its result once it is
trained (:meth:`Checkpoint.save_result`: its objects as model files hold them, after the same
record of the run), and a later run of the same step takes it from there.

A digest of the state (step, history, state arrays, ``completed``, ``extra``) is saved with it
and checked on load: a checkpoint damaged on disk (a flipped bit) is refused, not resumed from
(an edit that recomputes the digest is not detected: like model files, checkpoints carry no
signature).  Checkpoints of earlier emkit versions, without a digest, are read as before.

A writer killed in the middle of a save leaves its temporary file next to the checkpoint
(:mod:`emkit.io.atomic`); the next load or save of that checkpoint on the same host removes
those whose writer process is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from hashlib import blake2b

import numpy as np

from ._fingerprint import (FORMAT, data_fingerprint, fingerprint_kind, labels_fingerprint,
                           parameter_fingerprints)
from .io._h5_new_file import new_h5_file
from .io.atomic import remove_stale_temporaries
from .io.errors import InvalidFileError
from .io.untrusted import with_article

logger = logging.getLogger("emkit")

_CLASS = "TrainingCheckpoint"
#: 2: fingerprints of every byte of the data, of the labels and of each parameter
_VERSION = 2
#: What a name read from a checkpoint must look like to be used (or quoted in a message).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class CheckpointMismatchError(ValueError):
    """A ``checkpoint=`` file belongs to another training run.

    Other data, labels, parameters, estimator or emkit version: delete the file or pass another
    checkpoint path to start afresh.  A ``ValueError``.

    Parameters
    ----------
    path : str
        The checkpoint file.
    differences : list of str
        What differs, one item each.
    """

    def __init__(self, path: str, differences: list):
        self.path = path
        self.differences = list(differences)
        super().__init__(
            f"checkpoint {path!r} belongs to another training run: {'; '.join(differences)}. "
            "To start afresh, delete the file or pass another checkpoint path"
        )


@dataclass
class SavedState:
    step: int
    history: list
    arrays: dict
    completed: bool
    extra: dict = field(default_factory=dict)


class TrainingInput:
    """The training data ``X`` and labels ``y`` of one ``fit`` call, fingerprinted at most once
    (JFA's three resumable loops share one)."""

    def __init__(self, X, y=None):
        self.X, self.y = X, y
        self.kind = fingerprint_kind(X)
        self._fingerprints = None

    def fingerprints(self) -> tuple:
        """``(data digest, labels digest)`` (hex strings; ``""`` for no labels)."""
        if self._fingerprints is None:
            self._fingerprints = (data_fingerprint(self.X), labels_fingerprint(self.y))
        return self._fingerprints


class Checkpoint:
    """The checkpoint of one ``fit`` call: ``load`` what a previous attempt saved, ``save`` progress."""

    def __init__(self, path, estimator, X, y=None):
        self.path = os.fspath(path)
        self.owner = type(estimator).__name__
        inputs = X if isinstance(X, TrainingInput) else TrainingInput(X, y)
        self.data, self.labels = inputs.fingerprints()
        self.kind = inputs.kind
        self.parameters = parameter_fingerprints(estimator)
        self._swept = False

    def _sweep(self):
        if not self._swept:
            remove_stale_temporaries(self.path)
            self._swept = True

    def load(self, max_step: int | None = None, shapes: dict | None = None) -> SavedState | None:
        """What the previous attempt saved (None without a checkpoint file); its state arrays of
        the ``shapes`` given (name -> shape, None entries free).

        The file is read like any untrusted model file (:mod:`emkit.io.h5`): an invalid one (a
        link, a forged size, NaN state, ``step`` outside ``[0, max_step]``...) is an
        :class:`~emkit.io.InvalidFileError` naming it, never resumed from nor overwritten.
        """
        self._sweep()
        if not os.path.exists(self.path):
            return None
        from .io.h5 import open_for_reading, read_array, read_attr, read_stamp

        with open_for_reading(self.path, "training checkpoint") as f:
            version = read_stamp(f, _CLASS, _VERSION)
            self._check_run(f, version)
            step = int(read_attr(f, "step", "int"))
            if step < 0 or max_step is not None and step > max_step:
                limit = "" if max_step is None else f" and <= {max_step} (the run's maximum)"
                raise InvalidFileError(f"{self.path}: attribute '/step' must be >= 0{limit}; "
                                       f"found {step}")
            state = SavedState(
                step=step,
                history=read_array(f, "history", shape=(step,)).tolist(),  # one value per step
                arrays=_read_state(f, self.path, shapes or {}),
                completed=read_attr(f, "completed", "bool"),
                extra=_read_extra(f, self.path),
            )
            saved_digest = read_attr(f, "state_digest", "str", required=False, default=None)
        if saved_digest is not None and saved_digest != _state_digest(
                state.step, state.history, state.arrays, state.completed, state.extra):
            raise InvalidFileError(f"{self.path}: the training state does not match the digest saved "
                                   "with it (the file was damaged or edited); delete it to start afresh")
        return state

    def log_resumed(self, state: SavedState) -> None:
        logger.info("%s: resuming from checkpoint %s after %d completed iteration(s)%s", self.owner,
                    self.path, state.step, " (training had finished)" if state.completed else "")

    def _check_run(self, f, version):
        """Raise :class:`CheckpointMismatchError` unless ``f`` was written by this very run."""
        from .io.h5 import read_attr

        def text(name, default):
            return read_attr(f, name, "str", required=False, default=default)

        fingerprint_format = read_attr(f, "fingerprint_format", "int", required=False, default=0)
        if version < _VERSION or fingerprint_format != FORMAT:
            raise CheckpointMismatchError(self.path, [
                "it was written by another emkit version, whose data fingerprint cannot be compared"])
        owner = text("owner", "")
        if owner != self.owner:  # (the file's text is named only when it is a plausible class name)
            other = with_article(owner) if _NAME.fullmatch(owner) else "another estimator"
            raise CheckpointMismatchError(self.path, [f"it was written by {other}, not "
                                                      f"{with_article(self.owner)}"])
        differences = []
        if text("data_fingerprint", "") != self.data:
            differences.append(_data_difference(text("data_kind", ""), self.kind))
        if text("labels_fingerprint", "?") != self.labels:
            differences.append("the labels y differ")
        names = _differing_parameters(text("parameter_fingerprints", "{}"), self.parameters)
        if names:
            differences.append(f"the parameters differ ({', '.join(names)})")
        if differences:
            raise CheckpointMismatchError(self.path, differences)

    def _write_run(self, f) -> None:
        """The stamp and what identifies this run (:meth:`_check_run` compares them)."""
        from .io.h5 import write_stamp

        write_stamp(f, _CLASS, _VERSION)
        f.attrs["owner"] = self.owner
        f.attrs["fingerprint_format"] = np.int64(FORMAT)
        f.attrs["data_fingerprint"] = self.data
        f.attrs["data_kind"] = self.kind
        f.attrs["labels_fingerprint"] = self.labels
        f.attrs["parameter_fingerprints"] = json.dumps(self.parameters, sort_keys=True)

    def save_result(self, parts: dict) -> None:
        """Save the result of a training step that has no iterations to resume (an i-vector
        back-end): ``parts`` maps names to emkit objects of registered classes (None: left out),
        each written as a model file holds it, in group ``result``."""
        from .io._registry import save_into

        self._sweep()
        with new_h5_file(self.path) as f:
            self._write_run(f)
            group = f.create_group("result")
            for name, part in parts.items():
                if part is not None:
                    save_into(group, name, part)

    def load_result(self, expected: dict) -> dict | None:
        """What :meth:`save_result` saved (None without a checkpoint file): name -> object, for
        the names of ``expected`` (name -> class name) the file holds, each read and checked
        like a model file; any other object in the file is an error naming it."""
        self._sweep()
        if not os.path.exists(self.path):
            return None
        from .io._registry import load_from
        from .io.h5 import child, open_for_reading, read_stamp

        with open_for_reading(self.path, "training checkpoint") as f:
            self._check_run(f, read_stamp(f, _CLASS, _VERSION))
            group = child(f, "result", "group")
            unknown = [name for name in group if name not in expected]
            if unknown:  # (never quoted: it could be any text)
                raise InvalidFileError(f"{self.path}: group '/result' holds an object that is not "
                                       f"one of {', '.join(sorted(expected))}")
            return {name: load_from(group, name, expected=expected[name]) for name in group}

    def save(self, step: int, history, arrays: dict, *, completed: bool = False, extra: dict | None = None):
        self._sweep()
        with new_h5_file(self.path) as f:
            self._write_run(f)
            f.attrs["step"] = np.int64(step)
            f.attrs["completed"] = bool(completed)
            f.attrs["extra"] = json.dumps(extra or {})
            f["history"] = np.asarray(history, dtype=np.float64)
            group = f.create_group("state")
            for name, value in arrays.items():
                group[name] = np.asarray(value)
            f.attrs["state_digest"] = _state_digest(step, history, arrays, completed, extra or {})


def _state_digest(step: int, history, arrays: dict, completed: bool, extra: dict) -> str:
    """A digest of what a checkpoint resumes from, as float64 values (how they are read back)."""
    h = blake2b(digest_size=16)
    h.update(json.dumps([int(step), bool(completed), extra], sort_keys=True).encode())
    for name, value in [("history", history), *sorted(arrays.items())]:
        value = np.ascontiguousarray(value, dtype=np.float64)
        h.update(f"{name}{value.shape}".encode())
        h.update(value.tobytes())
    return h.hexdigest()


#: how the data of a run were fingerprinted (attribute ``data_kind``; absent before it existed)
_KINDS = {"memory": ("a run without a cluster (no --workers or --scheduler; in Python: data in "
                     "memory)", "without a cluster"),
          "dask": ("a cluster run (--workers or --scheduler; in Python: dask data)",
                   "on a cluster")}


def _data_difference(saved: str, current: str) -> str:
    """What to say when the data digests differ: data fingerprinted in memory and per dask chunk
    never agree, so a checkpoint of the other kind of run is named as such."""
    if saved not in _KINDS or saved == current:
        return "the training data X differ"
    return (f"it was written by {_KINDS[saved][0]}, whose data fingerprint cannot be compared with "
            f"this run's: resume it {_KINDS[saved][1]}")


def would_resume(path, estimator, X, y=None) -> bool:
    """Whether ``estimator.fit(X, y)`` with ``checkpoint=path`` would take the checkpoint as its
    own run's (the estimator, data, labels, parameters and fingerprint format all the same)
    rather than refuse it: False for any other checkpoint, and for one that cannot be read (fit
    refuses those too).  ``X`` is fingerprinted only when the checkpoint could record it."""
    from .io.h5 import open_for_reading, read_attr, read_stamp

    try:
        with open_for_reading(os.fspath(path), "training checkpoint") as f:
            version = read_stamp(f, _CLASS, _VERSION)
            recorded = [read_attr(f, name, kind, required=False, default=None) for name, kind in
                        (("fingerprint_format", "int"), ("data_kind", "str"))]
            if recorded != [FORMAT, fingerprint_kind(X)]:
                return False
            Checkpoint(path, estimator, X, y)._check_run(f, version)
    except (InvalidFileError, OSError, CheckpointMismatchError):
        return False
    return True


def _differing_parameters(saved: str, current: dict) -> list:
    """Names of the parameters whose digests differ (only this run's names are ever echoed)."""
    try:
        saved = json.loads(saved)
    except (ValueError, RecursionError):
        saved = None
    if not isinstance(saved, dict):
        return ["unreadable in the checkpoint"]
    names = [k for k in sorted(current) if saved.get(k) != current[k]]
    if set(saved) - set(current):
        names.append("others that this estimator does not have")
    return names


class _StateArrays(dict):
    """The saved arrays; one that the estimator needs and the file lacks is an error naming it."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def __missing__(self, name):
        raise InvalidFileError(f"{self.path}: dataset '/state/{name}' is missing")


def _read_state(f, path, shapes: dict) -> dict:
    """The arrays of group ``state``: finite numbers (as float64) of the ``shapes`` given, each
    checked like a model's."""
    from .io.h5 import child, read_array

    group = child(f, "state", "group")
    arrays = _StateArrays(path)
    for name in group:
        if not _NAME.fullmatch(name):  # (never quoted: it could be any length)
            raise InvalidFileError(f"{path}: group '/state' holds an object whose name is "
                                   "not an emkit state name")
        value = read_array(group, name, shape=shapes.get(name))
        arrays[name] = value.reshape(group[name].shape)  # (a scalar comes back 1-D: keep it 0-D)
    return arrays


def _read_extra(f, path) -> dict:
    """Attribute ``extra``: a JSON object, ``phase`` an integer >= 0 and ``converged`` a boolean."""
    from .io.h5 import read_attr

    extra = read_attr(f, "extra", "json")
    phase, converged = extra.get("phase", 0), extra.get("converged", True)
    if type(phase) is not int or phase < 0 or type(converged) is not bool:
        raise InvalidFileError(f"{path}: attribute '/extra' must give 'phase' as an integer >= 0 "
                               "and 'converged' as true or false")
    return extra


def resumable_em(estimator, X, *, y=None, initialize, get_state, set_state, phase: int = 0,
                 state_shapes: dict | None = None, warn_not_converged: bool = True,
                 not_converged_advice: str | None = None, finish=None, **run_em_kwargs):
    """Run :func:`emkit._em.run_em`, resuming from and saving to ``estimator.checkpoint`` (a path or None).

    ``X`` and the labels ``y`` (if any; or a :class:`TrainingInput` of both) are the training input,
    whose every byte the checkpoint's fingerprint covers.

    ``initialize()`` prepares a fresh run; ``get_state()`` returns the arrays that define the
    estimator between iterations and ``set_state(arrays)`` restores them; ``state_shapes`` gives
    their shapes (None entries free), which the arrays read from a checkpoint must have.  Training made of
    successive loops (JFA's V, U and D phases) numbers them with ``phase``: a checkpoint of a
    later phase means this one has finished (its state is restored and nothing is trained), one
    of an earlier phase means this one starts afresh.

    The one EM contract of every iterative estimator: the estimator sets ``n_iter_`` and
    ``converged_`` from the returned :class:`~emkit._em.EMResult`, best in ``finish(result)``
    with its other fitted attributes: only after it does a run that stops at ``max_iterations`` with a
    ``convergence_threshold`` set warn :class:`sklearn.exceptions.ConvergenceWarning` (unless
    ``warn_not_converged`` is False; advice ``not_converged_advice`` names the estimator's own
    parameters): a warning turned into an error leaves a consistent estimator.
    """
    from ._backend._worker_heap import tuned_worker_heaps

    with tuned_worker_heaps(X):  # dask workers reuse their freed memory during the iterations
        result = _resume_or_run(estimator, X, y, initialize, get_state, set_state, phase,
                                state_shapes, run_em_kwargs)
    if finish is not None:
        finish(result)
    if warn_not_converged:
        warn_if_not_converged(result, run_em_kwargs.get("name", type(estimator).__name__),
                              run_em_kwargs.get("convergence_threshold"), not_converged_advice)
    return result


def warn_if_not_converged(result, name: str, threshold, advice: str | None = None) -> None:
    """Warn :class:`~sklearn.exceptions.ConvergenceWarning` when a run with a convergence threshold
    stopped at its iteration cap.  A single iteration is never tested for convergence (the first
    value has nothing to compare with), so capping at one, as one-pass MAP enrolment does, is a
    choice, not a failure: no warning."""
    if threshold is None or result.converged or result.n_iter < 2:
        return
    from sklearn.exceptions import ConvergenceWarning

    from ._caller_warnings import warn_at_caller

    warn_at_caller(f"{name} did not converge in {result.n_iter} iterations (relative change above "
                  f"{threshold}); {advice or 'raise the maximum number of iterations or the threshold'}",
                  ConvergenceWarning)


def _resume_or_run(estimator, X, y, initialize, get_state, set_state, phase, state_shapes,
                   run_em_kwargs):
    from ._em import EMResult, run_em

    path = getattr(estimator, "checkpoint", None)
    checkpoint = Checkpoint(path, estimator, X, y) if path is not None else None
    saved = (checkpoint.load(run_em_kwargs.get("max_iterations"), state_shapes)
             if checkpoint is not None else None)
    saved_phase = saved.extra.get("phase", 0) if saved is not None else None

    def restore():
        try:
            set_state(saved.arrays)
        except ValueError as exc:  # values a model file would not hold either
            raise InvalidFileError(f"{path}: the training state it holds is not usable ({exc})") from None

    if saved is not None and saved_phase == phase:  # (an earlier phase's: this one starts afresh;
        checkpoint.log_resumed(saved)  # a later phase's: this one is done, that one says so)
    if saved is not None and saved_phase > phase:
        restore()
        return EMResult(n_iter=0, converged=True, history=[])
    if saved is None or saved_phase < phase:
        initialize()
        start, history = 0, []
        if checkpoint is not None:
            checkpoint.save(0, [], get_state(), extra={"phase": phase})
    else:
        restore()
        start, history = saved.step, saved.history
        if saved.completed:
            return EMResult(n_iter=start, converged=saved.extra.get("converged", True), history=history)

    def save(step, hist):
        checkpoint.save(step, hist, get_state(), extra={"phase": phase})

    result = run_em(start_step=start, history=history,
                    on_iteration=save if checkpoint is not None else None, **run_em_kwargs)
    if checkpoint is not None:
        checkpoint.save(result.n_iter, result.history, get_state(), completed=True,
                        extra={"phase": phase, "converged": bool(result.converged)})
    return result
