"""``emkit score --norm/--cohort/--top-n``: score normalisation with a cohort from the user's list.

The cohort list has the layout of an enrolment list (Kaldi spk2utt): ``cohort-model-id
utterance-id [utterance-id ...]`` per line.  Each line is enrolled as one T-norm cohort model
(one utterance per line gives one-utterance cohort models); every utterance listed is a Z-norm
impostor probe.  The utterances are read from the FEATURES given to ``emkit score``.  The work is
:mod:`emkit.cohort`'s, shared with the recipes' ``[norm]``.
"""

from __future__ import annotations

import click

from ._app import InputFile, lazy_module
from ._models import plural

fe = lazy_module("emkit.features")
cohort_lib = lazy_module("emkit.evaluation.cohort")
ex = lazy_module("emkit.experiment")

NORM_HELP = {
    "norm": "Normalise the scores with the --cohort: z (Z-norm: each model's statistics against "
            "the cohort utterances), t (T-norm: each probe's against the cohort models), zt "
            "(Z then T), s (S-norm: the mean of z and t) or as (adaptive S-norm: S-norm with the "
            "--top-n highest cohort scores of each model and probe).",
    "cohort": "Cohort list (with --norm): 'cohort-model-id utterance-id [utterance-id ...]' "
              "lines, the utterances from FEATURES.  Each line is enrolled as one T-norm cohort "
              "model, as the models were (same machine, relevance factor and back-end: the "
              "models file records them), and every listed utterance is a Z-norm impostor "
              "probe.  Keep the cohort's speakers out of the trials.",
    "top_n": "Adaptive S-norm (--norm as) only: how many of the highest cohort scores of each "
             "model and each probe are used [default: 200; a cohort smaller than this is used "
             "whole].",
}


METHODS = ["z", "t", "zt", "s", "as"]  # emkit.cohort.METHODS, without importing numpy here


def norm_options(f):
    f = click.option("--top-n", type=click.IntRange(min=2), default=None,
                     help=NORM_HELP["top_n"])(f)
    f = click.option("--cohort", type=InputFile(), default=None, help=NORM_HELP["cohort"])(f)
    return click.option("--norm", type=click.Choice(METHODS), default=None,
                        help=NORM_HELP["norm"])(f)


def check_norm_options(norm, cohort, top_n) -> None:
    """Usage errors for options given without the ones they need."""
    if norm and not cohort:
        raise click.UsageError(f"--norm {norm} needs --cohort LIST: the cohort models and "
                               "utterances to normalise with")
    if cohort and not norm:
        raise click.UsageError("--cohort does not apply without --norm: choose a normalisation "
                               "(--norm z|t|zt|s|as)")
    if top_n is not None and norm != "as":
        raise click.UsageError("--top-n does not apply: it is for adaptive S-norm (--norm as)"
                               + (f", and --norm is {norm}" if norm else ""))


def read_cohort(path, data: dict) -> dict:
    """``{cohort model id: [utterance ids]}`` from the list at ``path``; every utterance must be
    among the features ``data`` (a FeatureError naming the file otherwise)."""
    lists = fe.read_id_lists(path)
    if not lists:
        raise fe.FeatureError(f"{path}: the cohort list is empty")
    for model, utterances in lists.items():
        for u in utterances:
            if u not in data:
                raise fe.FeatureError(f"{path}: utterance {u!r} of cohort model {model!r} is not "
                                      "in the features")
    return lists


class Normaliser:
    """Normalises the score matrix of ``emkit score`` one block of probes at a time.

    ``models``: the enrolled models of the trials; ``cohort``/``stats``: the cohort list and the
    statistics of its utterances.  Scores the models against the cohort utterances (and, for ZT,
    the cohort models against them) once; :meth:`__call__` scores the cohort models against a
    block of probes and normalises that block's scores.
    """

    def __init__(self, models, cohort_path, cohort: dict, stats: dict, norm: str, top_n,
                 progress: bool):
        n_t, n_z = len(cohort), len({u for us in cohort.values() for u in us})
        if (norm != "z" and n_t < 2) or (norm != "t" and n_z < 2):
            raise fe.FeatureError(f"{cohort_path}: --norm {norm} needs at least 2 cohort "
                                  f"models and 2 cohort utterances; the list has "
                                  f"{plural(n_t, 'model')} and {plural(n_z, 'utterance')}")
        self.norm, self.top_n, self.progress = norm, 200 if top_n is None else top_n, progress
        self.cohort_models, z_ids, z_stats = cohort_lib.enroll_cohort(models, cohort, stats,
                                                                      progress=progress)
        self.arrays = {"model_cohort": ex.score(models, z_stats, progress=progress)}
        if norm == "zt":
            self.arrays["cohort_cohort"] = ex.score(self.cohort_models, z_stats,
                                                    progress=progress)
            self.arrays["same_speaker"] = cohort_lib.same_speaker(cohort, z_ids)

    def __call__(self, matrix, probe_stats):
        """``matrix`` (n_models, n_block) of the block's probes ``probe_stats``, normalised."""
        arrays = dict(self.arrays, cohort_probe=ex.score(
            self.cohort_models, probe_stats, progress=self.progress))
        return cohort_lib.normalise(matrix, arrays, self.norm, top_n=self.top_n)
