"""The EM loop shared by every estimator.

Estimators differ only in their E-step (data -> additive statistics) and M-step (statistics ->
new parameters, returning the quantity whose relative change decides convergence).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

from . import _progress
from ._config import get_config

logger = logging.getLogger("emkit")


@dataclass
class EMResult:
    n_iter: int
    converged: bool
    history: list  # the convergence quantity of every iteration


def relative_change_converged(previous: float, current: float, threshold: float | None,
                              rounding: float = 0.0) -> bool:
    """The reference's test ``|(previous - current) / previous| <= threshold``.

    Two values closer than ``rounding`` (the rounding error of the quantity, 0 by default) count
    as converged, also when they are zero (the reference divided 0 by 0 and never stopped).
    """
    if threshold is None:
        return False
    if abs(previous - current) <= rounding:
        return True
    if previous == 0:
        return False
    return abs((previous - current) / previous) <= threshold


def run_em(e_step: Callable[[], object], m_step: Callable[[object], float], *,
           max_iterations: int | None, convergence_threshold: float | None, name: str,
           quantity: str = "average log-likelihood", start_step: int = 0, history=None,
           on_iteration: Callable[[int, list], None] | None = None,
           rounding: Callable[[], float] | None = None) -> EMResult:
    """Alternate ``m_step(e_step())`` until the relative change of its value is small enough.

    The value of the first iteration is never tested (as in the reference); ``max_iterations=None``
    means no iteration limit (the caller guarantees a threshold then).  A non-finite value stops
    training with ``FloatingPointError`` instead of silently producing NaN parameters.

    ``start_step`` and ``history`` resume an interrupted run (from a checkpoint);
    ``on_iteration(step, history)`` is called after every completed iteration (to save one).
    ``rounding()``: the rounding error of the current value, below which a change is no change.
    """
    if max_iterations is None and convergence_threshold is None:
        raise ValueError("Either or both convergence_threshold and max_iterations must be set")
    history = list(history or [])
    step = start_step

    def converged_at(previous, current):
        return relative_change_converged(previous, current, convergence_threshold,
                                         0.0 if rounding is None else rounding())

    if history and step > 1 and converged_at(history[-2], history[-1]):
        return EMResult(n_iter=step, converged=True, history=history)
    bar = None
    if get_config()["progress"]:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iterations, initial=step, desc=name, unit="it", leave=False, delay=1.0)
    converged = False
    started, first_step = _progress.monotonic(), step
    try:
        while max_iterations is None or step < max_iterations:
            step += 1
            iteration_start = _progress.monotonic()
            value = float(m_step(e_step()))
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"{name}: the {quantity} became {value} at iteration {step}; "
                    "the input's distances may overflow when squared (|x| above about 1e154: rescale "
                    "it), or clusters are degenerate (zero variance)"
                )
            history.append(value)
            if on_iteration is not None:
                on_iteration(step, history)
            if logger.isEnabledFor(logging.INFO):  # (after the checkpoint: its time counts)
                now = _progress.monotonic()
                logger.info("%s: iteration %s, %s = %.10g%s, %s", name,
                            step if max_iterations is None else f"{step}/{max_iterations}",
                            quantity, value, _change(history), _timing(
                                now - iteration_start, now - started, step - first_step,
                                None if max_iterations is None else max_iterations - step))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{quantity}={value:.6g}", refresh=False)
            if step > 1 and converged_at(history[-2], value):
                converged = True
                logger.info("%s: converged after %d iterations (%s)", name, step,
                            _progress.format_duration(_progress.monotonic() - started))
                break
        else:
            logger.info("%s: reached the maximum of %s iterations (%s)", name, max_iterations,
                        _progress.format_duration(_progress.monotonic() - started))
    finally:
        if bar is not None:
            bar.close()
    return EMResult(n_iter=step, converged=converged, history=history)


def _change(history: list) -> str:
    """`` (change +0.0265, relative 0.0079)`` from the previous iteration's value; none first."""
    if len(history) < 2:
        return ""
    previous, current = history[-2], history[-1]
    relative = f", relative {abs((current - previous) / previous):.2g}" if previous else ""
    return f" (change {current - previous:+.3g}{relative})"


def _timing(seconds: float, elapsed: float, done: int, left: int | None) -> str:
    """``took 0.41 s`` (the iteration), then ``; at most 47 more iterations, about 19 s`` from
    the mean iteration of this run when there is a cap (convergence may stop sooner)."""
    text = f"took {_progress.format_duration(seconds)}"
    if left and done > 0:
        text += (f"; at most {left} more iteration{'s' if left > 1 else ''}, about "
                 f"{_progress.format_duration(elapsed / done * left)}")
    return text
