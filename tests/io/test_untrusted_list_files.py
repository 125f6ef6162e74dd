"""Id lists, trial lists and score files are untrusted text: regular files only, bounded lines."""

import os

import pytest
from feature_files import peak_bytes

from emkit.features import FeatureError, read_id_lists, read_id_map, read_scores, read_trials
from emkit.io.lists import MAX_LINE

READERS = [read_trials, read_scores, read_id_map, read_id_lists]
WHAT = {read_trials: "trial list", read_scores: "score file", read_id_map: "two-column list",
        read_id_lists: "list of ids"}


@pytest.mark.parametrize("read", READERS, ids=lambda f: f.__name__)
def test_a_line_longer_than_the_limit_is_refused_before_it_is_split(read, tmp_path):
    path = tmp_path / "one_line.txt"  # 3 MB, a million fields on one line
    path.write_text("ab " * 1_000_000 + "\n")

    def call():
        with pytest.raises(FeatureError, match=f"one_line.txt line 1: longer than {MAX_LINE} "
                                               f"bytes; not a {WHAT[read]}"):
            read(path)

    assert peak_bytes(call) < 8 * 1024**2


@pytest.mark.parametrize("read", READERS, ids=lambda f: f.__name__)
def test_a_named_pipe_is_said_to_be_one(read, tmp_path, no_hang):
    os.mkfifo(tmp_path / "trials")
    with pytest.raises(FeatureError, match="trials is a named pipe, not a regular file"):
        read(tmp_path / "trials")
    with pytest.raises(FileNotFoundError, match="gone.*no such file"):
        read(tmp_path / "gone")


@pytest.mark.parametrize("read", READERS, ids=lambda f: f.__name__)
def test_bytes_that_are_not_utf8_name_the_file_and_line(read, tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"m\xe9 p1\n")
    with pytest.raises(FeatureError, match="latin1.txt line 1: not UTF-8 text"):
        read(tmp_path / "latin1.txt")


BIG = "X" * 100_000


@pytest.mark.parametrize("read, text, message", [
    (read_trials, f"m p {BIG}\n", "line 1: the label must be 'target' or 'nontarget'; got 'XXX"),
    (read_trials, f"m {BIG}\nm {BIG}\n", "line 2: trial 'm XXX"),
    (read_scores, f"m p {BIG}\n", "line 1: the score must be a number; got 'XXX"),
    (read_scores, f"m p 1 {BIG}\n", "line 1: the label must be 'target' or 'nontarget'; got 'XX"),
    (read_id_lists, f"{BIG}\n", "line 1: expected 'model-id utterance-id .*got 'XXX"),
    (read_id_lists, f"{BIG} u1\n{BIG} u2\n", "line 2: model 'XXX"),
    (read_id_map, f"{BIG} s\n{BIG} s\n", "line 2: 'XXX"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_a_long_token_is_shortened_in_the_message(read, text, message, tmp_path):
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(FeatureError, match=message) as info:
        read(tmp_path / "list.txt")
    assert str(tmp_path / "list.txt") in str(info.value)
    assert len(str(info.value)) < len(str(tmp_path)) + 300, len(str(info.value))
