"""Enrolled models in one file, enrolment and scoring of any system, and loading a machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..io._registry import register
from ..io.errors import InvalidFileError
from ..io.h5 import open_for_reading, read_attr
from ._ivector_backend import IVectorBackend
from ._systems import SYSTEMS, System, system_for
from ._ubm import ubm_of


@dataclass
class EnrolledModels:
    """Enrolled models of one system: ``model_ids`` and per-model arrays, plus the machine.

    ``arrays`` by system: ``gmm-map``: ``means`` (M, C, D); ``isv``: ``z`` (M, CD); ``jfa``:
    ``y`` (M, r_V) and ``z`` (M, CD); ``ivector-cosine``: ``vectors`` (M, R) (unit norm);
    ``ivector-plda``: ``means`` (M, R) and ``counts`` (M,).  ``len(models)`` is M.

    Parameters
    ----------
    system : str
        One of :data:`~emkit.experiment.SYSTEMS`' names.
    model_ids : list of str
        The (M,) model ids.
    arrays : dict of str to ndarray of shape (M, ...)
        The per-model arrays above.
    machine : object
        The machine that enrolled them and scores them (UBM, ISV, JFA or IVectorBackend).
    parameters : dict, optional
        The enrolment parameters (GMM-MAP: ``relevance_factor``; the Gaussian selection, when
        one was in force).
    """

    system: str
    model_ids: list
    arrays: dict
    machine: object
    parameters: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.model_ids)

    @property
    def ubm(self):
        """The UBM behind the models' machine (:func:`~emkit.experiment.ubm_of`)."""
        return ubm_of(self.machine)

    def scorer(self) -> System:
        """The :class:`System` object of these models (their machine and parameters).

        Returns
        -------
        System

        Raises
        ------
        ValueError
            An unknown ``system``.
        """
        if self.system not in SYSTEMS:
            raise ValueError(f"unknown system {self.system!r} in the model file")
        return SYSTEMS[self.system].from_parameters(self.machine, self.parameters)

    @classmethod
    def concatenate(cls, parts) -> "EnrolledModels":
        """The models of several :class:`EnrolledModels` of one system and machine, in order.

        Parameters
        ----------
        parts : iterable of EnrolledModels
            At least one; the first one's system, machine and parameters are kept.

        Returns
        -------
        EnrolledModels
        """
        parts = list(parts)
        first = parts[0]
        arrays = {k: np.concatenate([p.arrays[k] for p in parts]) for k in first.arrays}
        ids = [m for p in parts for m in p.model_ids]
        return cls(first.system, ids, arrays, first.machine, first.parameters)

    def subset(self, keep) -> "EnrolledModels":
        """The models at some indices, in that order.

        Parameters
        ----------
        keep : array-like of shape (K,)
            Integer indices (repeats allowed).

        Returns
        -------
        EnrolledModels
            K models, sharing this one's machine and parameters.
        """
        keep = np.asarray(keep, dtype=int)
        return EnrolledModels(self.system, [self.model_ids[i] for i in keep],
                              {k: v[keep] for k, v in self.arrays.items()}, self.machine,
                              self.parameters)

    def save(self, hdf5):
        """Write the models, with their machine, in emkit's layout ``EnrolledModels`` (see
        :mod:`emkit.io.systems`).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group.

        Raises
        ------
        ValueError
            Models emkit would refuse to load (arrays of other sizes than the machine's);
            nothing is written.
        """
        from ..io._registry import save

        save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "EnrolledModels":
        """Read models written by :meth:`save`.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        EnrolledModels

        Raises
        ------
        emkit.io.InvalidFileError
            Not an ``EnrolledModels`` file, or arrays that do not fit the system or machine.
        """
        from ..io.systems import read_enrolled_models

        return read_enrolled_models(hdf5, cls)

    #: system name -> :class:`System` class (what :mod:`emkit.io.systems` checks a file against)
    systems = SYSTEMS


def enroll(machine, model_ids, model_stats, *, relevance_factor: float = 4.0,
           backend: str = "cosine", progress: bool = False) -> EnrolledModels:
    """Enrol one model per entry of ``model_stats``, with the system the machine implies.

    The Gaussian selection in force (``emkit.config_context(gselect_top_k=...)``, as the
    statistics were computed) is recorded with the models, for :func:`selection_mismatch` at
    scoring.

    Parameters
    ----------
    machine : GMMMachine, ISVMachine, JFAMachine or IVectorBackend
        A UBM (GMM-MAP: Reynolds relevance MAP of the means), an ISV or JFA machine, or an
        i-vector back-end.
    model_ids : sequence of str
        One id per model, (M,).
    model_stats : list of list of GMMStats
        Each model's enrolment statistics.
    relevance_factor : float, keyword-only, default 4.0
        GMM-MAP's relevance factor (the other systems ignore it).
    backend : {"cosine", "plda"}, keyword-only, default "cosine"
        The scoring of an :class:`IVectorBackend` (the other machines ignore it).
    progress : bool, keyword-only, default False
        Show a progress bar.

    Returns
    -------
    EnrolledModels

    Raises
    ------
    SystemUnavailable
        A machine without the parts its system needs (``backend="plda"`` without a PLDA...).
    """
    system = system_for(machine, backend=backend, relevance_factor=relevance_factor)
    arrays = system.enroll(model_stats, progress=progress)
    return EnrolledModels(system.name, list(model_ids), arrays, machine,
                          {**system.parameters, **_selection_in_force()})


def _selection_in_force() -> dict:
    """The configured Gaussian selection as model-file parameters (empty: exact statistics)."""
    from .._config import get_config

    config = get_config()
    if config["gselect_top_k"] is None:
        return {}
    return {"gselect_top_k": int(config["gselect_top_k"]),
            "gselect_min_posterior": float(config["gselect_min_posterior"] or 0.0)}


def selection_mismatch(models: EnrolledModels) -> str | None:
    """How the Gaussian selection in force differs from the one models were enrolled with.

    Parameters
    ----------
    models : EnrolledModels

    Returns
    -------
    str or None
        Both selections, in words, when they differ (the models' statistics and the probes'
        would not be computed alike); None when they agree.
    """
    def shown(selection):
        if not selection.get("gselect_top_k"):
            return "exact statistics"
        return (f"--gselect {selection['gselect_top_k']}"
                + (f" --min-posterior {selection['gselect_min_posterior']:g}"
                   if selection.get("gselect_min_posterior") else ""))

    enrolled = {k: models.parameters.get(k) for k in ("gselect_top_k", "gselect_min_posterior")}
    now, then = shown(_selection_in_force()), shown(enrolled)
    return None if now == then else f"the models were enrolled with {then}, the probes get {now}"


def score(models: EnrolledModels, probe_stats, *, progress: bool = False) -> np.ndarray:
    """Scores of every model against every probe.

    Parameters
    ----------
    models : EnrolledModels
    probe_stats : iterable of GMMStats
        One per probe, from the models' UBM.
    progress : bool, keyword-only, default False
        Show a progress bar.

    Returns
    -------
    ndarray of shape (n_models, n_probes)
        Float64 scores.
    """
    return models.scorer().score(models.arrays, list(probe_stats), progress=progress)


def _ivector_system(path):
    from ..ivector import IVectorMachine

    return IVectorBackend(IVectorMachine.from_hdf5(path))


def _loaders() -> dict:
    """Class stamp of a machine file -> its loader (no stamp: a reference GMM file)."""
    loaders = {cls.machine_class.__name__: cls.machine_class.from_hdf5 for cls in SYSTEMS.values()}
    return {None: loaders["GMMMachine"], **loaders, "IVectorMachine": _ivector_system}


def load_machine(path):
    """Read a machine that can enrol and score from an HDF5 file.

    Parameters
    ----------
    path : str or path-like
        A file holding a UBM (GMMMachine, emkit's or bob.learn.em's layout), an ISVMachine,
        JFAMachine, IVectorMachine or IVectorBackend.

    Returns
    -------
    GMMMachine, ISVMachine, JFAMachine or IVectorBackend
        An IVectorMachine comes back as an :class:`IVectorBackend` without back-end steps.

    Raises
    ------
    InvalidFileError
        Another object, or a machine without every part enrolment and scoring need (an ISV
        file without its U would enrol with random draws), naming the file and the parts.
    """
    with open_for_reading(path) as f:
        found = read_attr(f, "emkit_class", required=False)
    loaders = _loaders()
    if found in loaders:
        machine = loaders[found](path)
        missing = type(system_for(machine)).missing(machine)
        if missing:
            raise InvalidFileError(f"{os.fspath(path)} holds an untrained "
                                   f"{type(machine).__name__} (missing: {', '.join(missing)}); "
                                   "it cannot enrol or score")
        return machine
    shown = f"an emkit {found}" if found.isidentifier() and len(found) <= 64 else "another object"
    raise InvalidFileError(f"{os.fspath(path)} holds {shown}, not a UBM, ISV, JFA or i-vector "
                           "machine")


register(EnrolledModels, "EnrolledModels", write="emkit.io.systems:write_enrolled_models",
         read="emkit.io.systems:read_enrolled_models")
