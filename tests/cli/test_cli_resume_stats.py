"""train-isv/jfa/ivector --checkpoint keep the utterances' statistics beside the checkpoint
(STEM.stats.EXT): a resumed run reads them instead of running the UBM's E-step over every frame
again, and writes the model file of an uninterrupted run."""

import h5py
import numpy as np
import pytest

from cli_support import no_leftovers, one_line_error, run

COMMANDS = {
    "isv": ("train-isv", "--rank-u", 2, "--iterations", 2),
    "jfa": ("train-jfa", "--rank-u", 1, "--rank-v", 1, "--iterations", 2),
    "ivector": ("train-ivector", "--dim", 5, "--iterations", 2),
}


def _args(d, command, *extra):
    return (*COMMANDS[command], d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk",
            "--seed", 3, "--no-progress", *extra)


class _Killed(Exception):
    pass


def _kill_after_first_iteration(monkeypatch):
    """The next run stops (as if killed) once its checkpoint holds one iteration."""
    from emkit._checkpoint import Checkpoint

    save = Checkpoint.save

    def saving_then_killed(self, step, *args, **kwargs):
        save(self, step, *args, **kwargs)
        if step >= 1:
            raise _Killed

    monkeypatch.setattr(Checkpoint, "save", saving_then_killed)


def _no_e_step(monkeypatch):
    from emkit import GMMMachine

    def refused(self, *args, **kwargs):
        raise AssertionError("the UBM's statistics were computed again")

    monkeypatch.setattr(GMMMachine, "transform", refused)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_resumed_run_reads_the_statistics_and_writes_the_uninterrupted_runs_file(
        data, tmp_path, monkeypatch, command):
    # every resume computed the statistics of every utterance again before it read the
    # checkpoint, even one of a finished training
    d, ckpt = data, tmp_path / "c.h5"
    run(*_args(d, command), "-o", tmp_path / "plain.h5")
    plain = (tmp_path / "plain.h5").read_bytes()
    with monkeypatch.context() as m:
        _kill_after_first_iteration(m)
        killed = run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5", ok=False)
    assert killed.exit_code == 1 and "_Killed" in killed.stderr, killed.output
    assert (tmp_path / "c.stats.h5").is_file() and not (tmp_path / "a.h5").exists()
    _no_e_step(monkeypatch)
    resumed = run("-v", *_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert "statistics of 120 utterance(s) read from" in resumed.stderr
    assert "resuming from checkpoint" in resumed.stderr
    assert (tmp_path / "a.h5").read_bytes() == plain
    finished = run("-v", *_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "b.h5")
    assert "(training had finished)" in finished.stderr
    assert (tmp_path / "b.h5").read_bytes() == plain
    if command == "ivector":  # stopped before the back-end was kept: it is trained from them
        (tmp_path / "c.backend.h5").unlink()
        run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "e.h5")
        assert (tmp_path / "e.h5").read_bytes() == plain
    no_leftovers(tmp_path)


def _key_of(kept) -> str:
    with h5py.File(kept, "r") as f:
        return f.attrs["key"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_statistics_replacing_stale_ones_are_kept_before_the_training(data, tmp_path,
                                                                      monkeypatch, command):
    # they replaced the stale file only once the training had succeeded: a run killed during
    # the training left the stale file, and every resume computed them again
    import emkit

    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    run(*_args(d, command), "-o", tmp_path / "plain.h5")
    with monkeypatch.context() as m:  # kept by another emkit version, killed: stale statistics
        m.setattr(emkit, "__version__", "0.0.0+another")
        _kill_after_first_iteration(m)
        run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5", ok=False)
    stale = _key_of(kept)
    with monkeypatch.context() as m:  # this version resumes the checkpoint, killed again
        _kill_after_first_iteration(m)
        killed = run("-v", *_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5",
                     ok=False)
    assert killed.exit_code == 1 and "_Killed" in killed.stderr, killed.output
    assert "holds the statistics of other features, UBM or settings" in killed.stderr
    assert "resuming from checkpoint" in killed.stderr
    assert _key_of(kept) != stale
    _no_e_step(monkeypatch)
    resumed = run("-v", *_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert "statistics of 120 utterance(s) read from" in resumed.stderr
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()
    no_leftovers(tmp_path)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_run_its_checkpoint_refuses_for_other_parameters_leaves_the_kept_file(
        data, tmp_path, monkeypatch, command):
    # the checkpoint records the same data, so the new statistics replaced the stale file, and
    # only then did fit refuse the run (another --seed): the file was replaced, nothing trained
    import emkit

    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    with monkeypatch.context() as m:  # kept by another emkit version, killed: stale statistics
        m.setattr(emkit, "__version__", "0.0.0+another")
        _kill_after_first_iteration(m)
        run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5", ok=False)
    stale, checkpoint = kept.read_bytes(), ckpt.read_bytes()
    refused = run(*_args(d, command, "--seed", 4, "--checkpoint", ckpt), "-o", tmp_path / "a.h5",
                  ok=False)
    one_line_error(refused, 1, "belongs to another training run", "the options differ (--seed)")
    assert kept.read_bytes() == stale and ckpt.read_bytes() == checkpoint
    assert not (tmp_path / "a.h5").exists()
    no_leftovers(tmp_path)


def test_statistics_of_other_features_ubm_or_gselect_are_computed_again(data, tmp_path,
                                                                        monkeypatch):
    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    # a run that its checkpoint refuses leaves the statistics of the checkpoint's run alone
    first = kept.read_bytes()
    refused = run(*_args(d, "isv", "--gselect", 2, "--checkpoint", ckpt), "-o", tmp_path / "x.h5",
                  ok=False)
    one_line_error(refused, 1, "belongs to another training run", "the features differ")
    assert kept.read_bytes() == first
    with monkeypatch.context() as m:
        _no_e_step(m)
        run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "x.h5")
    ckpt.unlink()  # started afresh with --gselect: the kept statistics are not those
    again = run("-v", *_args(d, "isv", "--gselect", 2, "--checkpoint", ckpt), "-o",
                tmp_path / "b.h5")
    assert "holds the statistics of other features, UBM or settings" in again.stderr
    run(*_args(d, "isv", "--gselect", 2), "-o", tmp_path / "plain.h5")
    assert (tmp_path / "b.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()
    assert (tmp_path / "b.h5").read_bytes() != (tmp_path / "a.h5").read_bytes()
    # the file now holds the --gselect 2 statistics
    ckpt.unlink()
    with monkeypatch.context() as m:
        _no_e_step(m)
        run(*_args(d, "isv", "--gselect", 2, "--checkpoint", ckpt), "-o", tmp_path / "e.h5")
    assert (tmp_path / "e.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()
    # another UBM (the labels' utterances the same): computed again
    ckpt.unlink()
    run("train-ubm", d / "train.scp", "-n", 4, "--iterations", 2, "--seed", 1, "--no-progress",
        "-o", tmp_path / "ubm4.h5")
    other = ("train-isv", "--rank-u", 2, "--iterations", 2, d / "train.scp", "--ubm",
             tmp_path / "ubm4.h5", "--labels", d / "utt2spk", "--seed", 3, "--no-progress")
    again = run("-v", *other, "--checkpoint", ckpt, "-o", tmp_path / "d.h5")
    assert "holds the statistics of other features, UBM or settings" in again.stderr
    with h5py.File(kept) as f:
        assert f["n"].shape == (120, 4)


def _edited(path, name, change):
    with h5py.File(path, "r+") as f:
        values = f[name][()]
        change(values)
        f[name][...] = values


def test_a_damaged_or_forged_statistics_file_is_an_error_naming_it(data, tmp_path):
    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    original = kept.read_bytes()

    def refused(*fragments):
        result = run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "x.h5", ok=False)
        one_line_error(result, 1, str(kept), *fragments)
        no_leftovers(tmp_path, "x.h5")
        kept.write_bytes(original)

    _edited(kept, "sum_px", lambda v: v.__setitem__((5, 0, 0), v[5, 0, 0] * (1 + 1e-15) + 1e-300))
    refused("do not match the digest saved with them")
    _edited(kept, "sum_pxx", lambda v: v.__setitem__((0, 1, 2), np.nan))
    refused("'/sum_pxx'", "NaN")
    _edited(kept, "n", lambda v: v.__setitem__((3, 1), -1.0))
    refused("'/n'", ">= 0")
    with h5py.File(kept, "r+") as f:
        del f["t"]
        f["t"] = np.zeros(7, dtype=np.int64)
    refused("'/t'", "must have shape (120,)")
    kept.write_bytes(b"not HDF5" * 100)
    refused("not an HDF5 file")
    # intact again: it is used
    run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "b.h5")
    assert (tmp_path / "b.h5").read_bytes() == (tmp_path / "a.h5").read_bytes()


def test_the_output_cannot_be_the_statistics_part(data, tmp_path):
    for command in COMMANDS:
        one_line_error(run(*_args(data, command, "--checkpoint", tmp_path / "c.h5"),
                           "-o", tmp_path / "c.stats.h5", ok=False), 2,
                       "is where --checkpoint keeps its statistics part")
    assert not list(tmp_path.iterdir())


def test_checkpoint_help_tells_where_the_statistics_are_kept():
    from emkit.cli import cli

    def help_of(command):
        return next(p.help for p in cli.commands[command].params if "--checkpoint" in p.opts)

    for command in ("train-isv", "train-jfa", "train-ivector"):
        assert "STEM.stats.EXT" in help_of(command), command
        assert "U (16 C D + 8 C + 16) bytes" in help_of(command), command
        assert "--keep-statistics" in help_of(command), command
        keep = next(p for p in cli.commands[command].params if "--keep-statistics" in p.opts)
        assert keep.secondary_opts == ["--no-keep-statistics"] and keep.default is None
        assert "at most half of the free space of the checkpoint's folder" in keep.help
    assert "stats" not in help_of("train-ubm")
    assert not [p for p in cli.commands["train-ubm"].params if "--keep-statistics" in p.opts]


def test_a_cluster_run_resumes_from_the_kept_statistics_too(data, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from emkit.cli import _train_options

    monkeypatch.setattr(_train_options, "WORKER_PROCESSES", False)  # a quicker start
    d, ckpt = data, tmp_path / "c.h5"
    run(*_args(d, "isv", "--workers", 1), "-o", tmp_path / "plain.h5")
    with monkeypatch.context() as m:
        _kill_after_first_iteration(m)
        killed = run(*_args(d, "isv", "--workers", 1, "--checkpoint", ckpt), "-o",
                     tmp_path / "a.h5", ok=False)
    assert killed.exit_code == 1 and "_Killed" in killed.stderr, killed.output
    del killed  # (its traceback holds the cluster's objects)
    _no_e_step(monkeypatch)
    run(*_args(d, "isv", "--workers", 1, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()


def test_statistics_that_cannot_be_written_cost_a_warning_not_the_training(data, tmp_path,
                                                                           monkeypatch):
    import errno

    from emkit.experiment import _stats_file

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_stats_file, "write_statistics", disk_full)
    d, ckpt = data, tmp_path / "c.h5"
    done = run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert (f"emkit: warning: cannot keep the statistics in {tmp_path / 'c.stats.h5'} (No space "
            "left on device): a resumed run will compute them again") in done.stderr
    run(*_args(d, "isv"), "-o", tmp_path / "plain.h5")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()
    assert not (tmp_path / "c.stats.h5").exists()


# 120 utterances of the fixture, its UBM's 8 Gaussians and 12 features: U (16 C D + 8 C + 16)
STATS_BYTES = 120 * (16 * 8 * 12 + 8 * 8 + 16)


def _free_space(monkeypatch, folder, free):
    """shutil.disk_usage says ``folder`` (the checkpoint's, the only one it may be asked of) has
    ``free`` bytes free."""
    import os
    import shutil

    real = shutil.disk_usage

    def usage(path):
        assert os.path.samefile(path, folder), path
        return real(path)._replace(free=free)

    monkeypatch.setattr(shutil, "disk_usage", usage)


def _e_steps(monkeypatch) -> list:
    """The calls of the UBM's E-step (GMMMachine.transform) from now on."""
    from emkit import GMMMachine

    calls, transform = [], GMMMachine.transform

    def counted(self, *args, **kwargs):
        calls.append(1)
        return transform(self, *args, **kwargs)

    monkeypatch.setattr(GMMMachine, "transform", counted)
    return calls


def _afresh(folder):
    """Remove the checkpoint c.h5 (and train-ivector's back-end part), the kept statistics left."""
    for name in ("c.h5", "c.backend.h5"):
        (folder / name).unlink(missing_ok=True)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_statistics_are_kept_as_asked_or_when_they_fit_the_free_space(data, tmp_path,
                                                                      monkeypatch, command):
    # they were kept whatever their size (200 GB at 100,000 utterances, C=2048, D=60), without
    # being asked for, by every run given --checkpoint
    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    run(*_args(d, command), "-o", tmp_path / "plain.h5")
    plain = (tmp_path / "plain.h5").read_bytes()
    _free_space(monkeypatch, tmp_path, 2 * STATS_BYTES - 1)
    # by default: not kept when they take more than half of the free space, a warning
    done = run(*_args(d, command, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert done.stderr == (
        f"emkit: warning: not keeping the statistics in {kept}: they would take 193.9 kB and "
        f"{tmp_path} has 387.8 kB free (by default they are kept when they take at most half of "
        "it); a resumed run will compute them again (--keep-statistics keeps them anyway)\n")
    assert ckpt.is_file() and not kept.exists()
    assert (tmp_path / "a.h5").read_bytes() == plain
    # --keep-statistics: kept whatever the free space, no warning
    _afresh(tmp_path)
    _free_space(monkeypatch, tmp_path, 0)
    forced = run(*_args(d, command, "--keep-statistics", "--checkpoint", ckpt), "-o",
                 tmp_path / "b.h5")
    assert forced.stderr == "" and kept.is_file()
    assert (tmp_path / "b.h5").read_bytes() == plain
    # --no-keep-statistics: the kept ones are neither read (the E-step runs) nor written
    _afresh(tmp_path)
    kept_bytes = kept.read_bytes()
    calls = _e_steps(monkeypatch)
    run(*_args(d, command, "--no-keep-statistics", "--checkpoint", ckpt), "-o", tmp_path / "e.h5")
    assert calls and kept.read_bytes() == kept_bytes
    assert (tmp_path / "e.h5").read_bytes() == plain
    kept.write_bytes(b"not HDF5" * 100)  # (read, it would be an error)
    kept.chmod(0o444)  # (to be written, it would be refused before the training)
    run(*_args(d, command, "--no-keep-statistics", "--checkpoint", ckpt), "-o", tmp_path / "f.h5")
    assert kept.read_bytes() == b"not HDF5" * 100
    assert (tmp_path / "f.h5").read_bytes() == plain
    kept.unlink()
    _afresh(tmp_path)
    run(*_args(d, command, "--no-keep-statistics", "--checkpoint", ckpt), "-o", tmp_path / "g.h5")
    assert ckpt.is_file() and not kept.exists()
    assert (tmp_path / "g.h5").read_bytes() == plain


def test_by_default_statistics_that_take_at_most_half_the_free_space_are_kept(data, tmp_path,
                                                                              monkeypatch):
    d, ckpt, kept = data, tmp_path / "c.h5", tmp_path / "c.stats.h5"
    with monkeypatch.context() as m:
        _free_space(m, tmp_path, 2 * STATS_BYTES)
        done = run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert done.stderr == "" and kept.is_file()
    # the size the guard counts is the file's, HDF5's few kB of layout and attributes aside
    assert STATS_BYTES <= kept.stat().st_size <= STATS_BYTES + 16384
    # kept by an earlier run: read, whatever the free space now
    _free_space(monkeypatch, tmp_path, 0)
    _no_e_step(monkeypatch)
    again = run(*_args(d, "isv", "--checkpoint", ckpt), "-o", tmp_path / "b.h5")
    assert again.stderr == ""
    assert (tmp_path / "b.h5").read_bytes() == (tmp_path / "a.h5").read_bytes()


def test_keep_statistics_needs_a_checkpoint(data, tmp_path):
    for command in COMMANDS:
        one_line_error(run(*_args(data, command, "--keep-statistics"), "-o", tmp_path / "a.h5",
                           ok=False), 2, "--keep-statistics needs --checkpoint")
        run(*_args(data, command, "--no-keep-statistics"), "-o", tmp_path / "a.h5")
