"""Statistics, enrolment and scoring say how far they are (INFO lines, at most every 30 s, on a
clock the tests drive) and how long they took; their numbers are the same."""

import logging

import numpy as np
import pytest

from emkit import GMMMachine, _progress
from emkit.experiment import _trials, compute_stats, enroll_lists, progress_bar, score_trials


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(_progress, "monotonic", lambda: now[0])
    return now


@pytest.fixture(scope="module")
def ubm_and_features():
    rng = np.random.default_rng(0)
    ubm = GMMMachine(2, trainer="ml", max_fitting_steps=2, random_state=0).fit(
        rng.standard_normal((200, 3)))
    features = {f"u{i}": rng.standard_normal((20 + i, 3)) for i in range(10)}
    return ubm, features


class _SlowUBM:
    """``ubm`` whose statistics take 10 s per utterance on the test's clock."""

    def __init__(self, ubm, clock):
        self.ubm, self.clock = ubm, clock

    def transform(self, utterances, **kwargs):
        self.clock[0] += 10.0 * len(utterances)
        return self.ubm.transform(utterances, **kwargs)


def _info(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_statistics_of_many_blocks_log_progress_then_a_summary(ubm_and_features, clock, caplog):
    ubm, features = ubm_and_features
    utterances = [features[f"u{i % 10}"] for i in range(200)]  # 4 blocks of 64, 640 s each
    with caplog.at_level(logging.INFO, logger="emkit"):
        stats = compute_stats(_SlowUBM(ubm, clock), utterances)
    assert _info(caplog) == [
        "statistics: 64 of 200 utterances (32.0%), 10 s/utterance, 10m40s elapsed, "
        "about 22m40s left",
        "statistics: 128 of 200 utterances (64.0%), 10 s/utterance, 21m20s elapsed, "
        "about 12m00s left",
        "statistics: 192 of 200 utterances (96.0%), 10 s/utterance, 32m00s elapsed, "
        "about 1m20s left",
        "statistics: 200 utterances in 33m20s (10 s/utterance)",
    ]
    expected = ubm.transform(utterances)
    assert len(stats) == 200
    for got, want in zip(stats, expected):
        np.testing.assert_array_equal(got.sum_px, want.sum_px)


def test_a_short_loop_logs_nothing(ubm_and_features, clock, caplog):
    ubm, features = ubm_and_features
    with caplog.at_level(logging.INFO, logger="emkit"):
        compute_stats(ubm, list(features.values()))
        for _ in progress_bar(range(5), desc="enrolling", enabled=False, unit="model"):
            clock[0] += 5.0
    assert _info(caplog) == []


def test_an_iterated_loop_counts_its_items(clock, caplog):
    with caplog.at_level(logging.INFO, logger="emkit"):
        items = []
        for item in progress_bar(range(3), desc="enrolling (isv)", enabled=False, unit="model"):
            clock[0] += 40.0
            items.append(item)
    assert items == [0, 1, 2]
    assert _info(caplog) == [
        "enrolling (isv): 1 of 3 models (33.3%), 40 s/model, 40 s elapsed, about 1m20s left",
        "enrolling (isv): 2 of 3 models (66.7%), 40 s/model, 1m20s elapsed, about 40 s left",
        "enrolling (isv): 3 models in 2m00s (40 s/model)",
    ]


def test_scoring_logs_its_progress_and_a_summary(ubm_and_features, clock, caplog, monkeypatch):
    ubm, features = ubm_and_features
    models = enroll_lists(ubm, {"a": ["u0", "u1"], "b": ["u2"]}, features)
    trials = [(m, f"u{i}") for m in ("a", "b") for i in range(3, 10)]
    monkeypatch.setattr(_trials, "stats_per_block", lambda _: 2)  # 4 blocks of 7 probes
    # (the reference in the same blocks: a product over 2 probes may round differently from one
    # over 7 in the last bit, depending on the machine's BLAS kernels)
    reference = score_trials(models, trials, features)
    real = _trials.score

    def slow_score(enrolled, block_stats, **kwargs):
        clock[0] += 20.0 * len(block_stats)
        return real(enrolled, block_stats, **kwargs)

    monkeypatch.setattr(_trials, "score", slow_score)
    with caplog.at_level(logging.INFO, logger="emkit"):
        scores = score_trials(models, trials, features)
    np.testing.assert_array_equal(scores, reference)
    assert _info(caplog) == [
        "scoring: 2 of 7 probes (28.6%), 20 s/probe, 40 s elapsed, about 1m40s left",
        "scoring: 4 of 7 probes (57.1%), 20 s/probe, 1m20s elapsed, about 1m00s left",
        "scoring: 6 of 7 probes (85.7%), 20 s/probe, 2m00s elapsed, about 20 s left",
        "scoring: 14 trials (2 models x 7 probes) in 2m20s",
    ]


def test_enrolment_of_many_groups_logs_progress_and_a_summary(ubm_and_features, clock, caplog,
                                                              monkeypatch):
    ubm, features = ubm_and_features
    lists = {f"m{k}": [f"u{2 * k}", f"u{2 * k + 1}"] for k in range(5)}
    monkeypatch.setattr(_trials, "stats_per_block", lambda _: 2)  # one model a group
    reference = enroll_lists(ubm, lists, features)  # (in the same groups, as scoring's above)
    real = _trials.enroll

    def slow_enroll(machine, ids, stats_lists, **kwargs):
        clock[0] += 20.0 * len(ids)
        return real(machine, ids, stats_lists, **kwargs)

    monkeypatch.setattr(_trials, "enroll", slow_enroll)
    with caplog.at_level(logging.INFO, logger="emkit"):
        models = enroll_lists(ubm, lists, features)
    assert _info(caplog) == [
        "enrolment: 2 of 5 models (40.0%), 20 s/model, 40 s elapsed, about 1m00s left",
        "enrolment: 4 of 5 models (80.0%), 20 s/model, 1m20s elapsed, about 20 s left",
        "enrolment: 5 models from 10 utterances in 1m40s",
    ]
    assert models.model_ids == reference.model_ids
    for key in reference.arrays:
        np.testing.assert_array_equal(models.arrays[key], reference.arrays[key])
