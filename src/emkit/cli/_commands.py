"""Commands on the user's own data: train-ubm, train-isv, train-jfa and train-ivector (enroll and
score: :mod:`._scoring`; evaluate: :mod:`._evaluate`)."""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from ._app import (InputFile, check_outputs, cli, feature_arguments, feature_paths,
                   gselect_options, lazy_module, progress_option, seed_option)
from ..io.atomic import same_destination
from ._numbers import NON_NEGATIVE, POSITIVE, IntRange
from ._kept_statistics import utterance_statistics
from .._progress import plural
from ._models import _load_ubm, em_outcome
from ._train_options import (backend_checkpoint, check_ivector_counts, check_ivector_dims,
                             check_train_options, cluster, frames_for, kmeans_checkpoint,
                             stats_checkpoint, stats_for, train_options)

# imported on first use: "emkit --help" and "emkit --version" load neither numpy nor the models
np = lazy_module("numpy")
ex = lazy_module("emkit.experiment")
fe = lazy_module("emkit.features")
config = lazy_module("emkit._config")

OUTPUT = click.Path(dir_okay=False)
#: emkit.experiment.MIN_FRAMES_PER_GAUSSIAN, for the help text (not imported: --help loads no
#: numpy; a test keeps the two equal)
MIN_FRAMES_PER_GAUSSIAN = 10


def output_option(text):
    return click.option("-o", "--output", type=OUTPUT, required=True, help=text)


def ubm_option(f):
    return click.option("--ubm", type=InputFile(), required=True,
                        help="The UBM (from train-ubm).")(f)


def _note(text):
    click.echo(f"note: {text}", err=True)


def _features(paths, n_features=None) -> dict:
    return fe.read_feature_sources(paths, n_features=n_features)


def _ubm_dim(machine) -> int:
    return int(np.shape(ex.ubm_of(machine).means)[1])


def _explicit(name: str) -> bool:
    """True when the option was given on the command line (not its default)."""
    source = click.get_current_context().get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _labelled(features: dict, labels_path):
    """(utterance ids, labels) of the labelled utterances, in the order of their ids (sorted by
    code point, which is Kaldi's ``LC_ALL=C`` order for UTF-8); every labelled one must be
    present.  Sorted, the order of the lines changes nothing: the training sums (their rounding
    too) and so the model and a checkpoint's fingerprint of the data are the same."""
    from ..io.lists import count_unlabelled

    labels = fe.read_id_map(labels_path)
    unused = count_unlabelled(features, labels, labels_path)
    if unused:
        _note(f"{unused} utterance(s) of the features have no label in {labels_path} and are "
              "not used")
    ids = sorted(labels)
    return ids, [labels[u] for u in ids]


#: The statistics file beside a checkpoint, as an output: one that holds the statistics is only
#: read, so it may be read-only (:func:`._kept_statistics.utterance_statistics`)
KEPT_STATISTICS = "--checkpoint (its statistics part)"


def _checkpoint_parts(output, checkpoint, parts: dict, keep_statistics=None) -> dict:
    """The files --checkpoint writes beside it (``parts``: name -> path, and the statistics'
    unless --no-keep-statistics), as outputs for check_outputs; a usage error when one of them
    is the output (the statistics' always: a later run would look for them there)."""
    parts = {**parts, "statistics": stats_checkpoint(checkpoint)}
    for name, path in parts.items():
        if path is not None and same_destination(path, output):
            raise click.UsageError(f"-o/--output {output!r} is where --checkpoint keeps its "
                                   f"{name} part: choose another output or checkpoint")
    return {f"--checkpoint (its {name} part)": path for name, path in parts.items()
            if not (name == "statistics" and keep_statistics is False)}


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


@cli.command("train-ubm")
@feature_arguments
@output_option("The UBM to write (HDF5, bob.learn.em's GMMMachine layout).")
@click.option("-n", "--gaussians", type=IntRange(min=1), default=64, show_default=True,
              help=f"Number of Gaussians of the UBM: at least {MIN_FRAMES_PER_GAUSSIAN} training "
                   "frames each are needed (tens or more are better).")
@click.option("--iterations", type=IntRange(min=1), default=25, show_default=True,
              help="Maximum number of EM (maximum-likelihood) iterations.")
@click.option("--threshold", type=NON_NEGATIVE, default=1e-5, show_default=True,
              help="Stop EM when the relative change of the average log-likelihood is at most "
                   "this.")
@click.option("--kmeans-iterations", type=IntRange(min=1), default=20, show_default=True,
              help="Maximum number of k-means iterations of the initialisation.")
@click.option("--compute-dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="Precision of the EM's products: float32 is about twice as "
                                      "fast, its variances within about 2e-8 kappa of float64's "
                                      "(docs/differences.md in emkit's source repository). The "
                                      "UBM written computes its statistics in float64 either "
                                      "way.")
@seed_option
@progress_option
@train_options("the UBM's means, variances and weights",
               "The k-means initialisation has its own checkpoint next to it (ubm.ckpt.h5: "
               "ubm.ckpt.kmeans.h5).  ", frames=True)
def train_ubm(features, feature_list, output, gaussians, iterations, threshold, kmeans_iterations,
              compute_dtype, seed, progress, checkpoint, scheduler, workers):
    """Train a universal background model on all frames of FEATURES.

    k-means (k-means|| initialisation) gives the starting means, variances and weights; EM then
    updates all three by maximum likelihood.  The utterances are taken in the order of their
    ids, whatever the order of the files and lines that hold them: the same utterances give the
    same UBM.
    """
    check_train_options(checkpoint, scheduler, workers, output)
    side = kmeans_checkpoint(checkpoint)
    if side is not None and same_destination(side, output):
        raise click.UsageError(f"-o/--output {output!r} is where --checkpoint keeps its k-means part: "
                               "choose another output or checkpoint")
    paths = feature_paths(features, feature_list)
    check_outputs({"-o/--output": output, "--checkpoint": checkpoint, "--checkpoint (its k-means part)": side},
                  {"FEATURES": paths, "--feature-list": feature_list})
    data = _features(paths)
    frames = np.concatenate([data[u] for u in sorted(data)])  # id order: see _labelled
    problem = ex.too_few_frames(frames.shape[0], gaussians, "-n")
    if problem:
        raise fe.FeatureError(problem)
    with config.config_context(progress=progress), em_outcome() as capped, \
            cluster(scheduler, workers) as client:
        ubm = ex.train_ubm(frames_for(client, frames), gaussians, max_iterations=iterations,
                           seed=seed, convergence_threshold=threshold,
                           kmeans_iterations=kmeans_iterations, checkpoint=checkpoint,
                           kmeans_checkpoint=kmeans_checkpoint(checkpoint),
                           compute_dtype=compute_dtype)
    ubm.save(output)  # (collapsed Gaussians: the library's warning, one line on stderr)
    stopped = ""
    if any(name.startswith("GMM") for name in capped):
        stopped += (f" (stopped at the cap, --iterations {iterations}, without converging to "
                    f"--threshold {threshold:g})")
    if "k-means" in capped:
        stopped += (f"; k-means stopped at its cap, --kmeans-iterations {kmeans_iterations}, "
                    "without converging")
    click.echo(f"UBM: {plural(gaussians, 'Gaussian')} x {plural(frames.shape[1], 'feature')} "
               f"from {plural(len(data), 'utterance')} ({plural(frames.shape[0], 'frame')}), "
               f"{plural(ubm.n_iter_, 'EM iteration')}{stopped} -> {output}")


def _training_inputs(features, feature_list, ubm, labels, output, checkpoint=None,
                     parts=None) -> list:
    """The feature files; refuses an output that is an input or read-only (``parts``: other
    files the checkpoint writes, by description)."""
    paths = feature_paths(features, feature_list)
    check_outputs({"-o/--output": output, "--checkpoint": checkpoint, **(parts or {})},
                  {"FEATURES": paths, "--feature-list": feature_list, "--ubm": ubm,
                   "--labels": labels}, maybe_read_only=[KEPT_STATISTICS])
    return paths


def _train_fa(cls_name, features, feature_list, ubm, labels, output, progress, checkpoint,
              scheduler, workers, keep_statistics, **kwargs):
    check_train_options(checkpoint, scheduler, workers, output, keep_statistics)
    paths = _training_inputs(features, feature_list, ubm, labels, output, checkpoint,
                             _checkpoint_parts(output, checkpoint, {}, keep_statistics))
    try:
        from .. import factor_analysis
    except ImportError as exc:
        raise ex.SystemUnavailable(f"{cls_name} is not available in this emkit ({exc})") from None
    machine_ubm = _load_ubm(ubm)
    data = _features(paths, _ubm_dim(machine_ubm))
    ids, y = _labelled(data, labels)
    if len(set(y)) < 2:
        raise fe.FeatureError(f"{labels}: {cls_name} training needs at least 2 speakers; got "
                              f"{len(set(y))}")
    stats, keep = utterance_statistics(machine_ubm, data, ids, progress, checkpoint,
                                       keep_statistics)
    machine = getattr(factor_analysis, cls_name)(ubm=machine_ubm, checkpoint=checkpoint, **kwargs)
    with config.config_context(progress=progress), cluster(scheduler, workers) as client:
        X = stats_for(client, stats)
        keep(machine, X, y)
        machine.fit(X, y)
    machine.save(output)
    click.echo(f"{cls_name}: {plural(len(ids), 'utterance')} of {plural(len(set(y)), 'speaker')}, "
               f"{plural(kwargs['em_iterations'], 'EM iteration')} (a fixed number: no "
               f"convergence test) -> {output}")


def fa_options(state: str):
    """The options train-isv and train-jfa share (their checkpoint saves ``state``)."""
    def decorate(f):
        f = train_options(state)(progress_option(seed_option(f)))
        f = click.option("--relevance-factor", type=POSITIVE, default=4.0, show_default=True,
                         help="Relevance factor r: D = sqrt(UBM variances / r).")(f)
        f = click.option("--labels", type=InputFile(), required=True,
                         help="Speaker of each training utterance: 'utterance-id speaker-id' "
                              "lines (Kaldi utt2spk), in any order (the utterances are taken in "
                              "the order of their ids).  Only listed utterances are used.")(f)
        return feature_arguments(ubm_option(f))
    return decorate


RANK_U = dict(type=IntRange(min=1), default=10, show_default=True,
              help="Rank of the session-variability subspace U.")


@cli.command("train-isv")
@fa_options("U")
@output_option("The ISV machine to write (HDF5, with its UBM).")
@click.option("--rank-u", **RANK_U)
@click.option("--iterations", type=IntRange(min=1), default=10, show_default=True,
              help="EM iterations.")
@gselect_options
def train_isv(features, feature_list, ubm, labels, output, rank_u, iterations, relevance_factor,
              seed, progress, checkpoint, scheduler, workers, keep_statistics):
    """Train an ISV (inter-session variability) machine.

    One session per utterance of FEATURES, its speaker from --labels; the session subspace U is
    learnt, D is fixed by the relevance factor.  Enrol with 'emkit enroll -m ISV.h5'.
    U is learnt from the differences between sessions of a speaker: a warning says when fewer
    than 2 speakers, or less than half the sessions, have two sessions or more.
    """
    _train_fa("ISVMachine", features, feature_list, ubm, labels, output, progress, checkpoint,
              scheduler, workers, keep_statistics, r_U=rank_u,
              em_iterations=iterations, relevance_factor=relevance_factor, random_state=seed)


@cli.command("train-jfa")
@fa_options("U, V, D and the phase: V, U or D")
@output_option("The JFA machine to write (HDF5, with its UBM).")
@click.option("--rank-u", **RANK_U)
@click.option("--rank-v", type=IntRange(min=1), default=10, show_default=True,
              help="Rank of the speaker subspace V (more than the number of speakers - 1 "
                   "does not help).")
@click.option("--iterations", type=IntRange(min=1), default=10, show_default=True,
              help="EM iterations of each of the V, U and D phases.")
@gselect_options
def train_jfa(features, feature_list, ubm, labels, output, rank_u, rank_v, iterations,
              relevance_factor, seed, progress, checkpoint, scheduler, workers, keep_statistics):
    """Train a JFA (joint factor analysis) machine.

    One session per utterance of FEATURES, its speaker from --labels; V, U and D are learnt in
    turn.  Enrol with 'emkit enroll -m JFA.h5'.  U is learnt from the differences between
    sessions of a speaker: a warning says when fewer than 2 speakers, or less than half the
    sessions, have two sessions or more.
    """
    _train_fa("JFAMachine", features, feature_list, ubm, labels, output, progress, checkpoint,
              scheduler, workers, keep_statistics, r_U=rank_u,
              r_V=rank_v, em_iterations=iterations, relevance_factor=relevance_factor,
              random_state=seed)


@cli.command("train-ivector")
@feature_arguments
@ubm_option
@click.option("--labels", type=InputFile(), default=None,
              help="Speaker of each training utterance ('utterance-id speaker-id' lines, in any "
                   "order: the utterances are taken in the order of their ids).  With labels, "
                   "WCCN (and PLDA) are trained too and only listed utterances are used.")
@output_option("The i-vector system to write (HDF5: extractor, whitening, WCCN, PLDA).")
@click.option("--dim", type=IntRange(min=1), default=100, show_default=True,
              help="Dimension R of the i-vectors (rank of T).  The back-end needs more "
                   "training utterances than R (whitening) and, with --labels, at least R + "
                   "the number of speakers (WCCN, LDA, PLDA).")
@click.option("--iterations", type=IntRange(min=1), default=10, show_default=True,
              help="EM iterations of the total-variability matrix T.")
@click.option("--plda/--no-plda", default=True, show_default=True,
              help="Also train a PLDA on the whitened, length-normalised i-vectors (needs "
                   "--labels).")
@click.option("--lda-dim", type=IntRange(min=1), default=None,
              help="Reduce the whitened, length-normalised i-vectors to this dimension by LDA "
                   "before WCCN and PLDA (needs --labels; at most --dim and the number of "
                   "speakers - 1) [default: no LDA].")
@click.option("--plda-dim", type=IntRange(min=1), default=None,
              help="Rank of the PLDA speaker subspace F (at most the PLDA's input dimension: "
                   "--lda-dim, else --dim): a simplified PLDA (x = mu + F h + e, e of full "
                   "covariance) [default: two-covariance PLDA, full rank].")
@seed_option
@progress_option
@train_options("the extractor's T and sigma",
               "Once trained, the back-end is saved next to it (iv.ckpt.h5: iv.ckpt.backend.h5), "
               "so that a run resumed after the extractor finished trains nothing again.  ")
@gselect_options
def train_ivector(features, feature_list, ubm, labels, output, dim, iterations, plda, lda_dim,
                  plda_dim, seed, progress, checkpoint, scheduler, workers, keep_statistics):
    """Train an i-vector extractor and its back-end.

    T is learnt on one session per utterance of FEATURES (taken in the order of their ids,
    whatever the order of the files and lines); the back-end is whitening and length
    normalisation, then (with --labels) WCCN for cosine scoring and PLDA.  Enrol with
    'emkit enroll -m IVECTOR.h5 [--backend plda]'.  With --lda-dim, an LDA trained on the
    speakers reduces the length-normalised i-vectors before WCCN and PLDA.
    """
    if plda and labels is None and _explicit("plda"):
        raise click.UsageError("--plda does not apply without --labels: PLDA is trained on the "
                               "speakers of the training utterances")
    check_ivector_dims(labels, dim, plda, lda_dim, plda_dim)
    check_train_options(checkpoint, scheduler, workers, output, keep_statistics)
    side = backend_checkpoint(checkpoint)
    paths = _training_inputs(features, feature_list, ubm, labels, output, checkpoint,
                             _checkpoint_parts(output, checkpoint, {"back-end": side},
                                               keep_statistics))
    _check_backend_part(checkpoint, side)
    try:
        from ..ivector import IVectorMachine
    except ImportError as exc:
        raise ex.SystemUnavailable(f"IVectorMachine is not available in this emkit "
                                   f"({exc})") from None
    machine_ubm = _load_ubm(ubm)
    data = _features(paths, _ubm_dim(machine_ubm))
    ids, y = _labelled(data, labels) if labels else (sorted(data), None)
    if y is not None and plda and len(set(y)) < 2:
        raise fe.FeatureError(f"{labels}: PLDA training needs at least 2 speakers; got "
                              f"{len(set(y))}")
    if lda_dim is not None and lda_dim > len(set(y)) - 1:
        raise fe.FeatureError(f"{labels}: --lda-dim {lda_dim} needs at least {lda_dim + 1} "
                              f"speakers; got {len(set(y))}")
    steps = ["LDA"] * (lda_dim is not None) + ["WCCN"] + ["PLDA"] * plda
    check_ivector_counts(dim, len(ids), None if y is None else len(set(y)), steps)
    stats, keep = utterance_statistics(machine_ubm, data, ids, progress, checkpoint,
                                       keep_statistics)
    with config.config_context(progress=progress):
        with cluster(scheduler, workers) as client:
            X = stats_for(client, stats)
            machine = IVectorMachine(machine_ubm, dim_t=dim, max_iterations=iterations,
                                     random_state=seed, checkpoint=checkpoint)
            keep(machine, X)
            machine.fit(X)
        try:
            system = ex.IVectorBackend.with_dims(machine, lda_dim=lda_dim, plda_dim=plda_dim).fit(
                stats, y, plda=plda and y is not None, checkpoint=side)
        except ImportError as exc:
            raise ex.SystemUnavailable(f"a back-end module is not available ({exc})") from None
    system.save(output)
    parts = (["whitening"] + [f"LDA ({lda_dim})"] * (system.lda is not None)
             + ["WCCN"] * (system.wccn is not None)
             + [f"PLDA{f' (rank {plda_dim})' if plda_dim else ''}"] * (system.plda is not None))
    click.echo(f"i-vector extractor (R = {dim}, {plural(machine.n_iter_, 'EM iteration')}: a "
               f"fixed number, no convergence test) and {', '.join(parts)} from "
               f"{plural(len(ids), 'utterance')} -> {output}")


def _check_backend_part(checkpoint, side) -> None:
    """A back-end part without the extractor's checkpoint belongs to another run (its extractor
    is gone): refused before the extractor is trained, not after."""
    from .._checkpoint import CheckpointMismatchError

    if side is not None and os.path.exists(side) and not os.path.exists(checkpoint):
        raise CheckpointMismatchError(side, [f"it is the back-end part of --checkpoint, and the "
                                             f"extractor's checkpoint {checkpoint!r} it was "
                                             "trained after is gone"])
