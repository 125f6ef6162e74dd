"""The interface every verification system implements (:class:`System`); the systems
themselves are in :mod:`emkit.experiment._systems`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._fitted import fitted_value
from ._ubm import ubm_of


class System:
    """A system: its ``name``, the class of its ``machine`` and its per-model arrays.

    Subclasses enrol and score; their plain methods share the docstrings below.

    Parameters
    ----------
    machine : object
        The machine that enrols and scores, an instance of ``machine_class``.
    """

    name: ClassVar[str]
    machine_class: ClassVar[type]
    #: per-model array name -> its dimensions ("M": the models; others: :meth:`sizes`' keys)
    model_arrays: ClassVar[dict]
    #: the i-vector back-end it scores with ("cosine" or "plda"); None: any
    backend: ClassVar[str | None] = None

    def __init__(self, machine):
        self.machine = machine

    @classmethod
    def from_parameters(cls, machine, parameters: dict) -> "System":
        """The system of a machine with the enrolment parameters of a model file.

        Parameters
        ----------
        machine : object
            An instance of ``machine_class``.
        parameters : dict
            The model file's enrolment parameters (:attr:`parameters`); unknown keys ignored.

        Returns
        -------
        System
        """
        return cls(machine)

    @property
    def parameters(self) -> dict:
        """The enrolment parameters a model file records (scalars)."""
        return {}

    def enroll(self, stats_lists, *, progress: bool = False) -> dict:
        """Enrol one model per entry of ``stats_lists``.

        Parameters
        ----------
        stats_lists : list of list of GMMStats
            Each model's enrolment statistics, from the machine's UBM.
        progress : bool, keyword-only, default False
            Show a progress bar.

        Returns
        -------
        dict of str to ndarray of shape (M, ...)
            The per-model arrays of :attr:`model_arrays`, one row per model.
        """
        raise NotImplementedError

    def score(self, models: dict, probes: list, *, progress: bool = False) -> np.ndarray:
        """Scores of every model against every probe.

        Parameters
        ----------
        models : dict of str to ndarray of shape (M, ...)
            The per-model arrays of :meth:`enroll`.
        probes : list of GMMStats
            One per probe (P), from the machine's UBM.
        progress : bool, keyword-only, default False
            Show a progress bar.

        Returns
        -------
        ndarray of shape (M, P)
            Float64 scores.
        """
        raise NotImplementedError

    @classmethod
    def sizes(cls, machine, n_models: int) -> dict:
        """The sizes the per-model arrays of a machine's models must have.

        Parameters
        ----------
        machine : object
            An instance of ``machine_class``.
        n_models : int
            The number of models, M.

        Returns
        -------
        dict of str to int
            ``{dimension name: size}`` of the names in :attr:`model_arrays` (``"M"``, ``"C"``,
            ``"D"``, ``"CD"``...).
        """
        C, D = np.shape(ubm_of(machine).means)
        return {"M": n_models, "C": C, "D": D, "CD": C * D}

    @classmethod
    def missing(cls, machine) -> list:
        """The parameters enrolment and scoring need that a machine lacks.

        Parameters
        ----------
        machine : object
            An instance of ``machine_class``.

        Returns
        -------
        list of str
            The names of their datasets or groups in its file; empty when it has them all.
        """
        absent = ["ubm"] if machine.ubm is None else []
        return absent + [k for k in machine._parameter_names() if fitted_value(machine, k) is None]

    @classmethod
    def can_score(cls, machine) -> bool:
        """Whether a machine holds every parameter scoring needs (:meth:`missing` is empty).

        Parameters
        ----------
        machine : object
            An instance of ``machine_class``.

        Returns
        -------
        bool
        """
        return not cls.missing(machine)
