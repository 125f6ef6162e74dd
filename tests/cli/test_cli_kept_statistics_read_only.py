"""A read-only statistics file beside a --checkpoint is read when it holds the statistics, and
left as it is, with a warning, when it holds others.  (The check reads the mode bits, as the
output checks do, so root running the tests sees it as a user would.)"""

import pytest

from cli_support import run
from test_cli_resume_stats import _args, _no_e_step


@pytest.mark.parametrize("command", ["isv", "ivector"])
def test_read_only_statistics_that_fit_are_read(data, tmp_path, monkeypatch, command):
    # such a file was refused before the training: "cannot write 'c.stats.h5': it exists and
    # is read-only", although it would only have been read
    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    kept.chmod(0o444)
    before = kept.read_bytes()
    with monkeypatch.context() as m:
        _no_e_step(m)
        resumed = run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "b.h5")
        for name in ("c.h5", "c.backend.h5"):  # a fresh training: only the statistics kept
            (tmp_path / name).unlink(missing_ok=True)
        again = run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "fresh.h5")
    assert resumed.stderr == again.stderr == ""
    assert (tmp_path / "b.h5").read_bytes() == (tmp_path / "a.h5").read_bytes()
    assert (tmp_path / "fresh.h5").read_bytes() == (tmp_path / "a.h5").read_bytes()
    assert kept.read_bytes() == before and kept.stat().st_mode & 0o777 == 0o444


def test_read_only_statistics_of_other_utterances_are_left_with_a_warning(data, tmp_path):
    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    kept.chmod(0o444)
    before = kept.read_bytes()
    ckpt.unlink()
    lines = (d / "utt2spk").read_text().splitlines()
    fewer = tmp_path / "fewer.utt2spk"  # other utterances: the kept statistics are not theirs
    fewer.write_text("\n".join(lines[:-3]) + "\n")
    args = [a if a != d / "utt2spk" else fewer for a in _args(d, "isv")]
    run(*args, "-o", tmp_path / "plain.h5")
    other = run(*args, "--checkpoint", ckpt, "-o", tmp_path / "b.h5")
    assert other.stderr.splitlines(keepends=True)[-1] == (
        f"emkit: warning: not keeping the statistics in {kept}: it holds those of other "
        "features, UBM or settings and is read-only (mode 0444), so it is left as it is; a "
        "resumed run will compute them again (make it writable or remove it to keep them)\n")
    assert kept.read_bytes() == before and kept.stat().st_mode & 0o777 == 0o444
    assert (tmp_path / "b.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()
