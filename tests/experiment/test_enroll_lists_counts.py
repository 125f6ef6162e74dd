"""enroll_lists groups models by a running count of their utterances.

It summed the sizes of the group's lists again for every model added, O(models x group size):
with a small UBM a group holds thousands of one-utterance models (stats_per_block is about
12,000 for C=64, D=20), i.e. some 10^8 steps for 10^5 enrolment models.  The groups (and so the
models) must be those of the greedy rule: a model opens a new group when the group's
utterances and its own would exceed stats_per_block.
"""

import numpy as np

from emkit import GMMMachine
from emkit.experiment import _trials, enroll_lists


class CountedList(list):
    """A list that counts the calls of len() on it."""

    calls = 0

    def __len__(self):
        CountedList.calls += 1
        return super().__len__()


def _ubm_and_features(n):
    rng = np.random.default_rng(0)
    ubm = GMMMachine(2, trainer="ml", max_fitting_steps=2, random_state=0).fit(
        rng.standard_normal((200, 3)))
    frames = rng.standard_normal((5, 3))
    return ubm, {f"u{i}": frames + i / n for i in range(n)}


def test_a_group_of_1000_one_utterance_models_reads_each_list_size_once():
    ubm, features = _ubm_and_features(1000)
    lists = {f"m{i}": CountedList([f"u{i}"]) for i in range(1000)}
    CountedList.calls = 0
    models = enroll_lists(ubm, lists, features)  # (one group: stats_per_block is 3.2 million)
    assert models.model_ids == list(lists)
    # one len() per model now; the sum over the group for every model made half a million
    assert CountedList.calls <= 3 * len(lists), CountedList.calls


def test_groups_are_those_of_the_greedy_rule(monkeypatch):
    ubm, features = _ubm_and_features(60)
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 6, 20)
    first = np.concatenate([[0], np.cumsum(sizes)])
    lists = {f"m{k}": [f"u{u}" for u in range(first[k], first[k + 1])] for k in range(20)}
    monkeypatch.setattr(_trials, "stats_per_block", lambda _: 7)
    groups, real = [], _trials.enroll

    def recording_enroll(machine, ids, stats_lists, **kwargs):
        groups.append(list(ids))
        return real(machine, ids, stats_lists, **kwargs)

    monkeypatch.setattr(_trials, "enroll", recording_enroll)
    models = enroll_lists(ubm, lists, features)
    expected, group, count = [], [], 0
    for model, utterances in lists.items():
        if group and count + len(utterances) > 7:
            expected.append(group)
            group, count = [], 0
        group.append(model)
        count += len(utterances)
    expected.append(group)
    assert groups == expected and len(groups) > 3
    assert models.model_ids == list(lists)
