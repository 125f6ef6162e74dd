"""What the command line says when a file it writes cannot be written: one line naming the file
and the cause, exit status 1, the previous file as it was, no temporary file left."""

import errno
import os

import numpy as np
import pytest
from click.testing import CliRunner
from cli_support import no_leftovers, one_line_error
from writer_cases import fail_writes

from emkit.cli import cli
from emkit.features import write_scores


def _scores(path, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(60) % 3 == 0
    write_scores(path, [f"m{i % 5}" for i in range(60)], [f"p{i}" for i in range(60)],
                 np.where(labels, 1.5, -1.5) + rng.standard_normal(60), labels)


def _calibrate(tmp_path, *outputs):
    return CliRunner().invoke(cli, ["calibrate", "--train", str(tmp_path / "dev.txt"),
                                    str(tmp_path / "eval.txt"), *map(str, outputs)],
                              catch_exceptions=False)


def test_a_full_disk_is_one_line_naming_the_file_and_the_old_file_is_kept(tmp_path, monkeypatch):
    """Before: 'emkit calibrate: error: [Errno 28] No space left on device', naming no file."""
    _scores(tmp_path / "dev.txt", 0)
    _scores(tmp_path / "eval.txt", 1)
    (tmp_path / "eval.llr").write_text("previous scores\n")
    fail_writes(monkeypatch, ["emkit.io.atomic"], OSError(errno.ENOSPC, "No space left on device"))
    result = _calibrate(tmp_path, "-o", tmp_path / "eval.llr")
    one_line_error(result, 1, "emkit calibrate: error: [Errno 28] No space left on device: "
                              f"'{tmp_path / 'eval.llr'}'")
    assert (tmp_path / "eval.llr").read_text() == "previous scores\n"
    no_leftovers(tmp_path)


def test_an_output_that_is_the_input_is_refused_before_any_work(tmp_path):
    """A guard (passes on the old code too)."""
    _scores(tmp_path / "dev.txt", 0)
    _scores(tmp_path / "eval.txt", 1)
    before = (tmp_path / "eval.txt").read_bytes()
    (tmp_path / "link.txt").symlink_to(tmp_path / "eval.txt")
    result = _calibrate(tmp_path, "-o", tmp_path / "link.txt")
    one_line_error(result, 2, "refusing to overwrite an input")
    assert (tmp_path / "eval.txt").read_bytes() == before
    no_leftovers(tmp_path)




@pytest.mark.parametrize("full_when", ["archive", "utt2num_frames"])
def test_features_on_a_full_disk_keep_the_previous_archive_script_and_frame_counts(
        tmp_path, audio, monkeypatch, full_when):
    """The archive, its .scp and utt2num_frames are replaced together or not at all."""
    pytest.importorskip("kaldi_native_fbank", reason="the audio extra is not installed")
    from audio_files import run_features

    outputs = {name: tmp_path / name for name in ("feats.ark", "feats.scp", "utt2num_frames")}
    for path in outputs.values():
        path.write_text("previous\n")
    modules = {"archive": ["emkit.audio._write"], "utt2num_frames": ["emkit.audio"]}[full_when]
    fail_writes(monkeypatch, modules, OSError(errno.ENOSPC, "No space left on device"), after=10)
    result = run_features(audio, "-o", outputs["feats.ark"], "--no-progress")
    named = outputs["feats.ark" if full_when == "archive" else "utt2num_frames"]
    one_line_error(result, 1, f"error: [Errno 28] No space left on device: '{named}'")
    assert all(path.read_text() == "previous\n" for path in outputs.values())
    no_leftovers(tmp_path)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_model_or_checkpoint_on_a_full_disk_is_one_line_naming_it(data, tmp_path, monkeypatch,
                                                                    checkpoint):
    """HDF5 files: before, libhdf5 crashed the process (SIGSEGV) when a write of the file failed
    (see tests/io/test_writers_under_failure.py, which meets the kernel's own refusal)."""
    from cli_support import run

    model = tmp_path / "ubm.h5"
    model.write_text("previous\n")
    fail_writes(monkeypatch, ["emkit.io._h5_new_file"], OSError(errno.ENOSPC, "No space left on device"))
    result = run("train-ubm", data / "train.scp", "-n", 4, "--iterations", 2, "--seed", 1, "-o", model,
                 "--no-progress", *(["--checkpoint", tmp_path / "ubm.ckpt.h5"] if checkpoint else []),
                 ok=False)
    # (the first checkpoint written is k-means', the UBM's initialisation: ubm.ckpt.kmeans.h5)
    named = str(tmp_path / ("ubm.ckpt.kmeans.h5" if checkpoint else "ubm.h5"))
    one_line_error(result, 1, f"emkit train-ubm: error: [Errno 28] No space left on device: '{named}'")
    assert model.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["ubm.h5"]
