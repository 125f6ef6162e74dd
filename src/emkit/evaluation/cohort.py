"""Cohorts for score normalisation with enrolled-model systems (GMM-MAP, ISV, JFA, i-vector).

A cohort is given as ``{cohort model id: [utterance ids]}`` (the layout of an enrolment list,
Kaldi's spk2utt): each entry is enrolled as one T-norm cohort model from its utterances, and every
utterance listed is a Z-norm impostor probe.  A Z-cohort utterance and a T-cohort model "share a
speaker" (ZT-norm's mask) when the utterance is listed under that model.

:func:`cohort_matrices` scores the cohorts with the system that scored the trials and
:func:`normalise` applies a normalisation of :mod:`emkit.score_norm` by name.  Both the command
line (``emkit score --norm``) and the recipes (``[norm]``) use them.
"""

from __future__ import annotations

import numpy as np

from .. import experiment as ex
from . import score_norm
from .._describe import describe
from ..io._message_text import show_key

__all__ = ["METHODS", "enroll_cohort", "same_speaker", "cohort_matrices", "normalise"]

#: Normalisations by name: Z-, T-, ZT-, S- and adaptive S-norm.
METHODS = ("z", "t", "zt", "s", "as")


def enroll_cohort(models, cohort: dict, cohort_stats: dict, *, progress: bool = False):
    """Enrol the T-norm cohort models as ``models`` (an :class:`~emkit.experiment.EnrolledModels`)
    were: same machine, same relevance factor (GMM-MAP), same back-end (i-vectors).

    Parameters
    ----------
    models : EnrolledModels
        The enrolled models of the trials.
    cohort : dict
        ``{cohort model id: [utterance ids]}``, n_t models (not empty).
    cohort_stats : dict
        ``{utterance id: GMMStats}`` for every utterance of ``cohort`` (else ``ValueError``).
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    cohort_models : EnrolledModels
        The n_t enrolled cohort models.
    z_ids : list of str
        The n_z distinct cohort utterances, in order of first appearance.
    z_stats : list of GMMStats
        Their statistics.
    """
    names = list(cohort)
    if not names:
        raise ValueError("cohort is empty: at least one cohort model is needed")
    z_ids = list(dict.fromkeys(u for us in cohort.values() for u in us))
    missing = [u for u in z_ids if u not in cohort_stats]
    if missing:
        raise ValueError("cohort_stats has no statistics for cohort utterance "
                         f"{show_key(missing[0])} ({len(missing)} missing)")
    backend = "plda" if models.system == "ivector-plda" else "cosine"
    relevance = float(models.parameters.get("relevance_factor", 4.0))
    cohort_models = ex.enroll(models.machine, names,
                              [[cohort_stats[u] for u in cohort[m]] for m in names],
                              relevance_factor=relevance, backend=backend, progress=progress)
    return cohort_models, z_ids, [cohort_stats[u] for u in z_ids]


def same_speaker(cohort: dict, z_ids) -> np.ndarray:
    """ZT-norm's ``same_speaker_mask``: which Z-cohort utterances belong to which cohort model.

    Parameters
    ----------
    cohort : dict
        ``{cohort model id: [utterance ids]}``, n_t models.
    z_ids : sequence of str
        The n_z Z-cohort utterances (every utterance of ``cohort`` among them).

    Returns
    -------
    ndarray of shape (n_t, n_z), bool
        True where utterance ``z_ids[j]`` is listed under cohort model ``i``.
    """
    column = {u: j for j, u in enumerate(z_ids)}
    names = list(cohort)
    mask = np.zeros((len(names), len(z_ids)), dtype=bool)
    rows = np.repeat(np.arange(len(names)), [len(cohort[m]) for m in names])
    mask[rows, [column[u] for m in names for u in cohort[m]]] = True
    return mask


def cohort_matrices(models, probe_stats, cohort: dict, cohort_stats: dict, *,
                    cohort_cohort: bool = True, progress: bool = False) -> dict:
    """The cohort score matrices the normalisations of :mod:`emkit.score_norm` need.

    Parameters
    ----------
    models : EnrolledModels
        The n_models enrolled models of the trials.
    probe_stats : sequence of GMMStats
        The trials' n_probes probes.
    cohort, cohort_stats : dict
        As in :func:`enroll_cohort`.
    cohort_cohort : bool, default True
        Also score the cohort models against the Z-cohort (ZT-norm needs it).
    progress : bool, default False
        Show progress bars.

    Returns
    -------
    dict of str to ndarray
        ``model_cohort`` (n_models, n_z) and ``cohort_probe`` (n_t, n_probes) and, with
        ``cohort_cohort``, ``cohort_cohort`` (n_t, n_z) and ``same_speaker`` (n_t, n_z) bool.
    """
    cohort_models, z_ids, z_stats = enroll_cohort(models, cohort, cohort_stats,
                                                  progress=progress)
    out = {"model_cohort": ex.score(models, z_stats, progress=progress),
           "cohort_probe": ex.score(cohort_models, probe_stats, progress=progress)}
    if cohort_cohort:
        out["cohort_cohort"] = ex.score(cohort_models, z_stats, progress=progress)
        out["same_speaker"] = same_speaker(cohort, z_ids)
    return out


def normalise(scores, arrays: dict, method: str, *, top_n: int = 200, ddof: int = 1,
              columns=slice(None)) -> np.ndarray:
    """``scores`` normalised with the matrices of :func:`cohort_matrices`.

    Parameters
    ----------
    scores : array-like of shape (n_models, n_probes)
    arrays : dict
        What :func:`cohort_matrices` returned (``method`` needs some of them, else
        ``ValueError``).
    method : str
        One of :data:`METHODS`: ``"z"``, ``"t"``, ``"zt"``, ``"s"``, ``"as"`` (adaptive S-norm).
    top_n : int, default 200
        Adaptive S-norm's cohort size (see :func:`~emkit.score_norm.adaptive_snorm`).
    ddof : int, default 1
        Delta degrees of freedom of the standard deviations.
    columns : slice or ndarray of shape (n_probes,), default all
        The probes of ``cohort_probe`` that ``scores`` holds, so that a large score matrix can be
        normalised one block of probes at a time (every normalisation works per model and per
        probe).

    Returns
    -------
    ndarray of shape (n_models, n_probes), float64
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {describe(method)}")
    needs = {"z": ["model_cohort"], "t": ["cohort_probe"], "s": ["model_cohort", "cohort_probe"],
             "zt": ["model_cohort", "cohort_probe", "cohort_cohort", "same_speaker"]}
    missing = [key for key in needs.get(method, needs["s"]) if key not in arrays]
    if missing:
        raise ValueError(f"arrays has no {' or '.join(missing)}, which {method}-norm needs (all four "
                         "from cohort_matrices(..., cohort_cohort=True))")
    s, z = scores, arrays.get("model_cohort")
    t = arrays["cohort_probe"][:, columns] if "cohort_probe" in arrays else None
    if method == "z":
        return score_norm.znorm(s, z, ddof=ddof)
    if method == "t":
        return score_norm.tnorm(s, t, ddof=ddof)
    if method == "zt":
        return score_norm.ztnorm(s, z, t, arrays["cohort_cohort"], arrays["same_speaker"],
                                 ddof=ddof)
    if method == "s":
        return score_norm.snorm(s, z, t, ddof=ddof)
    return score_norm.adaptive_snorm(s, z, t, top_n=top_n, ddof=ddof)
