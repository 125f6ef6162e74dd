"""ISV/JFA learn U from differences between sessions of the same class: when every class has a
single session, or when few classes have several (fewer than two, or less than half the sessions
in them), ``fit`` says so through the ``emkit`` logger (a log record, not a Python warning,
so that such data still trains under ``-W error``), in memory and from a dask bag alike, and the
trained parameters are those of a fit that logs nothing."""

import logging

import dask
import dask.bag as db
import numpy as np
import pytest

from factor_analysis_cases import synthetic_problem

from emkit.factor_analysis import ISVMachine, JFAMachine

S = 6
ONE_SESSION = "each of the 6 classes (speakers) has a single session"


def _problem():
    return synthetic_problem(3, S)


def _machine(kind, ubm):
    if kind == "ISV":
        return ISVMachine(2, em_iterations=2, ubm=ubm, random_state=0)
    return JFAMachine(2, 2, em_iterations=2, ubm=ubm, random_state=0)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "emkit" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("kind", ["ISV", "JFA"])
def test_one_session_per_class_is_logged_and_training_is_unchanged(kind, caplog):
    ubm, stats = _problem()
    speakers = [f"spk{k}" for k in range(S)]
    logger = logging.getLogger("emkit")
    logger.disabled = True
    try:
        quiet = _machine(kind, ubm).fit(stats, speakers)
    finally:
        logger.disabled = False
    with caplog.at_level(logging.WARNING, logger="emkit"):
        machine = _machine(kind, ubm).fit(stats, speakers)
    (message,) = _warnings(caplog)
    assert message.startswith(f"{kind}Machine training: {ONE_SESSION}, so U")
    for name in ("U", "D") + (("V",) if kind == "JFA" else ()):
        np.testing.assert_array_equal(getattr(machine, name), getattr(quiet, name))


def test_one_session_per_class_is_logged_for_a_dask_bag_of_pairs(caplog):
    ubm, stats = _problem()
    pairs = db.from_sequence([(f"spk{k}", s) for k, s in enumerate(stats)], npartitions=2)
    with dask.config.set(scheduler="sync"), caplog.at_level(logging.WARNING, logger="emkit"):
        _machine("ISV", ubm).fit(pairs, None)
    (message,) = _warnings(caplog)
    assert ONE_SESSION in message


@pytest.mark.parametrize("kind", ["ISV", "JFA"])
def test_a_single_class_with_two_sessions_is_logged_with_the_counts(kind, caplog):
    # before: no warning as soon as one class had two sessions, though U was then learned from
    # that one speaker's two sessions while five single sessions pulled speakers into it
    ubm, stats = _problem()
    speakers = ["a", "a", "b", "c", "d", "e"]
    with caplog.at_level(logging.WARNING, logger="emkit"):
        _machine(kind, ubm).fit(stats, speakers)
    assert _warnings(caplog) == [
        f"{kind}Machine training: only 1 of the 5 classes (speakers) have two or more sessions, "
        "holding 2 of the 6 sessions (33%), so U, learned from differences between sessions of "
        "the same class, is learned from few of them and the single-session classes' speaker "
        "variability leaks into it; give more classes two or more sessions"]



def test_a_single_class_of_six_sessions_is_logged_without_single_session_classes(caplog):
    # before: the few-classes message said "the single-session classes' speaker variability
    # leaks into it", though there were none (ISV only: JFA warns of r_V above one speaker too)
    ubm, stats, kind = *_problem(), "ISV"
    with caplog.at_level(logging.WARNING, logger="emkit"):
        _machine(kind, ubm).fit(stats, ["a"] * 6)
    assert _warnings(caplog) == [
        f"{kind}Machine training: all 6 sessions are of one class (speaker), so U, learned from "
        "differences between sessions of the same class, is learned from one speaker's sessions "
        "only; give more classes two or more sessions"]

def test_fewer_than_half_the_sessions_in_multi_session_classes_is_logged_from_a_dask_bag(caplog):
    # the counts come from the labels: no pass over the bag is added
    ubm, stats = _problem()
    stats = stats + stats  # (12 sessions; as many as each case's labels are used)
    cases = [("aabbcd", None), ("aabbcdef", None),  # 4 of 6, 4 of 8 sessions: enough
             ("aabbcdefg", "ISVMachine training: only 2 of the 7 classes (speakers) have two or "
                           "more sessions, holding 4 of the 9 sessions (44%), so U")]
    for speakers, expected in cases:
        caplog.clear()
        pairs = db.from_sequence(list(zip(speakers, stats)), npartitions=2)
        with dask.config.set(scheduler="sync"), caplog.at_level(logging.WARNING, logger="emkit"):
            _machine("ISV", ubm).fit(pairs, None)
        logged = [m for m in _warnings(caplog) if "session" in m]
        if expected is None:
            assert logged == [], speakers
        else:
            (message,) = logged
            assert message.startswith(expected)
