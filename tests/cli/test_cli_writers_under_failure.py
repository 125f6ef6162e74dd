"""What the command line says when a file it writes cannot be written: one line naming the file
and the cause, exit status 1, the previous file as it was, no temporary file left."""

import errno

import numpy as np
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


