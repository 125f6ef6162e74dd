"""Enrolment lists and trial lists on features in memory, with bounded statistics.

:func:`enroll_lists` and :func:`score_trials` are what ``emkit enroll`` and ``emkit score`` run:
the utterances' statistics are computed for a bounded number of utterances at a time
(:func:`~emkit.experiment.stats_per_block`), so memory does not grow with the lists.
"""

from __future__ import annotations

import logging

import numpy as np

from .._progress import Progress, format_duration, plural
from ..io._message_text import show_key
from ._models import EnrolledModels, enroll, score
from ._ubm import compute_stats, stats_per_block, ubm_of


def _missing(ids, features, where: str) -> None:
    for u in ids:
        if u not in features:
            raise ValueError(f"{where}: utterance {show_key(u)} is not in features")


def enroll_lists(machine, lists: dict, features, *, relevance_factor: float = 4.0,
                 backend: str = "cosine", progress: bool = False) -> EnrolledModels:
    """Enrol one model per entry of an enrolment list, from features in memory.

    The statistics of a group of models are computed, the group is enrolled, and only then the
    next group's statistics: at most about ``stats_per_block(ubm)`` utterances' statistics are
    held (a model with more utterances is a group of its own).  The ``emkit`` logger says how
    far the enrolment is (INFO, at most every 30 s: models done of all, time left) and how long
    it took.

    Parameters
    ----------
    machine : GMMMachine, ISVMachine, JFAMachine or IVectorBackend
        As in :func:`~emkit.experiment.enroll`.
    lists : dict of str to list of str
        ``{model id: [utterance ids]}`` (the layout of a Kaldi spk2utt).
    features : dict of str to ndarray of shape (n_frames, D)
        ``{utterance id: frames}``, holding every listed utterance.
    relevance_factor : float, keyword-only, default 4.0
        As in :func:`~emkit.experiment.enroll`.
    backend : {"cosine", "plda"}, keyword-only, default "cosine"
        As in :func:`~emkit.experiment.enroll`.
    progress : bool, keyword-only, default False
        Show progress bars.

    Returns
    -------
    EnrolledModels
        One model per entry of ``lists``, in order.

    Raises
    ------
    ValueError
        A listed utterance that is not in ``features``.
    """
    for model, utterances in lists.items():
        _missing(utterances, features, f"model {show_key(model)}")
    ubm = ubm_of(machine)
    parts, chunk, limit = [], [], stats_per_block(ubm)
    done = Progress("enrolment", len(lists), "model")

    def flush():
        needed = list(dict.fromkeys(u for _, us in chunk for u in us))
        stats = dict(zip(needed, compute_stats(ubm, [features[u] for u in needed],
                                               progress=progress), strict=True))
        parts.append(enroll(machine, [m for m, _ in chunk],
                            [[stats[u] for u in us] for _, us in chunk],
                            relevance_factor=relevance_factor, backend=backend,
                            progress=progress))
        done.advance(len(chunk))
        chunk.clear()

    # (the group's utterances counted as it grows: summed again for every model, a group of
    # thousands of one-utterance models cost O(models x group size))
    in_chunk = n_utterances = 0
    for item in lists.items():
        size = len(item[1])
        n_utterances += size
        if chunk and in_chunk + size > limit:
            flush()
            in_chunk = 0
        chunk.append(item)
        in_chunk += size
    flush()
    logging.getLogger("emkit").info(
        "enrolment: %s from %s in %s", plural(len(lists), "model"),
        plural(n_utterances, "utterance"), format_duration(done.elapsed))
    return EnrolledModels.concatenate(parts)


def _pairs(trials):
    if hasattr(trials, "models") and hasattr(trials, "probes"):
        return list(trials.models), list(trials.probes)
    pairs = [tuple(t) for t in trials]
    return [m for m, _ in pairs], [p for _, p in pairs]


def score_trials(models: EnrolledModels, trials, features, *, norm: str | None = None,
                 cohort: dict | None = None, top_n: int | None = None,
                 progress: bool = False) -> np.ndarray:
    """The scores of a trial list, in trial order.

    Probes are scored in blocks (at most ``stats_per_block(ubm)`` probes, and at most about 4
    million scores, at a time), so memory stays bounded.  The ``emkit`` logger says how far the
    scoring is (INFO, at most every 30 s: probes done of all, time left) and how long it took.

    Parameters
    ----------
    models : EnrolledModels
        The enrolled models (e.g. from :func:`enroll_lists`).
    trials : Trials or sequence of (str, str)
        A :class:`~emkit.features.Trials` (``emkit.features.read_trials``) or
        ``(model id, probe utterance id)`` pairs.
    features : dict of str to ndarray of shape (n_frames, D)
        ``{utterance id: frames}``, holding every probe (and every cohort utterance).
    norm : str or None, keyword-only
        Score normalisation, one of :data:`emkit.cohort.METHODS` (z, t, zt, s, as); given with
        ``cohort``, or neither.
    cohort : dict of str to list of str, keyword-only
        ``{cohort model id: [utterance ids]}``: each entry is enrolled as one T-norm cohort
        model as ``models`` were, each listed utterance is a Z-norm impostor probe.
    top_n : int or None, keyword-only
        Adaptive S-norm: how many of the highest cohort scores are used (None: 200).
    progress : bool, keyword-only, default False
        Show progress bars.

    Returns
    -------
    ndarray of shape (n_trials,)
        Float64 scores.

    Raises
    ------
    ValueError
        A trial's model not among ``models``, a probe or cohort utterance not in ``features``,
        ``norm`` without ``cohort`` or the reverse.
    FloatingPointError
        A score that is not finite.
    """
    trial_models, trial_probes = _pairs(trials)
    index = {m: i for i, m in enumerate(models.model_ids)}
    for k, m in enumerate(trial_models):
        if m not in index:
            raise ValueError(f"trial {k + 1} names model {show_key(m)}, which is not among the "
                             f"{len(index)} enrolled models")
    for k, p in enumerate(trial_probes):
        if p not in features:
            raise ValueError(f"trial {k + 1} names probe {show_key(p)}, which is not in features")
    if (norm is None) != (cohort is None):
        raise ValueError("norm and cohort go together: give both or neither")
    used_models = list(dict.fromkeys(trial_models))
    probes = list(dict.fromkeys(trial_probes))
    subset = models.subset([index[m] for m in used_models])
    ubm = models.ubm
    normaliser = None
    if cohort is not None:
        for name, utterances in cohort.items():
            _missing(utterances, features, f"cohort model {show_key(name)}")
        needed = list(dict.fromkeys(u for us in cohort.values() for u in us))
        stats = compute_stats(ubm, [features[u] for u in needed], progress=progress,
                              desc="cohort statistics")
        normaliser = _Normaliser(subset, cohort, dict(zip(needed, stats, strict=True)), norm,
                                 top_n, progress)
    row = {m: i for i, m in enumerate(used_models)}
    col = {p: j for j, p in enumerate(probes)}
    rows = np.array([row[m] for m in trial_models])
    cols = np.array([col[p] for p in trial_probes])
    result = np.empty(len(trial_models))
    # probes per block: bounds their statistics and the block's score matrix
    block = max(1, min(stats_per_block(ubm), 4_000_000 // len(used_models)))
    done = Progress("scoring", len(probes), "probe")
    for start in range(0, len(probes), block):
        ids = probes[start:start + block]
        block_stats = compute_stats(ubm, [features[u] for u in ids], progress=progress,
                                    desc="probe statistics")
        matrix = score(subset, block_stats, progress=progress)
        if normaliser is not None:
            matrix = normaliser(matrix, block_stats)
        in_block = (cols >= start) & (cols < start + len(ids))
        result[in_block] = matrix[rows[in_block], cols[in_block] - start]
        done.advance(len(ids))
    if not np.isfinite(result).all():
        raise FloatingPointError("scoring produced non-finite scores")
    logging.getLogger("emkit").info(
        "scoring: %s (%s x %s%s) in %s", plural(len(result), "trial"),
        plural(len(used_models), "model"), plural(len(probes), "probe"),
        f", {norm}-norm" if norm else "", format_duration(done.elapsed))
    return result


class _Normaliser:
    """Normalises a score matrix one block of probes at a time.

    ``models``: the enrolled models of the trials; ``cohort``/``stats``: the cohort lists and
    the statistics of their utterances.  Scores the models against the cohort utterances (and,
    for ZT, the cohort models against them) once; :meth:`__call__` scores the cohort models
    against a block of probes and normalises that block's scores.
    """

    def __init__(self, models, cohort: dict, stats: dict, norm: str, top_n, progress: bool):
        from ..evaluation import cohort as cohort_lib

        self.norm, self.top_n, self.progress = norm, 200 if top_n is None else top_n, progress
        self.cohort_models, z_ids, z_stats = cohort_lib.enroll_cohort(models, cohort, stats,
                                                                      progress=progress)
        self.arrays = {"model_cohort": score(models, z_stats, progress=progress)}
        if norm == "zt":
            self.arrays["cohort_cohort"] = score(self.cohort_models, z_stats, progress=progress)
            self.arrays["same_speaker"] = cohort_lib.same_speaker(cohort, z_ids)

    def __call__(self, matrix, probe_stats):
        """``matrix`` (n_models, n_block) of the block's probes ``probe_stats``, normalised."""
        from ..evaluation import cohort as cohort_lib

        arrays = dict(self.arrays, cohort_probe=score(self.cohort_models, probe_stats,
                                                      progress=self.progress))
        return cohort_lib.normalise(matrix, arrays, self.norm, top_n=self.top_n)
