"""Progress of long loops as INFO lines: rate-limited by a clock the tests drive, with counts,
units, rates, time elapsed and left; the EM loop's iteration lines with change and timings."""

from __future__ import annotations

import logging

import pytest

from emkit import _progress
from emkit._em import run_em
from emkit._progress import Progress, format_duration


class FakeClock:
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(_progress, "monotonic", fake)
    return fake


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "emkit"]


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0 s"), (0.042, "0.042 s"), (3.25, "3.2 s"), (12.4, "12 s"), (185, "3m05s"),
    (3600 * 3 + 725, "3h12m"), (-1, "?"), (float("inf"), "?"), (float("nan"), "?")])
def test_durations_are_written_with_their_unit(seconds, text):
    assert format_duration(seconds) == text


def test_progress_lines_come_at_most_once_every_interval(caplog):
    clock = FakeClock()
    progress = Progress("statistics", 100000, "utterance", every=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        for _ in range(200):  # 200 blocks of 500 utterances, 0.5 s each: 100 s in all
            clock.now += 0.5
            progress.advance(500)
    lines = _lines(caplog)
    assert len(lines) == 3  # at 30, 60 and 90 s; none per block
    assert lines[0] == ("statistics: 30000 of 100000 utterances (30.0%), 1000 utterances/s, "
                        "30 s elapsed, about 1m10s left")
    assert lines[2].startswith("statistics: 90000 of 100000 utterances (90.0%)")
    assert lines[2].endswith("1m30s elapsed, about 10 s left")


def test_a_loop_shorter_than_the_interval_logs_nothing(caplog):
    clock = FakeClock()
    progress = Progress("features", 10, "utterance", every=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        for _ in range(10):
            clock.now += 2.9
            progress.advance()
    assert _lines(caplog) == []
    assert progress.elapsed == pytest.approx(29.0)


def test_progress_counts_failures_and_slow_items(caplog):
    clock = FakeClock()
    progress = Progress("features", 4, "utterance", every=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        clock.now += 40
        progress.advance(failed=1)
    assert _lines(caplog) == ["features: 1 of 4 utterances (25.0%), 1 failed, 40 s/utterance, "
                              "40 s elapsed, about 2m00s left"]


def test_progress_of_an_unknown_total_has_no_estimate(caplog):
    clock = FakeClock()
    progress = Progress("scores", None, "trial", every=5, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        clock.now += 5
        progress.advance(500)
    assert _lines(caplog) == ["scores: 500 trials, 100 trials/s, 5.0 s elapsed"]


def _loop(values, clock, seconds_per_iteration):
    it = iter(values)

    def e_step():
        clock.now += seconds_per_iteration
        return None

    return e_step, lambda _: next(it)


def test_em_iteration_lines_give_the_change_the_time_and_an_upper_bound_of_the_rest(clock, caplog):
    e, m = _loop([-2.0, -1.5, -1.49999], clock, 90.0)
    with caplog.at_level(logging.INFO, logger="emkit"):
        result = run_em(e, m, max_iterations=10, convergence_threshold=1e-4, name="GMM ML")
    assert (result.n_iter, result.converged) == (3, True)
    assert _lines(caplog) == [
        "GMM ML: iteration 1/10, average log-likelihood = -2, took 1m30s; "
        "at most 9 more iterations, about 13m30s",
        "GMM ML: iteration 2/10, average log-likelihood = -1.5 (change +0.5, relative 0.25), "
        "took 1m30s; at most 8 more iterations, about 12m00s",
        "GMM ML: iteration 3/10, average log-likelihood = -1.49999 (change +1e-05, "
        "relative 6.7e-06), took 1m30s; at most 7 more iterations, about 10m30s",
        "GMM ML: converged after 3 iterations (4m30s)",
    ]


def test_em_without_a_cap_gives_no_estimate_and_a_capped_run_says_how_long_it_took(clock, caplog):
    e, m = _loop([1.0, 2.0, 2.5], clock, 2.0)
    with caplog.at_level(logging.INFO, logger="emkit"):
        run_em(e, m, max_iterations=None, convergence_threshold=0.3, name="PLDA",
               quantity="objective")
    assert _lines(caplog)[1] == ("PLDA: iteration 2, objective = 2 (change +1, relative 1), "
                                 "took 2.0 s")
    caplog.clear()
    e, m = _loop([1.0, 2.0], clock, 2.0)
    with caplog.at_level(logging.INFO, logger="emkit"):
        run_em(e, m, max_iterations=2, convergence_threshold=None, name="k-means")
    assert _lines(caplog)[1].endswith("took 2.0 s")  # nothing left: no estimate
    assert _lines(caplog)[-1] == "k-means: reached the maximum of 2 iterations (4.0 s)"


def test_finish_sums_up_a_long_loop_only_and_the_last_item_is_left_to_it(caplog):
    clock = FakeClock()
    progress = Progress("enrolling", 2, "model", every=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        clock.now += 29
        progress.advance()
        clock.now += 40
        progress.advance()  # all done: no progress line, the summary follows
        progress.finish()
    assert _lines(caplog) == ["enrolling: 2 models in 1m09s (34.5 s/model)"]
    caplog.clear()
    short = Progress("enrolling", 2, "model", every=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        clock.now += 29
        short.advance(2)
        short.finish()
    assert _lines(caplog) == []


def test_units_ending_in_s_take_es_in_the_plural(caplog):
    clock = FakeClock()
    progress = Progress("V E-step", 400, "class", every=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="emkit"):
        clock.now += 40
        progress.advance(200)
    assert _lines(caplog) == ["V E-step: 200 of 400 classes (50.0%), 5 classes/s, 40 s elapsed, "
                              "about 40 s left"]
    assert _progress.plural(2, "class") == "2 classes" and _progress.plural(1, "class") == "1 class"
    assert _progress.plural(2, "utterance") == "2 utterances"


def test_em_iteration_time_counts_the_checkpoint_written_before_its_line(clock, caplog):
    e, m = _loop([1.0, 2.0], clock, 3.0)
    saved = []

    def save(step, history):
        clock.now += 7.0  # writing the checkpoint
        saved.append(step)

    def logged_after_save(record):
        if "iteration " in record.getMessage():
            assert saved and f"iteration {saved[-1]}/" in record.getMessage()
        return True

    with caplog.at_level(logging.INFO, logger="emkit"):
        logging.getLogger("emkit").addFilter(logged_after_save)
        try:
            run_em(e, m, max_iterations=2, convergence_threshold=None, name="ISV",
                   on_iteration=save)
        finally:
            logging.getLogger("emkit").removeFilter(logged_after_save)
    assert _lines(caplog)[:2] == [
        "ISV: iteration 1/2, average log-likelihood = 1, took 10 s; at most 1 more iteration, "
        "about 10 s",
        "ISV: iteration 2/2, average log-likelihood = 2 (change +1, relative 1), took 10 s"]


def test_kmeans_parallel_initialisation_logs_its_rounds_and_their_time(monkeypatch, caplog):
    import re

    import numpy as np

    from emkit import KMeansMachine

    ticks = iter(range(0, 10**6, 2))  # 2 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    X = np.random.default_rng(0).standard_normal((300, 2))
    with caplog.at_level(logging.INFO, logger="emkit"):
        KMeansMachine(3, max_iter=1, init_max_iter=4).fit(X)
    lines = [line for line in _lines(caplog) if line.startswith("k-means||")]
    assert len(lines) == 5, lines
    # two readings a round (the start of its pass's progress count, its end), one more for the
    # pass counting the candidates' weights
    for r, line in enumerate(lines[:4]):
        assert re.fullmatch(rf"k-means\|\| initialisation: round {r + 1} of 4, sum of squared "
                            r"distances [0-9.]+, [0-9]+ candidates, took 4.0 s", line), line
    assert re.fullmatch(r"k-means\|\| initialisation: 3 centroids from [0-9]+ candidates "
                        r"\(20 s\)", lines[4]), lines[4]
