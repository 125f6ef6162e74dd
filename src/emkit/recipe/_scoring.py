"""The scoring work of a recipe: enrol a condition's models, score its trials and, with a
cohort, the matrices score normalisation needs; then normalise."""

from __future__ import annotations

import zipfile

import numpy as np

from .. import experiment as ex
from ..evaluation.cohort import cohort_matrices
from ..evaluation.cohort import normalise as cohort_normalise
from ..io.lists import read_id_lists, read_trials
from ..io.untrusted import FeatureError, open_regular, show_key
from ..io.atomic import atomic_path

__all__ = ["score_condition", "normalise"]


def _enroll(machine, system: dict, ids, stats_lists):
    return ex.enroll(machine, ids, stats_lists, relevance_factor=system["relevance_factor"],
                     backend=system.get("backend") or "cosine")


def _stats(ubm, feats: dict, ids, where: str, data_set: str) -> dict:
    """The statistics of the utterances ``ids`` of the features ``feats`` of ``data_set`` (the
    recipe's name for it; ``where``: the lists that name ``ids``, for errors)."""
    missing = [u for u in ids if u not in feats]
    if missing:
        raise FeatureError(f"{where}: utterance {show_key(missing[0])} is not in the features of "
                           f"data set {data_set!r} ({len(missing)} missing)")
    return dict(zip(ids, ex.compute_stats(ubm, [feats[u] for u in ids]), strict=True))


def score_condition(machine_path, system: dict, condition: dict, feats: dict,
                    cohort=None) -> dict:
    """Scores of a condition's trials and the raw matrices.

    ``cohort``: None or ``(name, features, utt2spk)`` of the cohort set: one T-cohort model per
    speaker (all its utterances), every utterance a Z-cohort probe.  Returns a dict of arrays:
    ``scores`` (n_models, n_probes), ``rows``/``cols`` (n_trials,) trial indices into it, and
    with a cohort ``model_cohort`` (n_models, n_z), ``cohort_probe`` (n_t, n_probes),
    ``cohort_cohort`` (n_t, n_z), ``same_speaker`` (n_t, n_z) bool.
    """
    machine = ex.load_machine(machine_path)
    ubm = ex.ubm_of(machine)
    lists = read_id_lists(condition["enroll"])
    trials = read_trials(condition["trials"], require_labels=True)
    unknown = [m for m in trials.models if m not in lists]
    if unknown:
        raise FeatureError(f"{condition['trials']}: model {unknown[0]!r} is not enrolled in "
                           f"{condition['enroll']}")
    models = list(dict.fromkeys(trials.models))
    probes = list(dict.fromkeys(trials.probes))
    needed = list(dict.fromkeys([u for m in models for u in lists[m]] + probes))
    stats = _stats(ubm, feats, needed, f"{condition['enroll']} or {condition['trials']}",
                   condition["data"])
    enrolled = _enroll(machine, system, models, [[stats[u] for u in lists[m]] for m in models])
    probe_stats = [stats[p] for p in probes]
    row = {m: i for i, m in enumerate(models)}
    col = {p: j for j, p in enumerate(probes)}
    out = {"scores": ex.score(enrolled, probe_stats),
           "rows": np.array([row[m] for m in trials.models]),
           "cols": np.array([col[p] for p in trials.probes]),
           "labels": trials.labels}
    if cohort is not None:
        cohort_name, cfeats, utt2spk = cohort
        # in id order, as the training steps take their data: the line order of the utt2spk
        # would otherwise set the order of the cohort's sums (another rounding of every score)
        ids = sorted(utt2spk)
        cstats = _stats(ubm, cfeats, ids, "the cohort's utt2spk", cohort_name)
        by_speaker = {}
        for u in ids:
            by_speaker.setdefault(utt2spk[u], []).append(u)
        out.update(cohort_matrices(enrolled, probe_stats, by_speaker, cstats))
    return out


def save_npz(arrays: dict, path) -> None:
    # numpy.savez's own archive, written here so that it is closed when a write fails (numpy < 2
    # left it open, and its later garbage collection wrote to the closed file: an ignored error)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", allowZip64=True) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def normalise(arrays, method: str, *, top_n: int = 200, ddof: int = 1) -> np.ndarray:
    """The trials' normalised scores (n_trials,) from the arrays of :func:`score_condition`."""
    m = cohort_normalise(arrays["scores"], arrays, method, top_n=top_n, ddof=ddof)
    return m[arrays["rows"], arrays["cols"]]


def read_npz(path) -> dict:
    with open_regular(path) as raw, np.load(raw, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
