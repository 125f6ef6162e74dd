"""``emkit enroll`` and ``emkit score``: parse the lists, call :func:`emkit.experiment.enroll_lists`
and :func:`emkit.experiment.score_trials`, write the results."""

from __future__ import annotations

import click

from ._app import (InputFile, check_outputs, cli, feature_arguments, feature_paths,
                   gselect_options, progress_option)
from ._commands import POSITIVE, _explicit, _features, _ubm_dim, ex, fe, output_option
from .._progress import plural
from ..io._message_text import show_key, show_path
from ._models import _load_machine, _load_models, article
from ._norm import check_cohort_size, check_norm_options, norm_options, read_cohort


@cli.command("enroll")
@feature_arguments
@click.option("-m", "--machine", type=InputFile(), required=True,
              help="A UBM (GMM-MAP models), an ISV or JFA machine, or an i-vector system, as "
                   "written by the train-* commands.")
@click.option("-e", "--enroll-list", type=InputFile(), required=True,
              help="One model per line: 'model-id utterance-id [utterance-id ...]' (Kaldi "
                   "spk2utt).")
@output_option("The models to write (HDF5, with the machine needed to score them).")
@click.option("--relevance-factor", type=POSITIVE, default=4.0, show_default=True,
              help="GMM-MAP only: Reynolds relevance factor of the MAP adaptation of the means.")
@click.option("--backend", type=click.Choice(["cosine", "plda"]), default="cosine",
              show_default=True, help="i-vector systems only: cosine scoring (after WCCN) or PLDA.")
@progress_option
@gselect_options
def enroll(features, feature_list, machine, enroll_list, output, relevance_factor, backend,
           progress):
    """Enrol one model per line of the enrolment list from the utterances of FEATURES.

    --relevance-factor applies to a UBM only (GMM-MAP) and --backend to an i-vector system
    only; given with another machine, they are a usage error.
    """
    paths = feature_paths(features, feature_list)
    check_outputs({"-o/--output": output}, {"FEATURES": paths, "--feature-list": feature_list,
                                             "-m/--machine": machine,
                                             "-e/--enroll-list": enroll_list})
    loaded = _load_machine(machine)
    kind = type(loaded).__name__
    holds = "a UBM" if kind == "GMMMachine" else (
        "an i-vector system" if kind == "IVectorBackend" else article(kind))
    if _explicit("relevance_factor") and kind != "GMMMachine":
        fixed = (f" (its D was fixed at training: train-{kind[:-7].lower()} --relevance-factor)"
                 if kind in ("ISVMachine", "JFAMachine") else "")
        raise click.UsageError(f"--relevance-factor does not apply: it is for GMM-MAP enrolment "
                               f"with a UBM, and {machine} holds {holds}{fixed}")
    if _explicit("backend") and kind != "IVectorBackend":
        raise click.UsageError(f"--backend does not apply: it is for i-vector systems, and "
                               f"{machine} holds {holds}")
    if backend == "plda" and kind == "IVectorBackend" and loaded.plda is None:
        raise click.UsageError(f"--backend plda does not apply: {machine} holds an i-vector system "
                               "without PLDA (train-ivector with --labels and --plda)")
    lists = fe.read_id_lists(enroll_list)
    data = _features(paths, _ubm_dim(loaded))
    for model, utterances in lists.items():
        for u in utterances:
            if u not in data:
                raise fe.FeatureError(f"{show_path(enroll_list)}: utterance {show_key(u)} of model "
                                      f"{show_key(model)} is not in the features")
    models = ex.enroll_lists(loaded, lists, data, relevance_factor=relevance_factor,
                             backend=backend, progress=progress)
    models.save(output)
    n_utterances = len({u for us in lists.values() for u in us})
    click.echo(f"{len(models)} {models.system} model{'' if len(models) == 1 else 's'} from "
               f"{plural(n_utterances, 'utterance')} -> {output}")


@cli.command("score")
@feature_arguments
@click.option("--models", type=InputFile(), required=True,
              help="Enrolled models (from 'emkit enroll').")
@click.option("-t", "--trials", type=InputFile(), required=True,
              help="Trial list: 'model-id probe-id [target|nontarget]' lines; each probe is one "
                   "utterance of FEATURES.")
@output_option("The scores to write: 'model-id probe-id score [label]' lines, in trial order.")
@norm_options
@progress_option
@gselect_options
def score(features, feature_list, models, trials, output, norm, cohort, top_n, progress):
    """Score a trial list against enrolled models.

    GMM-MAP models use linear scoring (normalised by the probe's frame count), ISV and JFA linear
    scoring with the probe's channel offset, i-vector systems cosine similarity or the PLDA
    log-likelihood ratio.  Labels in the trial list are copied to the output.

    With --norm and --cohort, the scores are normalised (Z, T, ZT, S or adaptive S-norm) with
    cohort models and utterances read from FEATURES, as listed in the --cohort file.
    """
    check_norm_options(norm, cohort, top_n)
    paths = feature_paths(features, feature_list)
    check_outputs({"-o/--output": output}, {"FEATURES": paths, "--feature-list": feature_list,
                                             "--models": models, "-t/--trials": trials,
                                             "--cohort": cohort})
    enrolled = _load_models(models)
    mismatch = ex.selection_mismatch(enrolled)
    if mismatch:
        click.echo(f"emkit score: warning: {models}: {mismatch}: scores differ from those of one "
                   "selection; give score the --gselect and --min-posterior of enroll", err=True)
    trial_list = fe.read_trials(trials)
    index = {m: i for i, m in enumerate(enrolled.model_ids)}
    for k, m in enumerate(trial_list.models):
        if m not in index:
            raise fe.FeatureError(f"{show_path(trials)} {trial_list.where(k)}: names model "
                                  f"{show_key(m)}, which is not among the "
                                  f"{plural(len(index), 'model')} of {show_path(models)}")
    data = _features(paths, _ubm_dim(enrolled.machine))
    for k, p in enumerate(trial_list.probes):
        if p not in data:
            raise fe.FeatureError(f"{show_path(trials)} {trial_list.where(k)}: names probe "
                                  f"{show_key(p)}, which is not in the features")
    cohort_lists = read_cohort(cohort, data) if cohort else None
    if cohort_lists:
        check_cohort_size(cohort, cohort_lists, norm)
    result = ex.score_trials(enrolled, trial_list, data, norm=norm, cohort=cohort_lists,
                             top_n=top_n, progress=progress)
    used_models, probes = set(trial_list.models), set(trial_list.probes)
    fe.write_scores(output, trial_list.models, trial_list.probes, result, trial_list.labels)
    normed = "" if not norm else (f", {norm}-norm with {plural(len(cohort_lists), 'cohort model')}"
                                  f" from {cohort}")
    click.echo(f"{plural(len(result), 'trial')} ({plural(len(used_models), 'model')} x "
               f"{plural(len(probes), 'probe')}){normed} -> {output}")
