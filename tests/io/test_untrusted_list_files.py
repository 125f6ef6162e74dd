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


@pytest.mark.parametrize("token, shown", [
    ("1_0", "'1_0' in column 3"),
    ("\u0661", "'\u0661' in column 3 .*U\\+0661 is not ASCII"),
    ("\uff11.5", "'\uff11.5' in column 3 .*U\\+FF11 is not ASCII"),  # full-width
    ("\u202e1", "'\\\\u202e1' in column 3"),          # a control character is shown escaped
    ("0x10", "'0x10' in column 3"),
])
def test_a_score_python_would_read_but_kaldi_would_not_is_refused(token, shown, tmp_path):
    path = tmp_path / "scores.txt"
    path.write_text(f"m p 0.5 target\nm q {token} nontarget\n", encoding="utf-8")
    with pytest.raises(FeatureError, match=f"scores.txt line 2: the score must be a number; got "
                                           f"{shown}") as info:
        read_scores(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("token, value", [("-1.5e-3", -1.5e-3), ("+2", 2.0), (".5", 0.5),
                                          ("7.", 7.0), ("1E+2", 100.0), ("-0", -0.0)])
def test_ascii_scores_in_every_c_form_are_read(token, value, tmp_path):
    (tmp_path / "s.txt").write_text(f"m p {token}\n")
    assert read_scores(tmp_path / "s.txt")[1].tolist() == [value]


@pytest.mark.parametrize("token", ["nan", "-Infinity", "1e999"])
def test_a_score_that_is_not_finite_names_the_line_and_column(token, tmp_path):
    (tmp_path / "s.txt").write_text(f"m p {token}\n")
    with pytest.raises(FeatureError, match=f"s.txt line 1: the score must be finite; got "
                                           f"'{token}' in column 3"):
        read_scores(tmp_path / "s.txt")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_score_that_is_not_finite_is_not_written(bad, tmp_path):
    from emkit.features import write_scores

    (tmp_path / "s.txt").write_text("old\n")
    # before: written as 'nan'/'inf', a file that read_scores (and emkit evaluate) then refused
    with pytest.raises(ValueError, match=f"scores must be finite; got 1 NaN or infinite score.s., "
                                         f"the first {bad} for model 'b' and probe 'q'"):
        write_scores(tmp_path / "s.txt", ["a", "b"], ["p", "q"], [0.5, bad])
    assert (tmp_path / "s.txt").read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["s.txt"]


ENTRIES = {read_trials: "spk1 u1 target\n", read_scores: "spk1 u1 0.5 target\n",
           read_id_map: "u1 spk1\n", read_id_lists: "spk1 u1\n"}


@pytest.mark.parametrize("read", READERS, ids=lambda f: f.__name__)
def test_a_line_starting_with_hash_and_a_character_is_refused_not_lost(read, tmp_path):
    # before: skipped as a comment, so the entry of an id starting with '#' (Kaldi has no
    # comments: it reads such a line as one) was silently left out
    path = tmp_path / "list"
    path.write_text(ENTRIES[read] + "#" + ENTRIES[read].replace("1", "2"))
    first = "#u2" if read is read_id_map else "#spk2"
    with pytest.raises(FeatureError, match=f"^{path} line 2: the line starts with '{first}': emkit "
                                           "refuses an id starting with '#' rather than lose it "
                                           "as a comment"):
        read(path)
    # a comment: '#' then white space (or nothing), at any indentation
    path.write_text("# a comment\n" + ENTRIES[read] + "  #\tanother\n#\n")
    assert len(read(path)[0] if read is read_scores else read(path)) == 1


def test_a_feature_scp_line_starting_with_hash_and_a_character_is_refused(tmp_path):
    import numpy as np
    from feature_files import write_ark, write_scp

    from emkit.io.kaldi import read_kaldi_scp

    offsets = write_ark(tmp_path / "f.ark", {"u1": np.ones((2, 3), np.float32),
                                             "#u2": np.zeros((2, 3), np.float32)})
    write_scp(tmp_path / "f.scp", tmp_path / "f.ark", offsets)
    with pytest.raises(FeatureError, match=f"^{tmp_path / 'f.scp'} line 2: the line starts with "
                                           "'#u2': emkit refuses an id starting with '#'"):
        read_kaldi_scp(tmp_path / "f.scp")  # (before: u1 alone, '#u2' silently left out)
    lines = (tmp_path / "f.scp").read_text().splitlines()
    (tmp_path / "f.scp").write_text(f"# {lines[1]}\n{lines[0]}\n")
    assert list(read_kaldi_scp(tmp_path / "f.scp")) == ["u1"]


@pytest.mark.parametrize("token", ["9" * 300_000 + "x", "-" + "1" * 300_000 + ".5e5e",
                                   "1" * 100_000 + "_0"])
def test_a_long_almost_number_is_refused_at_once(token, tmp_path, no_hang):
    # the number pattern split a run of digits every way before failing (quadratic: hours)
    (tmp_path / "s.txt").write_text(f"m p {token} target\n")
    with pytest.raises(FeatureError, match="s.txt line 1: the score must be a number; got "):
        read_scores(tmp_path / "s.txt")


def test_a_long_almost_number_in_a_kaldi_text_matrix_is_refused_at_once(tmp_path, no_hang):
    from emkit.io.kaldi import read_kaldi_ark

    (tmp_path / "feats.ark").write_text(f"utt1  [\n 1.0 {'9' * 60_000}x\n 3.0 4.0 ]\n")
    with pytest.raises(FeatureError, match="line 2: row 1 of the text matrix holds something "
                                           "that is not a number"):
        read_kaldi_ark(tmp_path / "feats.ark")


def test_labels_of_utterances_without_features_say_what_to_do():
    # before: "utt2spk: utterance 'spk2-b' is not in the features (1 of 3 listed utterances are
    # missing)" alone, after 'emkit features --keep-going' had left spk2-b out (with a warning)
    from emkit.io.lists import count_unlabelled

    labels = {"spk1-a": "spk1", "spk2-b": "spk2", "spk2-c": "spk2"}
    with pytest.raises(FeatureError) as info:
        count_unlabelled({"spk1-a": 1, "spk2-c": 2}, labels, "data/utt2spk")
    assert str(info.value) == (
        "'data/utt2spk': utterance 'spk2-b' is not in the features (1 of 3 listed utterances are "
        "missing): a labels file of other data, or utterances left out of the features (by emkit "
        "features --keep-going, or by their removal from wav.scp); remove their lines, or give "
        "their features")
    assert count_unlabelled({"spk1-a": 1, "spk2-b": 2, "spk2-c": 3, "x": 4}, labels, "l") == 1


@pytest.mark.parametrize("read, text, message", [
    (read_id_map, "u1 s1\nu1 s2\n", " line 2: 'u1' is listed twice"),
    (read_id_map, "u1 s1 x\n", " line 1: expected 2 columns"),
    (read_id_map, "\n", ": the list is empty"),
    (read_id_lists, "m1 u1\nm1 u2\n", " line 2: model 'm1' is listed twice"),
    (read_id_lists, "m1\n", " line 1: expected 'model-id utterance-id"),
    (read_id_lists, "\n", ": the list is empty"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_id_list_errors_show_the_path_quoted_and_escaped(read, text, message, tmp_path):
    # as the other list errors (show_path): before, "<path> line 2: 'u1' is listed twice" showed
    # the path bare, and a file name's escape sequence went to the terminal as it was
    path = tmp_path / "utt2spk\x1b[2J"
    path.write_text(text)
    with pytest.raises(FeatureError) as info:
        read(path)
    assert str(info.value).startswith(repr(str(path)) + message)
    assert "\x1b" not in str(info.value)
