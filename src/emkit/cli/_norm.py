"""``emkit score --norm/--cohort/--top-n``: score normalisation with a cohort from the user's list.

The cohort list has the layout of an enrolment list (Kaldi spk2utt): ``cohort-model-id
utterance-id [utterance-id ...]`` per line.  Each line is enrolled as one T-norm cohort model
(one utterance per line gives one-utterance cohort models); every utterance listed is a Z-norm
impostor probe.  The utterances are read from the FEATURES given to ``emkit score``.  The work is
:func:`emkit.experiment.score_trials`' (with :mod:`emkit.evaluation.cohort`, shared with the
recipes' ``[norm]``).
"""

from __future__ import annotations

import click

from ._app import InputFile, lazy_module
from .._progress import plural
from ._numbers import IntRange

fe = lazy_module("emkit.io.lists")

NORM_HELP = {
    "norm": "Normalise the scores with the --cohort: z (Z-norm: each model's statistics against "
            "the cohort utterances), t (T-norm: each probe's against the cohort models), zt "
            "(Z then T), s (S-norm: the mean of z and t) or as (adaptive S-norm: S-norm with the "
            "--top-n highest cohort scores of each model and probe).",
    "cohort": "Cohort list (with --norm): 'cohort-model-id utterance-id [utterance-id ...]' "
              "lines, the utterances from FEATURES.  Each line is enrolled as one T-norm cohort "
              "model, as the models were (same machine, relevance factor and back-end: the "
              "models file records them), and every listed utterance is a Z-norm impostor "
              "probe; the lines are taken in the order of their model ids, so their order changes "
              "no score.  Keep the cohort's speakers out of the trials.",
    "top_n": "Adaptive S-norm (--norm as) only: how many of the highest cohort scores of each "
             "model and each probe are used [default: 200; a cohort smaller than this is used "
             "whole].",
}


METHODS = ["z", "t", "zt", "s", "as"]  # emkit.cohort.METHODS, without importing numpy here


def norm_options(f):
    f = click.option("--top-n", type=IntRange(min=2), default=None,
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
    """``{cohort model id: [utterance ids]}`` from the list at ``path``, in the order of the model
    ids (as ``emkit run`` takes its cohort: the order of the lines changes no score); every
    utterance must be among the features ``data`` (a FeatureError naming the file otherwise)."""
    lists = fe.read_id_lists(path)
    if not lists:
        raise fe.FeatureError(f"{path}: the cohort list is empty")
    for model, utterances in lists.items():
        for u in utterances:
            if u not in data:
                raise fe.FeatureError(f"{path}: utterance {fe.show_key(u)} of cohort model "
                                      f"{fe.show_key(model)} is not "
                                      "in the features")
    return {model: lists[model] for model in sorted(lists)}


def check_cohort_size(path, cohort: dict, norm: str) -> None:
    """A FeatureError naming the --cohort file when it is too small for ``norm``."""
    n_t, n_z = len(cohort), len({u for us in cohort.values() for u in us})
    if (norm != "z" and n_t < 2) or (norm != "t" and n_z < 2):
        raise fe.FeatureError(f"{path}: --norm {norm} needs at least 2 cohort models and 2 cohort "
                              f"utterances; the list has {plural(n_t, 'model')} and "
                              f"{plural(n_z, 'utterance')}")
