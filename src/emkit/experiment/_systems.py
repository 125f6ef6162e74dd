"""The verification systems as objects: one class per system, and the registry of their names.

A system wraps the machine that enrols and scores (a UBM, an ISV or JFA machine, an
:class:`~emkit.experiment.IVectorBackend`) and the enrolment parameters its model files record:

- :meth:`System.enroll` ``(list of GMMStats lists) -> models``: a dict of per-model arrays,
  one row per model (:attr:`System.model_arrays` names them and their dimensions);
- :meth:`System.score` ``(models, probes) -> (M, P)`` scores of every model against every probe;
- :meth:`System.sizes`/:meth:`System.missing`: what a reader checks the arrays of a model file
  against (:mod:`emkit.io.systems`).

:data:`SYSTEMS` maps each system name (the ``system`` of a model file) to its class;
:func:`system_for` picks the class that handles a machine.  :class:`System`, the interface,
is defined in :mod:`emkit.experiment._system_base`.
"""

from __future__ import annotations

import numpy as np

from .. import _device_infer
from .._gmm_mstep import EPSILON
from ..factor_analysis import ISVMachine, JFAMachine
from ..gmm import GMMMachine
from ..linear_scoring import linear_scoring
from ..plda import PLDAEnrollment
from ..stats import GMMStats
from ._common import SystemUnavailable, length_norm, progress_bar
from ._ivector_backend import IVectorBackend
from ._system_base import System
from .._describe import describe


def _sum_stats(stats_list):
    return stats_list[0] if len(stats_list) == 1 else sum(stats_list[1:], start=stats_list[0])


class GMMMAPSystem(System):
    """GMM-MAP: Reynolds relevance MAP of the UBM's means; linear scoring.

    Parameters
    ----------
    machine : GMMMachine
        The UBM.
    relevance_factor : float, default 4.0
        The MAP relevance factor of the enrolment.
    """

    name, machine_class = "gmm-map", GMMMachine
    model_arrays = {"means": ("M", "C", "D")}

    def __init__(self, machine, relevance_factor: float = 4.0):
        super().__init__(machine)
        self.relevance_factor = relevance_factor

    @classmethod
    def from_parameters(cls, machine, parameters):
        """The GMM-MAP system of a UBM with a model file's ``relevance_factor`` (default 4.0).

        Parameters
        ----------
        machine : GMMMachine
        parameters : dict

        Returns
        -------
        GMMMAPSystem
        """
        return cls(machine, float(parameters.get("relevance_factor", 4.0)))

    @property
    def parameters(self):
        """``{"relevance_factor": float}``, what a model file records."""
        return {"relevance_factor": float(self.relevance_factor)}

    def enroll(self, stats_lists, *, progress=False):
        ubm = self.machine
        if _device_infer.device() is not None:  # every model in one call on the device
            return {"means": self._enroll_on_device(stats_lists)}
        means = []
        for stats in progress_bar(stats_lists, desc=f"enrolling ({self.name})", enabled=progress,
                                  unit="model"):
            model = GMMMachine(ubm.n_gaussians, trainer="map", ubm=ubm,
                               map_relevance_factor=self.relevance_factor)
            means.append(model.adapt(_sum_stats(stats)).means)
        return {"means": np.array(means)}

    def _enroll_on_device(self, stats_lists):
        ubm = self.machine
        batch = GMMStats.stack([_sum_stats(stats) for stats in stats_lists], name="model_stats",
                               shape=ubm.means.shape)
        return _device_infer.map_adapt(ubm.means, batch.n, batch.sum_px, self.relevance_factor,
                                       None, EPSILON, _device_infer.device())

    def score(self, models, probes, *, progress=False):
        return linear_scoring(models["means"], self.machine, probes,
                              frame_length_normalization=True)

    @classmethod
    def missing(cls, machine):
        """Nothing: a UBM read from a file has every parameter MAP and scoring need.

        Parameters
        ----------
        machine : GMMMachine

        Returns
        -------
        list
            Empty.
        """
        return []


class ISVSystem(System):
    """ISV: class offsets ``z``; linear scoring with the probe's channel offset.

    Parameters
    ----------
    machine : ISVMachine
        A trained machine, with its UBM.
    """

    name, machine_class = "isv", ISVMachine
    model_arrays = {"z": ("M", "CD")}

    def enroll(self, stats_lists, *, progress=False):
        bar = progress_bar(stats_lists, desc=f"enrolling ({self.name})", enabled=progress,
                           unit="model")
        return {"z": np.array([self.machine.enroll(list(s))[0] for s in bar])}

    def score(self, models, probes, *, progress=False):
        return _score_matrix(self.machine, models["z"], probes, progress=progress)


class JFASystem(System):
    """JFA: speaker factors ``y`` and offsets ``z``; linear scoring with the channel offset.

    Parameters
    ----------
    machine : JFAMachine
        A trained machine, with its UBM.
    """

    name, machine_class = "jfa", JFAMachine
    model_arrays = {"y": ("M", "r_V"), "z": ("M", "CD")}

    def enroll(self, stats_lists, *, progress=False):
        bar = progress_bar(stats_lists, desc=f"enrolling ({self.name})", enabled=progress,
                           unit="model")
        latent = [self.machine.enroll(list(s)) for s in bar]
        return {"y": np.array([y for y, _ in latent]), "z": np.array([z for _, z in latent])}

    def score(self, models, probes, *, progress=False):
        return _score_matrix(self.machine, (models["y"], models["z"]), probes, progress=progress)

    @classmethod
    def sizes(cls, machine, n_models):
        """:meth:`System.sizes` with ``"r_V"``, the rank of the machine's V.

        Parameters
        ----------
        machine : JFAMachine
        n_models : int

        Returns
        -------
        dict of str to int
        """
        return dict(super().sizes(machine, n_models), r_V=int(machine.r_V))


def _score_matrix(machine, models, probes, *, progress: bool = False) -> np.ndarray:
    """ISV/JFA scores (M, P) through the machine's batched scorer: ``models`` the ISV offsets
    Z (M, CD) or the JFA pair (Y, Z)."""
    with progress_bar(total=len(probes), desc="scoring", enabled=progress) as bar:
        scores = machine.score_matrix(models, probes)
        bar.update(len(probes))
    return scores


class _IVectorSystem(System):
    machine_class = IVectorBackend

    def _space(self, X):
        raise NotImplementedError

    def _mean_vectors(self, stats_lists):
        """The mean of each model's vectors (M, K) and the number of its utterances (M,)."""
        counts = np.array([len(s) for s in stats_lists], dtype=np.float64)
        flat = [x for s in stats_lists for x in s]
        owner = np.repeat(np.arange(len(stats_lists)), counts.astype(int))
        vectors = self._space(flat)
        sums = np.zeros((len(stats_lists), vectors.shape[1]))
        np.add.at(sums, owner, vectors)
        return sums / counts[:, None], counts

    @classmethod
    def sizes(cls, machine, n_models):
        """``{"M": n_models, "R": the vectors' dimension}`` (the LDA's, when there is one).

        Parameters
        ----------
        machine : IVectorBackend
        n_models : int

        Returns
        -------
        dict of str to int
        """
        lda = getattr(machine, "lda", None)  # the dimension of the vectors (after an LDA)
        return {"M": n_models, "R": int(machine.ivector.dim_t if lda is None
                                        else lda.n_components)}

    @classmethod
    def missing(cls, machine):
        """Which of the i-vector extractor's ``T`` and ``sigma`` the back-end lacks.

        Parameters
        ----------
        machine : IVectorBackend

        Returns
        -------
        list of str
        """
        return [k for k in ("T", "sigma") if getattr(machine.ivector, k) is None]


class IVectorCosineSystem(_IVectorSystem):
    """i-vectors, whitening, length normalisation, WCCN; cosine scoring of the models' means.

    Parameters
    ----------
    machine : IVectorBackend
    """

    name, backend = "ivector-cosine", "cosine"
    model_arrays = {"vectors": ("M", "R")}

    def _space(self, X):
        return self.machine.cosine_space(X)

    def enroll(self, stats_lists, *, progress=False):
        return {"vectors": length_norm(self._mean_vectors(stats_lists)[0])}

    def score(self, models, probes, *, progress=False):
        return models["vectors"] @ self._space(probes).T


class IVectorPLDASystem(_IVectorSystem):
    """i-vectors, whitening, length normalisation (LDA); the PLDA log-likelihood ratio.

    Parameters
    ----------
    machine : IVectorBackend
        With a PLDA (:class:`SystemUnavailable` otherwise).
    """

    name, backend = "ivector-plda", "plda"
    model_arrays = {"means": ("M", "R"), "counts": ("M",)}

    def __init__(self, machine):
        if machine.plda is None:
            raise SystemUnavailable("the i-vector system has no PLDA (train it with speaker "
                                    "labels and PLDA enabled)")
        super().__init__(machine)

    @classmethod
    def missing(cls, machine):
        """As the cosine system, and ``"plda"`` when the back-end has no fitted PLDA.

        Parameters
        ----------
        machine : IVectorBackend

        Returns
        -------
        list of str
        """
        fitted = machine.plda is not None and machine.plda.__sklearn_is_fitted__()
        return super().missing(machine) + ([] if fitted else ["plda"])

    def _space(self, X):
        return self.machine.plda_space(X)

    def enroll(self, stats_lists, *, progress=False):
        means, counts = self._mean_vectors(stats_lists)
        return {"means": means, "counts": counts}

    def score(self, models, probes, *, progress=False):
        enrolled = PLDAEnrollment(models["means"], models["counts"])
        return self.machine.plda.log_likelihood_ratio(enrolled, self._space(probes))


#: system name -> class, in the order of the demo's table
SYSTEMS = {cls.name: cls for cls in (GMMMAPSystem, ISVSystem, JFASystem, IVectorCosineSystem,
                                     IVectorPLDASystem)}


def system_for(machine, *, backend: str = "cosine", relevance_factor: float = 4.0) -> System:
    """The system that enrols with a machine.

    Parameters
    ----------
    machine : GMMMachine, ISVMachine, JFAMachine or IVectorBackend
        A UBM (GMM-MAP), an ISV or JFA machine, or an i-vector back-end.
    backend : {"cosine", "plda"}, keyword-only, default "cosine"
        The i-vector system of an :class:`IVectorBackend` (other machines ignore it).
    relevance_factor : float, keyword-only, default 4.0
        GMM-MAP's relevance factor (other machines ignore it).

    Returns
    -------
    System

    Raises
    ------
    ValueError
        Another ``backend`` for an IVectorBackend.
    SystemUnavailable
        ``backend="plda"`` and the back-end has no PLDA.
    TypeError
        Another kind of machine.
    """
    if isinstance(machine, IVectorBackend) and backend not in ("cosine", "plda"):
        raise ValueError(f"backend must be 'cosine' or 'plda'; got {describe(backend)}")
    for cls in SYSTEMS.values():
        if isinstance(machine, cls.machine_class) and cls.backend in (None, backend):
            return cls.from_parameters(machine, {"relevance_factor": relevance_factor})
    raise TypeError(f"machine must be a UBM (GMMMachine), an ISVMachine, a JFAMachine or an "
                    f"IVectorBackend; got {type(machine).__name__}")
