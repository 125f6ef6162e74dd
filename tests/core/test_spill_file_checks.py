"""A spill file is read back only if it is the one emkit wrote: a regular file of this user's in
its private folder, opened once without following a link or blocking; anything put at its path
(a named pipe, a link to another run's file, a folder) is refused naming it, never read."""

import os
import stat

import numpy as np
import pytest

from emkit._backend import _spill_files

#: What a refusal raises: emkit._backend._spill_open.SpillFileError, an OSError (matched by its
#: message, so that on code without that module the test fails on the behaviour, not an import)
SpillFileError = OSError


def _spilled(tmp_path, items, token="emkit-spill-test", index=0):
    return _spill_files.write_partition(items, str(tmp_path), token, index)[0]


def _replace(path, by):
    os.unlink(path)
    by(path)


def test_a_spill_file_round_trips(tmp_path):
    path = _spilled(tmp_path, [np.arange(3.0)])
    assert np.array_equal(_spill_files.read_partitions(path)[0], np.arange(3.0))  # a guard


@pytest.mark.parametrize("kind, message", [
    ("fifo", "is a named pipe, not the regular file emkit wrote"),
    ("folder", "is a directory, not the regular file emkit wrote"),
    ("link", "is a symbolic link, not the regular file emkit wrote")])
def test_a_spill_file_replaced_is_refused_naming_it(tmp_path, no_hang, kind, message):
    path = _spilled(tmp_path, [np.arange(3.0)])
    other = _spilled(tmp_path, [np.arange(5.0)], token="emkit-spill-other-run")
    _replace(path, {"fifo": os.mkfifo, "folder": os.mkdir,
                    "link": lambda p: os.symlink(other, p)}[kind])
    # before: the link was read (another run's items); a pipe or a folder was "missing: set
    # spill_directory to a directory that every worker shares"
    with pytest.raises(SpillFileError, match=message) as info:
        _spill_files.read_partitions(path)
    assert repr(path) in str(info.value)
    with pytest.raises(SpillFileError, match=message):
        list(_spill_files.SpilledItems(path))


def test_a_spill_file_in_a_folder_others_can_write_is_refused(tmp_path):
    path = _spilled(tmp_path, [np.arange(3.0)])
    os.chmod(os.path.dirname(path), 0o777)  # anyone could have put it there
    with pytest.raises(SpillFileError, match=r"its folder can be written by other users "
                                             r"\(mode 777; emkit makes it 700\)"):
        _spill_files.read_partitions(path)


def test_a_spill_folder_that_is_a_link_is_refused(tmp_path):
    path = _spilled(tmp_path, [np.arange(3.0)])
    folder = os.path.dirname(path)
    os.rename(folder, folder + ".moved")
    os.symlink(folder + ".moved", folder)  # (another run's, another user's: wherever it points)
    with pytest.raises(SpillFileError, match="its folder cannot be opened as emkit's"):
        _spill_files.read_partitions(path)


def test_a_spill_file_of_another_user_is_refused(tmp_path, monkeypatch):
    path = _spilled(tmp_path, [np.arange(3.0)])
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)  # as if written by user me
    with pytest.raises(SpillFileError, match=f"its folder belongs to user {me}, not to this one "
                                             f"\\({me + 1}\\); emkit reads back only the spill "
                                             "files it wrote itself"):
        _spill_files.read_partitions(path)


def test_a_missing_spill_folder_says_what_to_configure(tmp_path):
    """A worker on another host without a shared spill directory: not even the folder exists."""
    path = _spilled(tmp_path, [np.arange(3.0)])
    folder = os.path.dirname(path)
    os.rename(folder, folder + ".elsewhere")
    with pytest.raises(FileNotFoundError, match=r"spill_directory=.*shares"):
        _spill_files.read_partitions(path)
    assert stat.S_IMODE(os.stat(folder + ".elsewhere").st_mode) == 0o700


def test_a_spill_file_path_already_taken_is_refused_and_the_file_there_kept(tmp_path):
    """A spill file is made exclusively: the file already at its path (a name collision) raises
    FileExistsError and is left as it was (it was removed by the clean-up of a failed write)."""
    taken = tmp_path / "taken.h5"
    taken.write_bytes(b"another file")
    with pytest.raises(FileExistsError):
        with _spill_files._spill_file(str(taken)):
            pass
    assert taken.read_bytes() == b"another file"
    made = tmp_path / "new.h5"
    with _spill_files._spill_file(str(made)) as writing:
        writing.file.attrs["n_items"] = 0
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600
