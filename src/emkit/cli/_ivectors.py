"""``emkit extract-ivectors``: the i-vectors of an i-vector system's utterances, written for
another back-end (Kaldi's ``ivector-plda-scoring``, or Python code reading a ``.npz``)."""

from __future__ import annotations

import os
import re

import click

from ._app import (InputFile, check_outputs, cli, feature_arguments, feature_paths,
                   gselect_options, progress_option)
from ._commands import _features, _ubm_dim, ex, np
from ._models import _load_machine, article
from .._progress import plural
from ..io._message_text import show_path

#: --space -> the back-end's method giving the vectors from i-vectors (None: the i-vectors)
SPACES = {"raw": None, "plda": "plda_space", "cosine": "cosine_space"}
_FORMS = "'ark:PATH.ark', 'ark,scp:PATH.ark,PATH.scp', 'PATH.ark' (with PATH.scp) or 'PATH.npz'"


def _output_files(ctx, param, value) -> tuple:
    """``-o`` as ``(kind, archive or npz, script file or None)``; a usage error naming -o."""
    from ..io.kaldi_vectors import vector_write_specifier

    try:
        if re.match(r"^[a-z]+(,[a-z]+)*:", value):
            return ("ark", *vector_write_specifier(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    suffix = os.path.splitext(value)[1].lower()
    if suffix == ".npz":
        return "npz", value, None
    if suffix == ".ark":
        return "ark", value, value[:-4] + ".scp"
    raise click.BadParameter(f"{show_path(value)}: expected {_FORMS}")


#: --space -> (the back-end's attribute it needs, that step's name, how train-ivector trains it)
_SPACE_STEPS = {"plda": ("plda", "PLDA", "--labels and --plda"),
                "cosine": ("wccn", "WCCN", "--labels")}


def _check_space(system, machine, space) -> None:
    """Usage errors: ``machine`` holds no i-vector system, or one without the ``--space``."""
    from ..experiment import IVectorBackend  # (loaded with the system: no cost)
    from ..gmm import GMMMachine

    if not isinstance(system, IVectorBackend):
        held = "a UBM" if isinstance(system, GMMMachine) else article(type(system).__name__)
        raise click.UsageError(f"-m/--machine {show_path(machine)} holds {held}, not an i-vector "
                               "system (from train-ivector)")
    if space not in _SPACE_STEPS:
        return
    attribute, step, training = _SPACE_STEPS[space]
    if getattr(system, attribute) is None:
        others = " or --space plda" if space == "cosine" else ""
        raise click.UsageError(f"--space {space} does not apply: -m/--machine "
                               f"{show_path(machine)} holds an i-vector system without {step} "
                               f"(train-ivector with {training}); use --space raw{others}")


def _vectors_of(system, data, ids, space, progress):
    """The vectors (N, K) of the utterances ``ids``, statistics computed a block at a time."""
    ubm = ex.ubm_of(system)
    block = ex.stats_per_block(ubm)
    parts = []
    for start in range(0, len(ids), block):
        stats = ex.compute_stats(ubm, [data[u] for u in ids[start:start + block]],
                                 progress=progress, desc="i-vectors")
        vectors = system.ivector.transform(stats)
        if SPACES[space] is not None:
            vectors = getattr(system, SPACES[space])(vectors, from_ivectors=True)
        parts.append(np.atleast_2d(vectors))
    return np.concatenate(parts)


@cli.command("extract-ivectors")
@feature_arguments
@click.option("-m", "--machine", type=InputFile(), required=True,
              help="The i-vector system (from train-ivector).")
@click.option("-o", "--output", required=True, callback=_output_files, metavar="SPEC",
              help="Where the i-vectors go: a Kaldi archive, 'ark:PATH.ark' or "
                   "'ark,scp:PATH.ark,PATH.scp' (binary float32 vectors, what Kaldi's "
                   "ivector-extract writes; a bare PATH.ark writes PATH.scp too), or a "
                   "'PATH.npz' of float64 arrays, one per utterance id.")
@click.option("--space", type=click.Choice(list(SPACES)), default="raw", show_default=True,
              help="raw: the extractor's i-vectors (Kaldi back-ends centre, reduce and "
                   "length-normalise them themselves); plda: whitened and length-normalised "
                   "(then LDA and length normalisation, with an LDA), as the system's PLDA "
                   "scores them; cosine: plda, then WCCN and length normalisation, as cosine "
                   "scoring compares them.  A system without the step (trained without --labels,"
                   " or with --no-plda) refuses the space.")
@progress_option
@gselect_options
def extract_ivectors(features, feature_list, machine, output, space, progress):
    """Extract the i-vector of every utterance of FEATURES, for another back-end.

    The vectors are the system's own (those 'emkit enroll' and 'emkit score' use), keyed by
    utterance id, in the order of FEATURES.  Kaldi: 'ivector-plda-scoring' and the other
    ivector-* programs read 'scp:PATH.scp' or 'ark:PATH.ark'.  Python:
    numpy.load('PATH.npz')[utterance_id].
    """
    kind, path, scp = output
    paths = feature_paths(features, feature_list)
    check_outputs({"-o/--output": path, "-o/--output (script file)": scp},
                  {"FEATURES": paths, "--feature-list": feature_list, "-m/--machine": machine})
    system = _load_machine(machine)
    _check_space(system, machine, space)
    data = _features(paths, _ubm_dim(system))
    ids = list(data)
    vectors = _vectors_of(system, data, ids, space, progress)
    if kind == "npz":
        from ..recipe._scoring import save_npz

        save_npz(dict(zip(ids, vectors)), path)
    else:
        from ..io.kaldi_vectors import write_kaldi_vectors

        write_kaldi_vectors(zip(ids, vectors), path, scp, dtype="float32")
    written = path if scp is None else f"{path} and {scp}"
    click.echo(f"{plural(len(ids), 'i-vector')} ({space}, dimension {vectors.shape[1]}) -> "
               f"{written}")
