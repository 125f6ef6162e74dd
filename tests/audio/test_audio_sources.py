"""Audio inputs from untrusted lists and names: ids, paths and segments refused clearly."""

import os
import re

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import AudioError, compute_features, find_utterances, read_audio  # noqa: E402
from emkit.audio import write_kaldi_ark, write_npy_dir  # noqa: E402
from audio_files import speech_like, write  # noqa: E402
from emkit.io._message_text import show_key, show_path  # noqa: E402


@pytest.fixture()
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write(d / "a.wav", speech_like(seed=5))
    return d


def refused(data, match, **files):
    for name, text in files.items():
        (data / name).write_text(text, encoding="utf-8")
    with pytest.raises(AudioError, match=match) as info:
        find_utterances([data])
    return str(info.value)


@pytest.mark.parametrize("bad", ["u\x1b[31m", "u\x07", "u\u200b"])
def test_non_printable_ids_are_refused_at_their_line(data, bad):
    message = refused(data, "wav.scp. line 2: the recording id .* non-printable",
                      **{"wav.scp": f"ok a.wav\n{bad} a.wav\n"})
    assert repr(bad) in message and "\x1b" not in message and "\x07" not in message
    message = refused(data, "segments. line 3: the utterance id .* non-printable",
                      **{"wav.scp": "r a.wav\n", "segments": f"s1 r 0 0.5\ns2 r 0.5 0.8\n"
                                                             f"{bad} r 0 1\n"})
    assert repr(bad) in message and "\x1b" not in message


def test_non_printable_file_names_are_refused_naming_the_file(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write(d / "ok.wav", speech_like())
    path = write(d / "esc\x1b[31mRED.wav", speech_like())
    with pytest.raises(AudioError, match="non-printable character") as info:
        find_utterances([d])
    message = str(info.value)
    assert "\x1b" not in message and repr("esc\x1b[31mRED") in message
    with pytest.raises(AudioError, match="non-printable"):
        compute_features([path], tmp_path / "f.ark")
    assert not os.path.exists(tmp_path / "f.ark")


def test_writers_refuse_keys_that_readers_would_refuse(tmp_path):
    with pytest.raises(ValueError, match="printable"):
        write_kaldi_ark([("a\x1bb", np.zeros((2, 2)))], tmp_path / "f.ark")
    assert not (tmp_path / "f.ark").exists()


@pytest.mark.parametrize("key", ["../outside", "a/b", "a\\b", ".hidden"])
def test_the_npy_folder_writer_keeps_every_file_inside_the_folder(tmp_path, key):
    """(write_npy_dir is public: its ids need not come through the data-directory reader, which
    refuses them too) an id that would leave the folder or hide a file is refused, nothing written."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="cannot name a file"):
        write_npy_dir([(key, np.zeros((2, 2)))], out)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_a_key_longer_than_the_readers_take_is_not_written(tmp_path):
    """An id of 1025 bytes would be written, then refused by emkit's own archive reader."""
    from emkit.features import read_kaldi_ark

    write_kaldi_ark([("k" * 1024, np.zeros((2, 2)))], tmp_path / "ok.ark")
    assert list(read_kaldi_ark(tmp_path / "ok.ark")) == ["k" * 1024]
    with pytest.raises(ValueError, match="at most 1024 UTF-8 bytes"):
        write_kaldi_ark([("é" * 513, np.zeros((2, 2)))], tmp_path / "f.ark")
    assert not (tmp_path / "f.ark").exists()


def test_a_long_refused_key_is_shown_shortened(tmp_path):
    key = "a b" + "x" * 5000
    with pytest.raises(ValueError) as caught:
        write_kaldi_ark([(key, np.zeros((2, 2)))], tmp_path / "f.ark")
    assert str(caught.value).endswith(f"got {show_key(key)}") and len(str(caught.value)) < 200
    assert not (tmp_path / "f.ark").exists()


def test_paths_in_messages_are_shown_escaped(tmp_path):
    d = tmp_path / "dir\x1b[2J"
    d.mkdir()
    (d / "x\x1b]0;title\x07.wav").write_text("not audio")  # unreadable
    with pytest.raises(AudioError, match="not a readable audio file") as info:
        read_audio(d / "x\x1b]0;title\x07.wav")
    message = str(info.value)
    assert "\x1b" not in message and "\x07" not in message and "\\x1b]0;title\\x07" in message
    write(d / "a.wav", speech_like(rate=8000), rate=8000)
    write(d / "b.wav", np.zeros(16000))
    write(d / "c.wav", speech_like())
    (d / "wav.scp").write_text("a a.wav\nb b.wav\nc c.wav\n")
    (d / "segments").write_text("a1 a 0 0.5\nb1 b 0 0.5\nc1 c 0 0.5\nc2 c 0 3\n")
    for lines, match in [("a1 a 0 0.5\n", "sample rate is 8000 Hz"),
                         ("b1 b 0 0.5\n", "digital silence"),
                         ("c2 c 0 3\n", "ends 2.000s after the recording"),
                         ("c3 c 0 0.5 9 9\n", "expected 'utterance-id recording-id start end'"),
                         ("c3 c 0 0.5 9\n", "channel 9 requested"),
                         ("", "lists no recording")]:
        if match == "lists no recording":
            (d / "wav.scp").write_text("")
        (d / "segments").write_text(lines)
        with pytest.raises(AudioError, match=match) as info:
            compute_features([d], tmp_path / "f.ark")
        assert "\x1b" not in str(info.value) and "\\x1b[2J" in str(info.value), str(info.value)
    (d / "wav.scp").unlink()
    (d / "segments").unlink()
    for name in os.listdir(d):
        os.unlink(d / name)
    with pytest.raises(AudioError, match="no .wav or .flac file") as info:
        find_utterances([d])
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize("times", ["0 nan", "0 inf", "nan 1", "0 1e400", "0 1_0", "0 0x10",
                                   "0 1,5", "0 ∞", "0 ١"])
def test_segment_times_must_be_plain_finite_numbers(data, times):
    message = refused(data, "segments. line 1: start and end must be finite numbers of seconds",
                      **{"wav.scp": "r a.wav\n", "segments": f"s r {times}\n"})
    assert "a.wav" not in message


@pytest.mark.parametrize("times", ["0 -2", "0 -0.5", "1 1", "-1 -1"])
def test_segment_end_is_after_start_or_minus_one(data, times):
    refused(data, r"segments. line 1: need 0 <= start < end, or end -1 for the end of the "
            "recording; got start", **{"wav.scp": "r a.wav\n", "segments": f"s r {times}\n"})


def test_huge_segment_times_name_the_segments_line(data, tmp_path):
    (data / "wav.scp").write_text("r a.wav\n")
    for times, match in [("0 1e308", r"ends \d+.* after the recording"),
                         ("1e308 -1", "starts after the end"), ("2 -1", "starts after the end"),
                         ("0.5 3", "ends 2.000s after")]:
        (data / "segments").write_text(f"ok r 0 0.5\nbad r {times}\n")
        with pytest.raises(AudioError, match=match) as info:
            compute_features([data], tmp_path / "f.ark")
        assert "segments' line 2 (utterance 'bad'): " in str(info.value), str(info.value)


def test_fields_are_split_on_ascii_white_space_only(data):
    # U+00A0 (no-break space) is not a separator in Kaldi: the id holding it is refused
    refused(data, "segments. line 1: the utterance id 's\\\\xa0x' contains",
            **{"wav.scp": "r a.wav\n", "segments": "s\u00a0x r 0 1\n"})
    refused(data, "wav.scp. line 1: the recording id 'r\\\\x85' contains",
            **{"wav.scp": "r\x85 a.wav\n"})
    (data / "wav.scp").write_text("r\ta.wav\n")
    (data / "segments").write_text("s\tr \t0\x0b 1\r\n")
    assert [(u.id, u.start, u.end) for u in find_utterances([data])] == [("s", 0.0, 1.0)]


def test_an_utterance_listed_twice_names_both_lines(data, tmp_path):
    message = refused(data, r"segments. line 3: utterance 's' is listed twice \(lines 1 and 3\)",
                      **{"wav.scp": "r a.wav\n", "segments": "s r 0 0.5\nt r 0 1\ns r 0.5 1\n"})
    assert "comes from both" not in message
    (data / "segments").unlink()
    with pytest.raises(AudioError, match=r"utterance 'a' is listed twice: '.*a.wav' is given "
                                         "twice"):
        find_utterances([data / "a.wav", data / "a.wav"])
    # a data directory given twice is said to be (before, with the files named: "'.../a.wav' is
    # given twice", a file the user had not given)
    with pytest.raises(AudioError, match=r"utterance 'r' is listed twice: '.*wav.scp' line 1 is "
                                         "read twice: its data directory is given twice$"):
        find_utterances([data, data])


@pytest.mark.parametrize("token, accepted", [("1", True), ("1.", True), (".5", True),
                                             ("+2e-1", True), ("1E3", True), ("1_0", False),
                                             ("١", False), ("１", False), ("0x1", False),
                                             ("1e", False), (".", False)])
def test_segment_times_and_scores_accept_the_same_numbers(data, tmp_path, token, accepted):
    # one ASCII-number pattern (emkit.io.untrusted.ASCII_NUMBER) for every text reader of numbers
    from emkit.io.lists import FeatureError, read_scores

    (data / "wav.scp").write_text("r a.wav\n")
    (data / "segments").write_text(f"s r 0 {token}\n", encoding="utf-8")
    (tmp_path / "scores").write_text(f"m p {token}\n", encoding="utf-8")
    if accepted:
        assert find_utterances([data])[0].end == float(token)
        assert read_scores(tmp_path / "scores")[1][0] == float(token)
    else:
        with pytest.raises(AudioError, match="segments. line 1: start and end must be finite"):
            find_utterances([data])
        with pytest.raises(FeatureError, match="scores line 1: the score must be a number"):
            read_scores(tmp_path / "scores")


def test_a_line_starting_with_hash_is_an_entry_as_in_kaldi_and_refused(data, tmp_path):
    # before: skipped as a comment: recording '#r2' and utterance '#s2' were silently left out
    # (Kaldi reads them as entries)
    refused(data, r"wav.scp. line 2: the recording id '#r2' starts with '#': Kaldi reads every "
            "line of wav.scp and segments as an entry", **{"wav.scp": "r a.wav\n#r2 a.wav\n"})
    refused(data, r"wav.scp. line 1: the recording id '#' starts with '#'",
            **{"wav.scp": "# my recordings\nr a.wav\n"})
    refused(data, r"segments. line 2: the utterance id '#s2' starts with '#'",
            **{"wav.scp": "r a.wav\n", "segments": "s1 r 0 0.5\n#s2 r 0.5 0.8\n"})
    (data / "segments").unlink()
    (data / "wav.scp").unlink()
    # before: features of '#x.wav' were written under the key '#x', which read_kaldi_scp and
    # utt2spk readers skip as a comment
    write(tmp_path / "#x.wav", speech_like(seed=1))
    with pytest.raises(AudioError, match=r"#x.wav': its utterance id '#x' starts with '#'"):
        find_utterances([tmp_path / "#x.wav"])


def test_a_wav_scp_utterance_that_fails_is_named_by_its_id_and_line(tmp_path):
    # before: only the audio file was named, while utt2spk, trials and the errors of the later
    # steps name the utterance by its wav.scp id (spk1-b here, not 'silent'), so the user could
    # not tell which lines to remove after --keep-going left it out
    data = tmp_path / "data"
    data.mkdir()
    write(data / "a.wav", speech_like(seed=5))
    write(data / "silent.wav", np.zeros(1600))
    (data / "wav.scp").write_text(f"spk1-a {data / 'a.wav'}\nspk1-b {data / 'silent.wav'}\n")
    folder = re.escape(str(data))
    named = (rf"^'{folder}/wav.scp' line 2 \(utterance 'spk1-b'\): '{folder}/silent.wav': the "
             "audio is digital silence")
    with pytest.raises(AudioError, match=named):
        compute_features([data], tmp_path / "out.ark")
    with pytest.warns(UserWarning) as caught:
        shapes = compute_features([data], tmp_path / "out.ark", keep_going=True)
    assert list(shapes) == ["spk1-a"]
    assert re.search(named + ".*; left out$", str(caught[0].message))
    assert str(caught[-1].message).startswith("1 of 2 utterances could not be used")


def test_an_id_in_another_unicode_form_is_told_apart_from_a_missing_one(data):
    # before: "utterance 'café' has no speaker" while utt2spk visibly listed 'café': its é was
    # e and a combining accent (NFD, as macOS writes file names), wav.scp's one code point
    message = refused(data, r"utterance 'café' has no speaker \(1 of 1 utterances are missing\); "
                            r"utt2spk has 'cafe\\u0301' for 'caf\\xe9', the same text in other "
                            r"Unicode code points: .* one Unicode normalization form \(NFC\)$",
                      **{"wav.scp": "caf\u00e9 a.wav\n", "utt2spk": "cafe\u0301 s1\n"})
    assert "\u0301" not in message  # (shown escaped: a combining accent would join the quote)
    # an id missing altogether gets no such note
    message = refused(data, "utterance 'café' has no speaker",
                      **{"utt2spk": "other s1\n"})
    assert message.endswith("(1 of 1 utterances are missing)")


@pytest.fixture()
def stereo_call(tmp_path):
    """A data directory of one stereo recording whose two sides differ, and mono files of each."""
    d = tmp_path / "call"
    d.mkdir()
    left, right = speech_like(seconds=2.0, seed=1, f0=120), speech_like(seconds=2.0, seed=2, f0=220)
    write(d / "call.wav", np.stack([left, right], axis=1))
    write(tmp_path / "side0.wav", left)
    write(tmp_path / "side1.wav", right)
    (d / "wav.scp").write_text("call call.wav\n")
    return d


def test_a_segments_fifth_field_is_the_channel_of_the_segment(stereo_call, tmp_path):
    # before: a 5-field line (Kaldi's extract-segments: the channel of the segment, 0 left,
    # 1 right) was refused; now each segment is cut from its own channel
    from emkit.audio import FeatureConfig, extract_features, read_data_dir

    (stereo_call / "segments").write_text("A call 0 -1 0\nB call 0 -1 1\nC call 0.5 1.5 1\n"
                                          "D call 0 -1\n")
    utterances = read_data_dir(stereo_call)
    assert [u.channel for u in utterances] == [0, 1, 1, None]
    mono = [extract_features(str(tmp_path / f"side{c}.wav")) for c in (0, 1)]
    a, b, c = (extract_features(u) for u in utterances[:3])
    np.testing.assert_array_equal(a, mono[0])
    np.testing.assert_array_equal(b, mono[1])
    assert not np.array_equal(a, b)
    cut = extract_features(str(tmp_path / "side1.wav"), FeatureConfig())  # (the whole side)
    assert c.shape[0] < cut.shape[0]
    # the field wins over the configuration's channel; a line without one takes the latter
    np.testing.assert_array_equal(extract_features(utterances[0], FeatureConfig(channel=1)),
                                  mono[0])
    np.testing.assert_array_equal(extract_features(utterances[3], FeatureConfig(channel=1)),
                                  mono[1])
    # no warning of a multi-channel file read without a channel: the line chose it
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shapes = compute_features([stereo_call], tmp_path / "out.ark",
                                  FeatureConfig(channel=0))
    assert list(shapes) == ["A", "B", "C", "D"]


@pytest.mark.parametrize("field", ["x", "-1", "1.0", "+1", "1024", "1" * 5000])
def test_a_segments_channel_that_is_not_a_channel_number_names_the_line(data, field):
    # Kaldi skips such a line with a warning; emkit refuses it, as its other malformed lines
    # (5000 digits: more than int() converts, refused as any other, its file and line named)
    message = refused(data, r"segments' line 1: the fifth field, the channel of the segment, "
                            rf"must be a channel number from 0 \(the first, left\) to 1023; got "
                            rf"{re.escape(show_key(field))}$",
                      **{"wav.scp": "r a.wav\n", "segments": f"s r 0 0.5 {field}\n"})
    assert message
    refused(data, r"got 6 field\(s\)$", segments="s r 0 0.5 1 2\n")


def test_a_segments_channel_the_recording_lacks_is_that_utterance_s_error(stereo_call, tmp_path):
    (stereo_call / "segments").write_text("A call 0 -1 0\nB call 0 -1 2\n")
    folder = re.escape(str(stereo_call))
    named = (rf"^'{folder}/segments' line 2 \(utterance 'B'\): channel 2 requested; "
             rf"'{folder}/call.wav' has 2 channels")
    with pytest.raises(AudioError, match=named):
        compute_features([stereo_call], tmp_path / "out.ark")
    with pytest.warns(UserWarning) as caught:
        assert list(compute_features([stereo_call], tmp_path / "out.ark", keep_going=True)) == ["A"]
    assert re.search(named, str(caught[0].message))


def test_missing_ok_gives_the_segments_of_a_missing_recording_to_leave_out(data, tmp_path):
    # before: keep_going stopped at the missing file, FileNotFoundError, nothing written
    (data / "wav.scp").write_text("r a.wav\ngone nothere.wav\n")
    (data / "segments").write_text("s1 r 0 0.5\ng1 gone 0 0.5\ng2 gone 0.5 1\n")
    with pytest.raises(FileNotFoundError, match="line 2: no such audio file 'nothere.wav'"):
        find_utterances([data])
    found = find_utterances([data], missing_ok=True)
    assert [(u.id, u.path) for u in found] == [("s1", str(data / "a.wav")),
                                               ("g1", "nothere.wav"), ("g2", "nothere.wav")]
    with pytest.warns(UserWarning) as caught:
        shapes = compute_features([data], tmp_path / "out.ark", keep_going=True)
    assert list(shapes) == ["s1"]
    messages = [str(w.message) for w in caught]
    # where the relative path was looked for, as the error without missing_ok says (before:
    # the warning lacked it)
    looked = (f" (a relative path is looked for from the current directory, "
              f"{show_path(os.getcwd())}, then from the data directory, {show_path(data)})")
    assert messages[0].endswith("segments' line 2 (utterance 'g1'): no such audio file: "
                                f"'nothere.wav'{looked}; left out"), messages
    assert messages[-1].startswith("2 of 3 utterances could not be used")
