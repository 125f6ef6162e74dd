"""Speaker-verification systems end to end, and the demo experiment of ``emkit demo``.

Building blocks (used by the demo and by the ``emkit`` commands on the user's own data):

- :func:`train_ubm`: k-means initialisation, then maximum-likelihood EM of a diagonal GMM
  (means, variances and weights).
- :func:`compute_stats`: one :class:`~emkit.GMMStats` per utterance (with a progress bar).
- Systems, each with an enrol and a score step, all scoring every model against every probe:
  GMM-MAP with linear scoring; ISV and JFA (linear scoring with the probe's channel offset);
  i-vectors with whitening, length normalisation, WCCN and cosine scoring
  (:class:`IVectorBackend`); i-vectors with PLDA.
- :class:`EnrolledModels`: enrolled models in one HDF5 file (emkit layout ``EnrolledModels``),
  holding the machine needed to score them, so a model file is all ``emkit score`` needs.

:func:`run_demo` (in :mod:`emkit.demo`, importable from here too) runs the whole experiment on
the embedded Japanese Vowels data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .factor_analysis import ISVMachine, JFAMachine
from .gmm import GMMMachine, map_gmm_m_step
from .io.errors import InvalidFileError
from .io.h5 import open_for_reading, open_for_writing, read_attr, write_stamp
from .ivector import IVectorMachine
from .kmeans import KMeansMachine
from .linear_scoring import linear_scoring
from .plda import PLDA, PLDAEnrollment
from .stats import GMMStats
from .wccn import WCCN
from .whitening import Whitening

__all__ = ["DemoConfig", "DemoResult", "EnrolledModels", "IVectorBackend", "SystemUnavailable",
           "train_ubm", "compute_stats", "stats_per_block", "enroll", "score", "load_machine",
           "run_demo", "length_norm", "save_png",
           "SYSTEM_TITLES", "PROTOCOL"]

#: Display names of the systems, in the order of the demo's table.
SYSTEM_TITLES = {
    "gmm-map": "GMM-MAP, linear scoring",
    "isv": "ISV",
    "jfa": "JFA",
    "ivector-cosine": "i-vector, WCCN, cosine",
    "ivector-plda": "i-vector, PLDA",
}

#: Probes scored together (bounds the (n_probes, C*D) channel offsets of ISV/JFA).
PROBE_BLOCK = 256


class SystemUnavailable(RuntimeError):
    """A system needs a module or a part of a machine that is not there."""


def progress_bar(iterable=None, *, total=None, desc: str, enabled: bool):
    """A tqdm bar on stderr shown only once the loop has lasted one second (and when enabled)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="utt", leave=False, delay=1.0,
                disable=not enabled)


# ---------------------------------------------------------------------------------------------
# UBM and statistics
# ---------------------------------------------------------------------------------------------


def train_ubm(frames, n_gaussians: int, *, max_iterations: int = 25,
              convergence_threshold: float = 1e-5, kmeans_iterations: int = 20,
              seed: int = 0, checkpoint=None, kmeans_checkpoint=None) -> GMMMachine:
    """k-means (k-means|| initialisation, ``seed``), then ML EM of means, variances and weights;
    ``checkpoint``/``kmeans_checkpoint``: the estimators' ``checkpoint=`` files (resume)."""
    kmeans = KMeansMachine(n_gaussians, max_iter=kmeans_iterations, random_state=seed,
                           checkpoint=kmeans_checkpoint)
    ubm = GMMMachine(n_gaussians, trainer="ml", max_fitting_steps=max_iterations,
                     checkpoint=checkpoint,
                     convergence_threshold=convergence_threshold, random_state=seed,
                     k_means_trainer=kmeans, update_means=True, update_variances=True,
                     update_weights=True)
    return ubm.fit(frames)


def compute_stats(ubm: GMMMachine, utterances, *, progress: bool = False,
                  desc: str = "statistics") -> list:
    """One GMMStats per utterance (list of (n_frames, D) arrays), in blocks of 64 utterances."""
    utterances = list(utterances)
    out = []
    with progress_bar(total=len(utterances), desc=desc, enabled=progress) as bar:
        for start in range(0, len(utterances), 64):
            block = utterances[start:start + 64]
            out.extend(ubm.transform(block))
            bar.update(len(block))
    return out


def stats_per_block(ubm: GMMMachine, budget_bytes: float = 256e6) -> int:
    """How many utterances' GMMStats (about ``16 C D`` bytes each) fit in ``budget_bytes``."""
    C, D = np.shape(ubm.means)
    return max(1, int(budget_bytes // (8 * (2 * C * D + C))))


def _sum_stats(stats_list) -> GMMStats:
    return stats_list[0] if len(stats_list) == 1 else sum(stats_list[1:], start=stats_list[0])


def _ubm_of(machine) -> GMMMachine:
    return machine if isinstance(machine, GMMMachine) else machine.ubm


# ---------------------------------------------------------------------------------------------
# i-vector back-end
# ---------------------------------------------------------------------------------------------


def length_norm(x) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


@dataclass
class IVectorBackend:
    """An i-vector extractor and what follows it.

    Cosine space: ``lnorm(wccn(lnorm(whiten(w))))``; PLDA space: ``lnorm(whiten(w))``, or with
    an LDA ``lnorm(lda(lnorm(whiten(w))))``.  ``whitening``, ``lda``, ``wccn`` and ``plda`` may be
    None (step left out; PLDA scoring unavailable).  ``plda_model`` and ``plda_dim_f``: the
    :class:`~emkit.PLDA` that :meth:`fit` trains; ``lda_dim``: the dimension of its
    :class:`~emkit.lda.LDA` (None: no LDA).
    """

    ivector: object
    whitening: object = None
    wccn: object = None
    plda: object = None
    plda_model: str = "two-covariance"
    plda_dim_f: int | None = None
    lda_dim: int | None = None
    lda: object = None

    @property
    def ubm(self) -> GMMMachine:
        return self.ivector.ubm

    def fit(self, train_stats, labels=None, *, plda: bool = True):
        """Fit whitening (and, with labels, WCCN and PLDA) on the i-vectors of ``train_stats``."""
        ivectors = self.ivector.transform(train_stats)
        self.whitening = Whitening().fit(ivectors)
        self.lda = None
        space = self.plda_space(ivectors, from_ivectors=True)
        if labels is not None and self.lda_dim is not None:
            from .lda import LDA

            self.lda = LDA(self.lda_dim).fit(space, np.asarray(labels))
            space = length_norm(self.lda.transform(space))
        if labels is not None:
            self.wccn = WCCN().fit(space, np.asarray(labels))
            if plda:
                self.plda = PLDA(self.plda_model, dim_f=self.plda_dim_f).fit(
                    space, np.asarray(labels))
        return self

    def plda_space(self, X, *, from_ivectors=False) -> np.ndarray:
        w = X if from_ivectors else self.ivector.transform(X)
        if self.whitening is not None:
            w = self.whitening.transform(w)
        w = length_norm(w)
        return w if self.lda is None else length_norm(self.lda.transform(w))

    def cosine_space(self, X, *, from_ivectors=False) -> np.ndarray:
        v = self.plda_space(X, from_ivectors=from_ivectors)
        if self.wccn is not None:
            v = length_norm(self.wccn.transform(v))
        return v

    def save(self, hdf5):
        with open_for_writing(hdf5) as f:
            write_stamp(f, "IVectorBackend", 1)
            self.ivector.save(f.create_group("ivector"))
            for name in ("whitening", "wccn"):
                step = getattr(self, name)
                if step is not None:
                    g = f.create_group(name)
                    g["weights"] = np.asarray(step.weights, dtype=np.float64)
                    g["input_subtract"] = np.asarray(step.input_subtract, dtype=np.float64)
                    g["input_divide"] = np.float64(step.input_divide)
            if self.lda is not None:
                self.lda.save(f.create_group("lda"))
            if self.plda is not None:
                self.plda.save(f.create_group("plda"))

    @classmethod
    def from_hdf5(cls, hdf5) -> "IVectorBackend":
        from .io.systems import read_ivector_backend

        return read_ivector_backend(hdf5, cls)


_FA_CLASSES = {"ISVMachine": ISVMachine, "JFAMachine": JFAMachine}


def load_machine(path):
    """A UBM (GMMMachine), ISVMachine, JFAMachine, IVectorMachine or IVectorBackend from HDF5."""
    with open_for_reading(path) as f:
        found = read_attr(f, "emkit_class", required=False)
    if found in (None, "GMMMachine"):
        return GMMMachine.from_hdf5(path)
    if found in _FA_CLASSES:
        return _FA_CLASSES[found].from_hdf5(path)
    if found == "IVectorMachine":
        return IVectorBackend(IVectorMachine.from_hdf5(path))
    if found == "IVectorBackend":
        return IVectorBackend.from_hdf5(path)
    shown = f"an emkit {found}" if found.isidentifier() and len(found) <= 64 else "another object"
    raise InvalidFileError(f"{os.fspath(path)} holds {shown}, not a UBM, ISV, JFA or i-vector "
                           "machine")


# ---------------------------------------------------------------------------------------------
# enrolled models
# ---------------------------------------------------------------------------------------------


@dataclass
class EnrolledModels:
    """Enrolled models of one system: ``model_ids`` and per-model arrays, plus the machine.

    ``arrays`` by system: ``gmm-map``: ``means`` (M, C, D); ``isv``: ``z`` (M, CD); ``jfa``:
    ``y`` (M, r_V) and ``z`` (M, CD); ``ivector-cosine``: ``vectors`` (M, R) (unit norm);
    ``ivector-plda``: ``means`` (M, R) and ``counts`` (M,).
    """

    system: str
    model_ids: list
    arrays: dict
    machine: object
    parameters: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.model_ids)

    @property
    def ubm(self) -> GMMMachine:
        return _ubm_of(self.machine)

    @classmethod
    def concatenate(cls, parts) -> "EnrolledModels":
        """The models of several :class:`EnrolledModels` of one system and machine, in order."""
        parts = list(parts)
        first = parts[0]
        arrays = {k: np.concatenate([p.arrays[k] for p in parts]) for k in first.arrays}
        ids = [m for p in parts for m in p.model_ids]
        return cls(first.system, ids, arrays, first.machine, first.parameters)

    def subset(self, keep) -> "EnrolledModels":
        """The models at indices ``keep``, in that order."""
        keep = np.asarray(keep, dtype=int)
        return EnrolledModels(self.system, [self.model_ids[i] for i in keep],
                              {k: v[keep] for k, v in self.arrays.items()}, self.machine,
                              self.parameters)

    def save(self, hdf5):
        with open_for_writing(hdf5) as f:
            write_stamp(f, "EnrolledModels", 1)
            f.attrs["system"] = self.system
            for key, value in self.parameters.items():
                f.attrs[key] = value
            f["model_ids"] = np.array([m.encode("utf-8") for m in self.model_ids])
            for key, value in self.arrays.items():
                f[key] = np.asarray(value, dtype=np.float64)
            self.machine.save(f.create_group("machine"))

    @classmethod
    def from_hdf5(cls, hdf5) -> "EnrolledModels":
        from .io.systems import read_enrolled_models

        return read_enrolled_models(hdf5, cls)


def _system_for(machine, backend: str) -> str:
    if isinstance(machine, GMMMachine):
        return "gmm-map"
    name = type(machine).__name__
    if name == "ISVMachine":
        return "isv"
    if name == "JFAMachine":
        return "jfa"
    if backend == "plda":
        if machine.plda is None:
            raise SystemUnavailable("the i-vector system has no PLDA (train it with speaker labels "
                                    "and PLDA enabled)")
        return "ivector-plda"
    return "ivector-cosine"


def enroll(machine, model_ids, model_stats, *, relevance_factor: float = 4.0,
           backend: str = "cosine", progress: bool = False) -> EnrolledModels:
    """Enrol one model per entry of ``model_stats`` (a list of GMMStats lists).

    ``machine``: a UBM (GMM-MAP, Reynolds relevance MAP of the means), an ISV or JFA machine,
    or an :class:`IVectorBackend` (``backend`` "cosine" or "plda").
    """
    system = _system_for(machine, backend)
    bar = dict(desc=f"enrolling ({system})", enabled=progress)
    params = {}
    if system == "gmm-map":
        means = []
        for stats in progress_bar(model_stats, **bar):
            model = GMMMachine(machine.n_gaussians, trainer="map", ubm=machine,
                               map_relevance_factor=relevance_factor)
            map_gmm_m_step(model, _sum_stats(stats), update_means=True, reynolds_adaptation=True,
                           relevance_factor=relevance_factor)
            means.append(model.means)
        arrays = {"means": np.array(means)}
        params["relevance_factor"] = float(relevance_factor)
    elif system == "isv":
        z = [machine.enroll(list(s))[0] for s in progress_bar(model_stats, **bar)]
        arrays = {"z": np.array(z)}
    elif system == "jfa":
        latent = [machine.enroll(list(s)) for s in progress_bar(model_stats, **bar)]
        arrays = {"y": np.array([y for y, _ in latent]), "z": np.array([z for _, z in latent])}
    else:
        counts = np.array([len(s) for s in model_stats], dtype=np.float64)
        flat = [x for s in model_stats for x in s]
        owner = np.repeat(np.arange(len(model_stats)), counts.astype(int))
        space = machine.cosine_space if system == "ivector-cosine" else machine.plda_space
        vectors = space(flat)
        sums = np.zeros((len(model_stats), vectors.shape[1]))
        np.add.at(sums, owner, vectors)
        means = sums / counts[:, None]
        arrays = ({"vectors": length_norm(means)} if system == "ivector-cosine"
                  else {"means": means, "counts": counts})
    return EnrolledModels(system, list(model_ids), arrays, machine, params)


def _fa_scores(machine, offsets, probe_stats, progress: bool) -> np.ndarray:
    """Linear scores of models ``m + offsets`` (M, CD) with the probes' channel offsets ``U x``."""
    ubm = machine.ubm
    C, D = ubm.means.shape
    models = (offsets + machine.mean_supervector).reshape(-1, C, D)
    out = np.empty((len(models), len(probe_stats)))
    with progress_bar(total=len(probe_stats), desc="scoring", enabled=progress) as bar:
        for start in range(0, len(probe_stats), PROBE_BLOCK):
            block = probe_stats[start:start + PROBE_BLOCK]
            ux = np.array([machine.estimate_ux([s]) for s in block])
            out[:, start:start + len(block)] = linear_scoring(models, ubm, block, ux,
                                                              frame_length_normalization=True)
            bar.update(len(block))
    return out


def score(models: EnrolledModels, probe_stats, *, progress: bool = False) -> np.ndarray:
    """Scores of every model against every probe (one GMMStats each): (n_models, n_probes)."""
    probe_stats = list(probe_stats)
    machine, a, system = models.machine, models.arrays, models.system
    if system == "gmm-map":
        return linear_scoring(a["means"], machine, probe_stats, frame_length_normalization=True)
    if system == "isv":
        return _fa_scores(machine, a["z"] * machine.D, probe_stats, progress)
    if system == "jfa":
        return _fa_scores(machine, a["y"] @ machine.V.T + a["z"] * machine.D, probe_stats, progress)
    if system == "ivector-cosine":
        return a["vectors"] @ machine.cosine_space(probe_stats).T
    if system == "ivector-plda":
        enrolled = PLDAEnrollment(a["means"], a["counts"])
        return machine.plda.log_likelihood_ratio(enrolled, machine.plda_space(probe_stats))
    raise ValueError(f"unknown system {system!r} in the model file")


def save_png(fig, path):
    from .io.atomic import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")


# the demo lives in emkit.demo; its names stay importable from here
from .demo import (DATA_NOTES, PROTOCOL, DemoConfig, DemoResult, format_table,  # noqa: E402
                   run_demo)
