"""Every file emkit writes for a user to keep (tests/support/writer_cases.py), when the write
fails midway: a full disk, Ctrl-C, a file size limit, a directory where no file can be made.

What a user must meet: an error naming the file and the cause, the previous content of every
target as it was, and no temporary file left in the directory.  Before: a full disk while an
HDF5 file was written crashed the process (SIGSEGV inside libhdf5, h5py issue 914), and a full
disk under a text or binary writer raised ``[Errno 28] No space left on device`` naming no file.
"""

import builtins
import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from writer_cases import FAIL_AFTER, WRITERS, FailingFile, fail_writes

OLD = b"previous content"


def _folder_with_old_targets(tmp_path, targets) -> Path:
    folder = tmp_path / "out"
    for name in targets:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(OLD)
    return folder


def _assert_left_as_it_was(folder, targets, directories=()):
    for name in targets:
        assert (folder / name).read_bytes() == OLD, name
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    kept = {str(Path(name)) for name in [*targets, *directories]}
    kept |= {str(Path(name).parent) for name in [*targets, *directories]}
    assert set(left) <= kept, left  # no temporary file


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_names_the_file_and_leaves_it_as_it_was(tmp_path, monkeypatch, writer):
    write, targets, modules = WRITERS[writer]
    folder = _folder_with_old_targets(tmp_path, targets)
    fail_writes(monkeypatch, modules, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(OSError) as info:
        write(folder)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename in [str(folder / name) for name in targets], str(info.value)
    assert str(info.value).startswith("[Errno 28] No space left on device: ")
    _assert_left_as_it_was(folder, targets)


@pytest.mark.parametrize("writer", WRITERS)
def test_ctrl_c_in_the_middle_of_a_write_leaves_the_file_as_it_was(tmp_path, monkeypatch, writer):
    write, targets, modules = WRITERS[writer]
    folder = _folder_with_old_targets(tmp_path, targets)
    fail_writes(monkeypatch, modules, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write(folder)
    _assert_left_as_it_was(folder, targets)


# the kernel's own failure of a write (a file size limit: EFBIG, the path of ENOSPC), every
# writer in one child process, which a crash ends
UNDER_A_SIZE_LIMIT = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from writer_cases import FAIL_AFTER, WRITERS, FailingFile, fail_writes
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    folder = Path(sys.argv[1])
    for writer, (write, targets, modules) in WRITERS.items():
        here = folder / writer.replace(" ", "_")
        for name in targets:
            (here / name).parent.mkdir(parents=True, exist_ok=True)
            (here / name).write_bytes(b"previous content")
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (%d, limit[1]))
        try:
            write(here)
            error = None
        except OSError as exc:
            error = [exc.errno, exc.filename, str(exc)]
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        print(json.dumps([writer, error]), flush=True)
    import numpy as np
    from emkit._backend._spill_files import write_partition
    spill = folder / "spill"
    resource.setrlimit(resource.RLIMIT_FSIZE, (%d, limit[1]))
    try:
        write_partition([np.ones(500)], str(spill), "emkit-spill-test", 0)
        error = None
    except OSError as exc:
        error = [exc.errno, exc.filename, str(exc)]
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    print(json.dumps(["spill file", error]), flush=True)
""" % (FAIL_AFTER, FAIL_AFTER))


@pytest.fixture(scope="module")
def under_a_size_limit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limited")
    support = str(Path(__file__).parents[1] / "support")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([support, *sys.path])}
    child = subprocess.run([sys.executable, "-c", UNDER_A_SIZE_LIMIT, str(folder)], env=env,
                           capture_output=True, text=True, timeout=300)
    results = dict(json.loads(line) for line in child.stdout.splitlines())
    return folder, results, child


@pytest.mark.parametrize("writer", WRITERS)
def test_a_write_the_kernel_refuses_is_an_error_not_a_crash(under_a_size_limit, writer):
    folder, results, child = under_a_size_limit
    assert writer in results, f"exit status {child.returncode}: {child.stderr[-2000:]}"
    _, targets, _ = WRITERS[writer]
    here = folder / writer.replace(" ", "_")
    code, filename, _ = results[writer]
    assert code == errno.EFBIG and filename in [str(here / name) for name in targets]
    _assert_left_as_it_was(here, targets)


def _checkpoint_fit(kind, X, checkpoint):
    from emkit import GMMMachine, KMeansMachine

    if kind == "gmm":
        return GMMMachine(3, update_variances=True, update_weights=True, max_fitting_steps=6,
                          convergence_threshold=None, checkpoint=checkpoint).fit(X)
    return KMeansMachine(3, max_iter=6, convergence_threshold=None, checkpoint=checkpoint).fit(X)


@pytest.mark.parametrize("kind", ["gmm", "kmeans"])
def test_a_checkpoint_write_that_fails_keeps_the_previous_one_and_resuming_ends_as_one_run(
        tmp_path, monkeypatch, kind):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 2)) + shift for shift in (0, 4, 8)])
    checkpoint = tmp_path / "run.ckpt.h5"
    opened, before_the_failure = [], []

    def open_failing_the_fourth(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        opened.append(path)
        if len(opened) < 4:
            return file
        before_the_failure.append(checkpoint.read_bytes())
        return FailingFile(file, [FAIL_AFTER], OSError(errno.ENOSPC, "No space left on device"))

    with monkeypatch.context() as patch:
        patch.setattr("emkit.io._h5_new_file.open", open_failing_the_fourth, raising=False)
        with pytest.raises(OSError, match=r"No space left on device: .*run\.ckpt\.h5'$"):
            _checkpoint_fit(kind, X, checkpoint)
    assert checkpoint.read_bytes() == before_the_failure[0]  # the third write, whole
    assert os.listdir(tmp_path) == ["run.ckpt.h5"]
    resumed, straight = _checkpoint_fit(kind, X, checkpoint), _checkpoint_fit(kind, X, None)
    names = ("means", "variances", "weights") if kind == "gmm" else ("centroids_",)
    for name in names:
        np.testing.assert_allclose(getattr(resumed, name), getattr(straight, name), rtol=0, atol=1e-10)
    assert resumed.n_iter_ == straight.n_iter_ == 6


@pytest.mark.parametrize("writer", WRITERS)
def test_a_directory_that_refuses_new_files_is_named_by_the_target(tmp_path, monkeypatch, writer):
    """(root writes anywhere: the refusal is simulated.)  Before: the error named the temporary
    file, '.emkit-<random>.<key>.<host>.<pid>.tmp', which the user never asked for."""
    write, targets, _ = WRITERS[writer]
    folder = _folder_with_old_targets(tmp_path, targets)
    real_open = os.open

    def refuse_temporaries(path, *args, **kwargs):
        if os.path.basename(path).startswith(".emkit-"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_temporaries)
    with pytest.raises(PermissionError) as info:
        write(folder)
    assert info.value.filename in [str(folder / name) for name in targets]
    assert str(info.value) == f"[Errno 13] Permission denied: {info.value.filename!r}"
    monkeypatch.undo()
    _assert_left_as_it_was(folder, targets)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_target_that_is_a_directory_or_in_none_is_refused_by_name(tmp_path, writer):
    """A guard (passes on the old code too)."""
    write, targets, _ = WRITERS[writer]
    folder = _folder_with_old_targets(tmp_path, targets[1:])
    (folder / targets[0]).mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=f"cannot write '{folder / targets[0]}': it is a directory"):
        write(folder)
    assert os.listdir(folder / targets[0]) == []
    _assert_left_as_it_was(folder, targets[1:], directories=targets[:1])
    if "/" not in targets[0]:  # (a folder of .npy files is made when missing)
        with pytest.raises(FileNotFoundError, match=f"directory '{tmp_path / 'missing'}' does not exist"):
            write(tmp_path / "missing")


def test_a_spill_file_the_kernel_refuses_is_an_error_naming_it_and_is_removed(under_a_size_limit):
    """dask_cache="disk": a worker's spill folder on a full disk crashed the process (SIGSEGV in
    libhdf5) where the write failed."""
    folder, results, child = under_a_size_limit
    assert "spill file" in results, f"exit status {child.returncode}: {child.stderr[-2000:]}"
    code, filename, _ = results["spill file"]
    assert code == errno.EFBIG and os.path.basename(filename).startswith("part-000000-")
    assert Path(filename).is_relative_to(folder / "spill") and not os.path.exists(filename)
    assert [p for p in (folder / "spill").rglob("*") if p.is_file()] == []


def test_an_input_error_inside_a_write_is_not_put_on_the_target(tmp_path):
    """Only the errors a write alone meets (ENOSPC, EDQUOT, EFBIG) are named after the file
    written: an I/O error (EIO) may be a read of an input (the audio of an archive being
    written), which the file written must not be blamed for."""
    from emkit.io.atomic import atomic_write

    failure = OSError(errno.EIO, os.strerror(errno.EIO))
    with pytest.raises(OSError) as info:
        with atomic_write(tmp_path / "scores.txt") as f:
            f.write("x")
            raise failure
    assert info.value is failure and os.listdir(tmp_path) == []


def test_a_write_cut_short_by_a_full_disk_is_reported_whole_and_ends_where_it_would_have(tmp_path):
    """What libhdf5 is told of the write that fails halfway: done, and the position after it
    (the position was the end plus the bytes written before the failure)."""
    from emkit.io._h5_new_file import _WriteOnceFailed

    (tmp_path / "f").touch()
    target = _WriteOnceFailed(str(tmp_path / "f"), "r+b")
    target._file = FailingFile(target._file, [5], OSError(errno.ENOSPC, "No space left on device"))
    target.seek(100)
    assert target.write(b"x" * 10) == 10 and target.tell() == 110
    assert target.write(b"y" * 3) == 3 and target.tell() == 113
    assert target.failure.errno == errno.ENOSPC
    target.close()
    assert (tmp_path / "f").read_bytes() == b"\0" * 100 + b"x" * 5


@pytest.mark.parametrize("writer", WRITERS)
def test_a_target_that_is_a_link_is_written_through_and_kept_a_link(tmp_path, writer):
    """As ``open`` does: the file linked to is replaced (whole, atomically), the link kept.  A
    guard (passes on the old code too)."""
    write, targets, _ = WRITERS[writer]
    elsewhere = _folder_with_old_targets(tmp_path / "elsewhere", targets)
    folder = tmp_path / "out"
    for name in targets:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(elsewhere / name)
    write(folder)
    for name in targets:
        assert (folder / name).is_symlink() and (elsewhere / name).read_bytes() != OLD
    assert not [p for p in tmp_path.rglob(".emkit-*")]


def test_a_long_target_is_named_by_its_tail_in_an_error(tmp_path):
    """A path of 10^5 characters (ENAMETOOLONG at the end of the write) was echoed whole: a
    100 kB message.  The target is named by its last 80 characters, a short one as before."""
    from emkit.io.atomic import atomic_path, disk_error

    with pytest.raises(OSError) as info:
        with atomic_path(tmp_path / ("a" * 100_000)) as tmp:
            Path(tmp).write_text("x")
    assert info.value.errno == errno.ENAMETOOLONG and len(str(info.value)) < 200
    assert str(info.value).endswith(": '..." + "a" * 80 + "'") and os.listdir(tmp_path) == []
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(disk_error(full, "model.h5")) == "[Errno 28] No space left on device: 'model.h5'"
    assert disk_error(full, "b" * 100_000).filename == "..." + "b" * 80


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space"), KeyboardInterrupt()])
def test_a_streamed_spill_file_stops_deriving_pieces_once_a_write_failed(tmp_path, monkeypatch,
                                                                          failure):
    """write_derived's streamed mode: once a write of the spill file failed (a full disk, or a
    Ctrl-C caught inside the write), no further piece is derived (before: all 20 were computed,
    their writes discarded, and only then the error raised); the file is removed."""
    from emkit._backend import _spill_files

    base, token = str(tmp_path), "emkit-spill-test"
    source = _spill_files.write_partition([np.arange(3.0)], base, token, 0)[0]
    asked = []

    def pieces(items):
        for k in range(20):
            asked.append(k)
            yield [np.full(50_000, float(k))]  # 400 kB: written through, not cached

    fail_writes(monkeypatch, ["emkit.io._h5_new_file"], failure)
    with pytest.raises(type(failure)) as info:
        _spill_files.write_derived(base, token, 1, pieces, [source], "streamed", ())
    if isinstance(failure, OSError):
        assert info.value.errno == errno.ENOSPC and "part-000001-" in info.value.filename
    assert [p.name for p in tmp_path.rglob("part-000001-*")] == [] and len(asked) <= 2, asked


def test_a_statistics_file_stops_stacking_blocks_once_a_write_failed(tmp_path, monkeypatch):
    """write_statistics: once a write failed, no further block of statistics is stacked and
    written (before: all 10 were); the error names the file, which is not made."""
    from emkit import GMMStats
    from emkit.experiment import _stats_file

    stats = []
    for _ in range(20):
        one = GMMStats(64, 100)
        one.init_fields(0.0, 1, np.ones(64), np.ones((64, 100)), np.ones((64, 100)))
        stats.append(one)
    monkeypatch.setattr(_stats_file, "_BLOCK_BYTES", 2 * (16 * 64 * 100 + 8 * 64))  # 2 rows
    stacked, stack = [], GMMStats.stack
    monkeypatch.setattr(GMMStats, "stack",
                        lambda items, **kw: stacked.append(len(items)) or stack(items, **kw))
    fail_writes(monkeypatch, ["emkit.io._h5_new_file"], OSError(errno.ENOSPC, "No space"))
    with pytest.raises(OSError) as info:
        _stats_file.write_statistics(tmp_path / "s.h5", "key", stats)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "s.h5")
    assert os.listdir(tmp_path) == [] and len(stacked) <= 2, stacked
