"""``--models`` and ``-m`` files whose class stamp is not a short text: one short line naming the
file, never the attribute's contents."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import _model_files as mf
from emkit.cli import cli


@pytest.mark.parametrize("stamp", [np.arange(5), "A" * 200_000, "B" * 60_000, np.int64(7)],
                         ids=["int-array", "200k-text", "60k-text", "number"])
@pytest.mark.parametrize("option", ["--models", "-m"])
def test_a_hostile_class_stamp_gives_a_short_error_naming_the_file(tmp_path, stamp, option):
    path = tmp_path / "models.h5"
    mf.enrolled().save(path)
    with h5py.File(path, "r+") as f:
        f.attrs["emkit_class"] = stamp
    np.save(tmp_path / "probe.npy", np.zeros((5, mf.D)))
    (tmp_path / "list").write_text("alice probe\n")
    out = tmp_path / "out"
    if option == "--models":
        args = ["score", "--models", path, "-t", tmp_path / "list", "-o", out]
    else:
        args = ["enroll", "-m", path, "-e", tmp_path / "list", "-o", out]
    result = CliRunner().invoke(cli, [str(a) for a in [*args, tmp_path / "probe.npy"]])
    err = result.stderr.strip()
    assert result.exit_code == 1 and not out.exists()
    assert str(path) in err and "emkit_class" in err and len(err) < 300 and "\n" not in err, err
    assert "AAAA" not in err and "BBBB" not in err
