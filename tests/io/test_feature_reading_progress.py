"""Reading many feature files says how far it is (INFO, rate-limited, on a clock the test
drives) and what it read: utterances, frames, memory, files, time."""

import logging

import numpy as np

from emkit import _progress
from emkit.features import read_feature_sources


def test_reading_a_directory_of_files_logs_progress_and_what_was_read(tmp_path, monkeypatch,
                                                                     caplog):
    ticks = iter(range(0, 10**6, 10))  # 10 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"u{i}.npy")
        np.save(paths[-1], np.full((4 + i, 3), float(i)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        features = read_feature_sources(paths)
    assert [r.getMessage() for r in caplog.records] == [
        "reading features: 3 of 5 files (60.0%), 10 s/file, 30 s elapsed, about 20 s left",
        "read 5 utterances (30 frames x 3 features, 720 bytes in memory) from 5 files in 50 s",
    ]
    assert sorted(features) == [f"u{i}" for i in range(5)]
    assert all((features[f"u{i}"] == i).all() and features[f"u{i}"].shape == (4 + i, 3)
               for i in range(5))


def test_reading_one_large_script_file_logs_the_lines_read_of_all(tmp_path, monkeypatch, caplog):
    from feature_files import write_ark, write_scp

    matrices = {f"u{i}": np.full((2, 3), float(i)) for i in range(6)}
    offsets = write_ark(tmp_path / "feats.ark", matrices)
    scp = tmp_path / "feats.scp"
    write_scp(scp, tmp_path / "feats.ark", offsets)
    with open(scp) as f:
        text = f.read()
    scp.write_text(text.replace("u3 ", "# a comment\nu3 ", 1))  # 7 lines, 6 entries
    quiet = read_feature_sources([scp])
    ticks = iter(range(0, 10**6, 10))  # 10 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        features = read_feature_sources([scp])
    assert [r.getMessage() for r in caplog.records] == [
        f"reading '{scp}': 3 of 7 lines (42.9%), 10 s/line, 30 s elapsed, about 40 s left",
        "read 6 utterances (12 frames x 3 features, 288 bytes in memory) from 1 file in 1m10s",
    ]
    assert list(features) == list(matrices)
    assert all(np.array_equal(features[k], quiet[k]) for k in quiet)


def test_reading_one_large_archive_logs_the_megabytes_read_of_all(tmp_path, monkeypatch, caplog):
    from feature_files import write_ark

    matrices = {f"u{i}": np.full((1000, 250), float(i)) for i in range(4)}  # 1 MB each (float32)
    write_ark(tmp_path / "feats.ark", matrices)
    quiet = read_feature_sources([tmp_path / "feats.ark"])
    ticks = iter(range(0, 10**6, 10))  # 10 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        features = read_feature_sources([tmp_path / "feats.ark"])
    assert [r.getMessage() for r in caplog.records][0] == (
        f"reading '{tmp_path / 'feats.ark'}': 3 of 4 megabytes (75.0%), 10 s/megabyte, "
        "30 s elapsed, about 10 s left")
    assert all(np.array_equal(features[k], quiet[k]) for k in matrices)


def test_a_script_file_is_counted_only_to_be_shown_and_named_escaped(tmp_path, monkeypatch, caplog):
    # before: its lines were counted (one more read of the whole file) with INFO off too, and
    # its name went into the log line raw, an escape sequence in it included
    from feature_files import write_ark, write_scp

    from emkit.io import kaldi

    offsets = write_ark(tmp_path / "feats.ark", {f"u{i}": np.zeros((2, 3)) for i in range(3)})
    scp = tmp_path / "feats\x1b[2J.scp"
    write_scp(scp, tmp_path / "feats.ark", offsets)
    counted = []
    monkeypatch.setattr(kaldi, "_line_count", lambda path: counted.append(path) or 3)
    read_feature_sources([scp])
    assert counted == []
    ticks = iter(range(0, 10**6, 40))  # 40 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        read_feature_sources([scp])
    assert counted == [str(scp)]
    assert caplog.records[0].getMessage().startswith(f"reading {str(scp)!r}: 1 of 3 lines")
    assert "\x1b" not in caplog.text
