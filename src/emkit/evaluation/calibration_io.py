"""Calibration on score files: train, apply, save and load a :class:`LinearCalibration`, and the
metrics of calibrated scores beside the calibration-free ones.

A calibration file is a small JSON object (an untrusted input when read back)::

    {"format": "emkit.LinearCalibration", "version": 2, "prior": 0.5,
     "coef": [w], "intercept": b, "trained_on": {"targets": n, "nontargets": m},
     "C": 1000000.0, "max_iter": 1000, "feature_names": ["system"]}

``calibrated = w * score + b`` (natural-log likelihood ratios).  ``w`` may be negative (a
distance-like score, lower for the same speaker) or zero (uninformative development scores).
``trained_on``, ``C``, ``max_iter`` (the settings a refit uses) and ``feature_names`` (the
column name of the DataFrame it was fitted on) are optional: files without them (version 1 files
among them) load, with ``LinearCalibration``'s defaults and no ``feature_names_in_``.
"""

from __future__ import annotations

import json
import math
import numbers
import os

import numpy as np

from . import metrics
from ._counts import det_points, pav_posterior, score_counts
from .calibration import LinearCalibration
from ..io.atomic import atomic_write
from ..io.lists import labels_from_key, read_scores, write_scores
from ..io._message_text import show_path
from ..io.untrusted import FeatureError
from ..io.untrusted import open_regular
from .._describe import describe

__all__ = ["FORMAT", "formula", "labelled_scores", "train_calibration", "fit_calibration",
           "save_calibration", "load_calibration", "calibrate_file", "score_metrics"]

# version 2 added C, max_iter and feature_names: an emkit that reads only version 1 refuses them as
# unknown fields, so they come with a version that makes it say "upgrade emkit" instead
FORMAT, VERSION, OLDEST_VERSION = "emkit.LinearCalibration", 2, 1
MAX_BYTES = 1 << 20  # a calibration file is a few hundred bytes; refuse anything huge
MAX_ITER = 2**31 - 1  # the largest max_iter a file may hold


def formula(calibration: LinearCalibration, digits: int = 6) -> str:
    """A one-system calibration as people write it: ``"llr = 0.0997 * score - 3.016"``.

    Parameters
    ----------
    calibration : LinearCalibration
        Fitted, on one system.
    digits : int, default 6
        Significant digits of the slope and the offset.

    Returns
    -------
    str
    """
    sign = "-" if calibration.intercept_ < 0 else "+"
    return (f"llr = {calibration.coef_[0]:.{digits}g} * score {sign} "
            f"{abs(calibration.intercept_):.{digits}g}")


def labelled_scores(scores_path, key_path=None):
    """The trials, scores and labels of a score file.

    Parameters
    ----------
    scores_path : str or path-like
        A score file (``model probe score [label]`` lines).
    key_path : str or path-like, optional
        A trial list with labels, used when the score file has no 4th (label) column.

    Returns
    -------
    trials : Trials
    scores : ndarray of shape (n_trials,), float64
    labels : ndarray of shape (n_trials,), bool
        True for target trials.

    Raises
    ------
    FeatureError
        A trial without a label (no label column and no key).
    """
    trials, values = read_scores(scores_path)
    labels = trials.labels
    if labels is None and key_path is not None:
        labels = labels_from_key(scores_path, trials, key_path)
    if labels is None:
        raise FeatureError(f"{os.fspath(scores_path)}: the scores have no label column; give "
                           "--key TRIALS (key_path in Python): a trial list with target/nontarget "
                           "labels")
    return trials, values, np.asarray(labels, dtype=bool)


def train_calibration(scores_path, key_path=None, *, prior: float = 0.5) -> LinearCalibration:
    """A :class:`LinearCalibration` fitted on a labelled development score file.

    Parameters
    ----------
    scores_path, key_path : str or path-like
        As in :func:`labelled_scores`.
    prior : float, default 0.5
        The calibration's effective target prior.

    Returns
    -------
    LinearCalibration
        Fitted.

    Raises
    ------
    FeatureError
        Unlabelled trials, or trials of one class only.
    """
    _, values, labels = labelled_scores(scores_path, key_path)
    return fit_calibration(values, labels, scores_path, prior=prior)


def fit_calibration(values, labels, scores_path, *, prior: float = 0.5) -> LinearCalibration:
    """A :class:`LinearCalibration` fitted on the scores of one development score file.

    Parameters
    ----------
    values : ndarray of shape (n_trials,)
        The file's scores, as :func:`labelled_scores` returns them.
    labels : ndarray of shape (n_trials,)
        Their labels (True: target).
    scores_path : str or path-like
        The file they come from, named in the error.
    prior : float, default 0.5
        The target prior of the calibration (see :class:`LinearCalibration`).

    Returns
    -------
    LinearCalibration

    Raises
    ------
    FeatureError
        When the trials are all targets or all non-targets.
    """
    if labels.all() or not labels.any():
        raise FeatureError(f"{os.fspath(scores_path)}: calibration needs target and non-target "
                           f"trials; got only {'target' if labels.all() else 'non-target'} ones")
    return LinearCalibration(prior=prior).fit(values, labels)


def save_calibration(calibration: LinearCalibration, path, *, n_targets=None,
                     n_nontargets=None) -> None:
    """Write a fitted one-system calibration as JSON (atomically).

    Parameters
    ----------
    calibration : LinearCalibration
        Fitted on one system.
    path : str or path-like
        The file written (replaced whole, or left as it was on failure).
    n_targets, n_nontargets : int, optional
        The development trial counts, stored when both are given.

    Raises
    ------
    ValueError, TypeError
        An unfitted or several-system calibration; only one of the counts, or a negative one.
    """
    if not hasattr(calibration, "coef_"):
        raise ValueError("calibration is not fitted: call fit(scores, labels) first")
    if calibration.n_features_in_ != 1:
        raise ValueError("only one-system calibrations can be saved; got "
                         f"{calibration.n_features_in_} systems")
    doc = {"format": FORMAT, "version": VERSION, "prior": float(calibration.prior),
           "coef": [float(c) for c in calibration.coef_],
           "intercept": float(calibration.intercept_), **_settings(calibration)}
    if (n_targets is None) != (n_nontargets is None):
        raise TypeError("n_targets and n_nontargets go together: give both or neither; got "
                        f"n_targets={describe(n_targets)}, n_nontargets={describe(n_nontargets)}")
    if n_targets is not None:
        counts = {"n_targets": n_targets, "n_nontargets": n_nontargets}
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an integer; got {describe(value)}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0; got {describe(value)}")
        doc["trained_on"] = {"targets": int(n_targets), "nontargets": int(n_nontargets)}
    with atomic_write(path) as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def _settings(calibration) -> dict:
    """``C``, ``max_iter`` and (when set) ``feature_names`` of ``calibration``, as JSON values;
    a value the file could not hold (which ``fit`` would refuse too) is a ValueError."""
    C, max_iter = calibration.C, calibration.max_iter
    if isinstance(C, bool) or not isinstance(C, numbers.Real) or not 0.0 < C < math.inf:
        raise ValueError(f"calibration.C must be a finite number > 0 to be saved; "
                         f"got {describe(C)}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) \
            or not 1 <= max_iter <= MAX_ITER:
        raise ValueError(f"calibration.max_iter must be an integer in [1, {MAX_ITER}] to be saved; "
                         f"got {describe(max_iter)}")
    settings = {"C": float(C), "max_iter": int(max_iter)}
    names = getattr(calibration, "feature_names_in_", None)
    if names is not None:
        settings["feature_names"] = [str(n) for n in names]
    return settings


def _read_settings(doc, subject: str, n_systems: int) -> dict:
    """The optional ``C``, ``max_iter`` and ``feature_names`` of a file, checked (None: absent);
    ``subject`` starts the messages (the file's name, as :func:`show_path` shows it)."""
    settings = {"C": doc.get("C"), "max_iter": doc.get("max_iter"),
                "feature_names": doc.get("feature_names")}
    if settings["C"] is not None:
        settings["C"] = _finite(settings["C"], subject, "C")
        if not settings["C"] > 0.0:
            raise ValueError(f"{subject}: C must be a finite number > 0")
    max_iter = settings["max_iter"]
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int)
                                 or not 1 <= max_iter <= MAX_ITER):
        raise ValueError(f"{subject}: max_iter must be an integer in [1, {MAX_ITER}]")
    names = settings["feature_names"]
    if names is not None and not (isinstance(names, list) and len(names) == n_systems
                                  and all(isinstance(n, str) for n in names)):
        raise ValueError(f"{subject}: feature_names must be a list of {n_systems} string(s), one "
                         "per system")
    return settings


def _finite(value, subject: str, what) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{subject}: {what} must be a finite number")
    return float(value)


def load_calibration(path) -> LinearCalibration:
    """Read a calibration written by :func:`save_calibration`, checking every field.

    Parameters
    ----------
    path : str or path-like
        A regular file of at most ``MAX_BYTES`` bytes.

    Returns
    -------
    LinearCalibration
        Fitted, ready to ``transform``.

    Raises
    ------
    FileNotFoundError, ValueError
        No such file; not a calibration file, a version emkit does not read, or an invalid
        field (the message names the file, never echoes its contents).
    """
    path = os.fspath(path)
    subject = show_path(path)  # escaped and bounded: the name may hold control characters
    try:
        with open_regular(path) as f:  # never blocks on a pipe, never reads a device
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such calibration file: {subject}") from None
    if len(raw) > MAX_BYTES:
        raise ValueError(f"{subject}: too large for a calibration file (more than {MAX_BYTES} "
                         "bytes)")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{subject}: not a calibration file (not JSON text)") from None
    except (ValueError, RecursionError):  # Python's limits: integers of > 4300 digits, nesting
        raise ValueError(f"{subject}: not a calibration file (JSON nested too deeply or with a "
                         "number too long to read)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{subject}: not an emkit calibration file (no \"format\": \"{FORMAT}\")")
    version = doc.get("version")
    if type(version) is not int or not OLDEST_VERSION <= version <= VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        found = repr(version) if isinstance(version, (int, float)) and len(repr(version)) < 24 \
            else "not a version number"
        raise ValueError(f"{subject}: calibration format version {found}"
                         + (f" is newer than this emkit reads (<= {VERSION}); upgrade emkit" if newer
                            else " is not one emkit writes "
                                 f"(expected {OLDEST_VERSION} to {VERSION})"))
    known = {"format", "version", "prior", "coef", "intercept", "trained_on", "C", "max_iter",
             "feature_names"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValueError(f"{subject}: unexpected field(s) in a calibration file ({len(unknown)})")
    coef = doc.get("coef")
    if not isinstance(coef, list) or len(coef) != 1:
        raise ValueError(f"{subject}: coef must be a list of one number (one system)")
    w = _finite(coef[0], subject, "coef[0]")  # < 0 for a distance: save_calibration writes it
    prior = _finite(doc.get("prior"), subject, "prior")
    if not 0.0 < prior < 1.0:
        raise ValueError(f"{subject}: prior must be in (0, 1)")
    settings = _read_settings(doc, subject, n_systems=1)
    names = settings.pop("feature_names")
    settings = {k: v for k, v in settings.items() if v is not None}  # (absent: the defaults)
    calibration = LinearCalibration._from_fitted(
        [w], _finite(doc.get("intercept"), subject, "intercept"), prior=prior, **settings)
    return calibration._restore_feature_names(names)


def calibrate_file(calibration: LinearCalibration, scores_path, output, key_path=None) -> int:
    """Write ``output``: the trials of ``scores_path`` with calibrated scores.

    Parameters
    ----------
    calibration : LinearCalibration
        Fitted on one system.
    scores_path : str or path-like
        The score file to calibrate; its labels, if any, are kept.
    output : str or path-like
        The score file written.
    key_path : str or path-like, optional
        A labelled trial list: when the score file has no label column, its labels are written
        with the scores.

    Returns
    -------
    int
        The number of trials written.
    """
    trials, values = read_scores(scores_path)
    labels = trials.labels
    if labels is None and key_path is not None:
        labels = labels_from_key(scores_path, trials, key_path)
    write_scores(output, trials.models, trials.probes, calibration.transform(values), labels)
    return len(values)


def score_metrics(target_scores, nontarget_scores, p_targets=(0.01,), c_miss=1.0,
                  c_fa=1.0, *, calibration: LinearCalibration | None = None) -> dict:
    """EER, minDCF and actDCF at each prior, Cllr and min Cllr of one system's scores.

    actDCF and Cllr read the scores as natural-log likelihood ratios, after ``calibration``
    when one is given (e.g. from :func:`load_calibration`); EER, minDCF and min Cllr do not
    depend on calibration.

    Parameters
    ----------
    target_scores, nontarget_scores : array-like of shape (n_target,) and (n_nontarget,)
    p_targets : sequence of float, default (0.01,)
        Target priors of minDCF and actDCF.
    c_miss, c_fa : float, default 1.0
        The costs of a miss and of a false alarm.
    calibration : LinearCalibration, optional
        Applied to the scores before actDCF and Cllr.

    Returns
    -------
    dict
        ``{"eer", "min_dcf": {p: v}, "act_dcf": {p: v}, "cllr", "min_cllr", "targets",
        "nontargets"}``.
    """
    tar, non = metrics._check_pair(target_scores, nontarget_scores)  # errors name the argument
    llr_tar, llr_non = (tar, non) if calibration is None else \
        (calibration.transform(tar), calibration.transform(non))
    for p in p_targets:  # the argument errors before any work
        metrics._check_costs(p, c_miss, c_fa)
    # one sort of the scores serves every threshold measure: the DET points (minDCF) are
    # dropped before the PAV (EER, min Cllr), so the two are never held together
    counts = score_counts(tar, non)
    points = det_points(counts)
    min_dcfs = {float(p): metrics._min_dcf(points, *metrics._check_costs(p, c_miss, c_fa))[0]
                for p in p_targets}
    del points
    posterior = pav_posterior(counts)
    eer = metrics._eer(metrics._rocch(counts, posterior))
    min_cllr = metrics._min_cllr(counts, posterior)
    del counts, posterior
    return {"targets": int(tar.size), "nontargets": int(non.size), "eer": eer,
            "min_dcf": min_dcfs,
            "act_dcf": {float(p): metrics.act_dcf(llr_tar, llr_non, p, c_miss, c_fa)
                        for p in p_targets},
            "cllr": metrics.cllr(llr_tar, llr_non), "min_cllr": min_cllr}
