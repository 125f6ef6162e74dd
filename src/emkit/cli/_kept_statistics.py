"""The utterances' statistics of train-isv, train-jfa and train-ivector, kept next to their
``--checkpoint`` (STEM.stats.EXT) so that a resumed run reads them instead of running the UBM's
E-step over every frame again: ``--keep-statistics`` always, ``--no-keep-statistics`` never
(the file is neither written nor read), by default only when the file takes at most half of
the free space of the checkpoint's folder: it grows as utterances x Gaussians x features (198
GB at 100,000 utterances, C=2048, D=60), which a user who gave --checkpoint to survive a kill
did not ask for.  A read-only file is read when it holds the statistics; one of other
statistics is left as it is, with a warning (the training goes on and computes them)."""

from __future__ import annotations

import functools
import logging
import os

from .._progress import in_words
from ._app import lazy_module, read_only_mode
from ._train_options import stats_checkpoint

ex = lazy_module("emkit.experiment")
logger = logging.getLogger("emkit")


def utterance_statistics(ubm, features: dict, ids, progress, checkpoint=None,
                         keep=None) -> tuple:
    """``(statistics of the utterances ids, keep)``: call ``keep(machine, X, y)`` with the
    machine about to be trained and its training data made of them (the list, or its dask bag)
    and labels just before ``machine.fit(X, y)``.  With a ``checkpoint`` and ``keep`` True (or
    None, the default, and room enough: :func:`_room_for`), the statistics are kept next to it
    and a resumed run reads them; ``keep`` False neither reads nor writes them.  They are
    written as soon as they are computed, but when they replace stale ones and a checkpoint
    exists, ``keep`` writes them only if fit will take that checkpoint as its run's
    (:func:`emkit._checkpoint.would_resume`): fit refuses a checkpoint of other data, labels or
    parameters, nothing is trained, and the file stays as it was.  Either way a run killed
    during the training leaves the statistics it trained on for its resume."""
    utterances = [features[u] for u in ids]
    if checkpoint is None or keep is False:
        return ex.compute_stats(ubm, utterances, progress=progress), _nothing
    kept = ex.KeptStatistics(stats_checkpoint(checkpoint), ubm, utterances, ids)
    stats = kept.load()  # (kept by an earlier run: read whatever their size)
    if stats is not None:
        return stats, _nothing
    write = (keep or _room_for(kept)) and _replaceable(kept)  # before the E-step: its
    # warning comes first
    stats = ex.compute_stats(ubm, utterances, progress=progress)
    if not write:
        return stats, _nothing
    if kept.stale and os.path.exists(checkpoint):
        return stats, functools.partial(_keep_unless_refused, kept, stats, checkpoint)
    _keep(kept, stats)
    return stats, _nothing


def _nothing(machine, X, y=None):
    pass


def _keep_unless_refused(kept, stats, checkpoint, machine, X, y=None) -> None:
    """Keep the statistics unless ``machine.fit(X, y)`` is going to refuse the checkpoint."""
    from .._checkpoint import would_resume

    if would_resume(checkpoint, machine, X, y):
        _keep(kept, stats)


def _replaceable(kept) -> bool:
    """Whether the file may be written: a read-only one of other statistics (read, it would
    only have been read) is left as it is, with a warning, as a full disk is."""
    mode = read_only_mode(kept.path)
    if mode is None:
        return True
    logger.warning("not keeping the statistics in %s: it holds those of other features, UBM or "
                   "settings and is read-only (mode %04o), so it is left as it is; a resumed run "
                   "will compute them again (make it writable or remove it to keep them)",
                   kept.path, mode)
    return False


def _room_for(kept) -> bool:
    """Whether the statistics file fits the default: at most half of the free space of its
    folder, the other half left to the checkpoint, the output and whatever else writes there (a
    warning when not; True when the free space is unknown: a failed write is a warning too)."""
    import shutil

    folder = os.path.dirname(os.path.abspath(kept.path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return True
    if 2 * kept.size <= free:
        return True
    logger.warning("not keeping the statistics in %s: they would take %s and %s has %s free "
                   "(by default they are kept when they take at most half of it); a resumed "
                   "run will compute them again (--keep-statistics keeps them anyway)",
                   kept.path, in_words(kept.size), folder, in_words(free))
    return False


def _keep(kept, stats) -> None:
    """Keep the statistics; a file that cannot be written (a full disk) costs a resume its
    E-step, not the training: a warning."""
    try:
        kept.save(stats)
    except OSError as exc:
        logger.warning("cannot keep the statistics in %s (%s): a resumed run will compute them "
                       "again", kept.path, exc.strerror or exc)
