"""Model files given to the commands (errors that name the file), English counts, and whether
EM stopped at its iteration cap."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

from ._app import lazy_module
from ._log_lines import one_line

ex = lazy_module("emkit.experiment")
fe = lazy_module("emkit.io.untrusted")
gmm_io = lazy_module("emkit.io.gmm")


def article(word: str) -> str:
    """``an ISVMachine``, ``a GMMMachine``."""
    return f"{'an' if word[:1].upper() in 'AEIOU' else 'a'} {word}"


def _unreadable(path, exc) -> Exception:
    """A FeatureError naming ``path`` for a model file that cannot be read (corrupt, not HDF5)."""
    message = one_line(exc)
    if os.fspath(path) not in message:
        message = f"{os.fspath(path)}: cannot read it as an emkit model file ({message})"
    return fe.FeatureError(message)


def _stored_class(path):
    """The emkit class stamped on an HDF5 file (recognised from the layout for a reference GMM
    file); the stamp is checked as every reader checks it (text, short, a class name)."""
    from ..io._registry import stamp_of
    from ..io.h5 import open_for_reading

    try:
        with open_for_reading(path) as f:
            return stamp_of(f)
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


def _load_machine(path):
    """A UBM, ISV, JFA or i-vector system; an error naming the file when it is not one."""
    found = _stored_class(path)
    if found == "EnrolledModels":
        raise fe.FeatureError(f"{path} holds enrolled models, not a machine: give a UBM, ISV, JFA "
                              "or i-vector file (from the train-* commands)")
    try:
        return ex.load_machine(path)
    except gmm_io.MAPWithoutUBMError:
        raise fe.FeatureError(f"{path} holds a MAP-adapted GMM (a speaker model) without its UBM, "
                              "not a UBM: give the UBM file it was adapted from") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(path, exc) from None


def _load_models(path):
    """Enrolled models (from ``emkit enroll``); an error naming the file when it holds none."""
    found = _stored_class(path)
    if found != "EnrolledModels":
        raise fe.FeatureError(f"{path} holds {article(f'emkit {found}')}, not enrolled models: "
                              "give the output of 'emkit enroll'")
    try:
        return ex.EnrolledModels.from_hdf5(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(path, exc) from None


def _load_ubm(path):
    machine = _load_machine(path)
    if not hasattr(machine, "means"):
        raise fe.FeatureError(f"{path} holds {article(type(machine).__name__)}, not a UBM "
                              "(GMMMachine)")
    return machine


@contextlib.contextmanager
def em_outcome():
    """Yield a list that receives the names of the EM loops stopped by their iteration cap (the
    command reports them: their ConvergenceWarnings are not shown)."""
    from sklearn.exceptions import ConvergenceWarning

    capped = []

    class Catch(logging.Handler):
        def emit(self, record):
            if record.getMessage().split(": ", 1)[-1].startswith("reached the maximum"):
                capped.append(str(record.args[0]) if record.args else "EM")

    logger, handler = logging.getLogger("emkit"), Catch(logging.INFO)
    previous = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield capped
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
