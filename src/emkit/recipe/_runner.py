"""Steps and the runner that skips a step whose inputs and parameters are unchanged (as make).

A step declares its ``inputs`` (files it reads), ``params`` (JSON values that decide its
result) and ``outputs`` (files it writes).  After a successful run the runner stores a stamp,
``<work_dir>/.stamps/<step>.json``: the SHA-256 of every input and output and the parameters.
Next time the step is skipped when the stamp matches: same parameters, same input contents
(whatever their modification times), outputs still there with the contents it wrote.  A step
whose output is byte-identical to the previous run's leaves its dependants skipped too.  The
stamp is written only after every output is complete, so an interrupted step runs again.  A
stamp is read as an untrusted file (:func:`~emkit.io.small_files.read_json`): one that cannot be
used (not JSON, larger than a stamp of the step can be, a named pipe or a link in its place)
means the step is not done, and the rerun replaces it.
Two runs on one work directory at once would overwrite each other's outputs: the runner holds
an exclusive lock on ``<work_dir>/.stamps/lock`` while it runs (released by the system when the
process ends, so a killed run leaves no stale lock; anything but a regular file there is
refused).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ..io.atomic import atomic_write
from ..io.small_files import read_json
from ..io._message_text import file_kind
from ..io.untrusted import FeatureError, open_regular

__all__ = ["Step", "FunctionStep", "StepResult", "Runner", "WorkDirBusy"]


class WorkDirBusy(RuntimeError):
    """Another process is running a recipe in the same work directory."""


@contextlib.contextmanager
def _exclusive(lock_path: Path, work_dir: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; runs are not guarded
        yield
        return
    fd = _open_lock(lock_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkDirBusy(f"work_dir {os.fspath(work_dir)!r} is in use by another emkit run "
                              f"(lock {os.fspath(lock_path)!r}); wait for it to finish or use "
                              "another work_dir") from None
        yield
    finally:
        os.close(fd)


#: The lock is opened without following a link, blocking (a named pipe) or becoming the
#: process's terminal (a tty), created if missing.
_LOCK_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))


def _open_lock(lock_path: Path) -> int:
    """A descriptor of the regular file ``lock_path`` (created if missing).  Anything else there
    is refused before it is opened (opening a device can act: a tape rewinds), and again by
    ``fstat`` once open (one put there in between), naming the lock."""
    with contextlib.suppress(FileNotFoundError):
        _refuse_unless_regular(os.lstat(lock_path).st_mode, lock_path)
    try:
        fd = os.open(lock_path, _LOCK_FLAGS, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: a symbolic link
            _refuse_unless_regular(stat.S_IFLNK, lock_path)
        raise
    try:
        _refuse_unless_regular(os.fstat(fd).st_mode, lock_path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse_unless_regular(mode: int, lock_path: Path) -> None:
    if not stat.S_ISREG(mode):
        raise FeatureError(f"the run's lock {os.fspath(lock_path)!r} is {file_kind(mode)}, not "
                           "the regular file emkit makes: remove it and run again")


@runtime_checkable
class Step(Protocol):
    """One unit of work of a recipe."""

    name: str

    def inputs(self) -> list:
        """The files read (known once the steps before it have run).

        Returns
        -------
        list of str or path-like
        """

    def params(self) -> dict:
        """What decides the outputs besides the inputs' contents.

        Returns
        -------
        dict
            JSON-serialisable values.
        """

    def outputs(self) -> list:
        """The files written.

        Returns
        -------
        list of str or path-like
        """

    def run(self, context) -> str:
        """Write every output.

        Parameters
        ----------
        context : Context
            The recipe and the run's options.

        Returns
        -------
        str
            A one-line summary.
        """


@dataclass
class FunctionStep:
    """A :class:`Step` from plain callables (what the step kinds of the registry build).

    Parameters
    ----------
    name : str
        The step's name (its stamp file's name).
    run_fn : callable
        ``run_fn(context) -> str``: writes the outputs, returns a one-line summary.
    input_fn : callable, default list
        ``input_fn() -> paths`` of the files read, called when the step is reached.
    param_values : dict
        JSON-serialisable values that decide the outputs besides the inputs.
    output_paths : list
        The files written.
    """

    name: str
    run_fn: Callable
    input_fn: Callable = list
    param_values: dict = field(default_factory=dict)
    output_paths: list = field(default_factory=list)

    def inputs(self) -> list:
        """``input_fn()``, as a list.

        Returns
        -------
        list of str or path-like
        """
        return list(self.input_fn())

    def params(self) -> dict:
        """``param_values``.

        Returns
        -------
        dict
        """
        return self.param_values

    def outputs(self) -> list:
        """``output_paths``, as a new list.

        Returns
        -------
        list of str or path-like
        """
        return list(self.output_paths)

    def run(self, context) -> str:
        """``run_fn(context)``.

        Parameters
        ----------
        context : Context

        Returns
        -------
        str
            The step's one-line summary.
        """
        return self.run_fn(context)


@dataclass
class StepResult:
    """What became of one step of a run.

    Parameters
    ----------
    name : str
        The step's name.
    status : {"run", "skipped"}
    seconds : float
        Time it took (a skipped step: checking its stamp).
    summary : str
        The step's one-line summary ("" when skipped).
    """

    name: str
    status: str  # "run" or "skipped"
    seconds: float
    summary: str = ""


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _remove_stamp(path: Path, step: str) -> None:
    """Remove the stamp (a link itself, never what it points to), if any."""
    try:
        path.unlink(missing_ok=True)
    except IsADirectoryError:
        raise IsADirectoryError(f"step {step}: its stamp {os.fspath(path)!r} is a directory, not "
                                "a file the runner wrote: remove it and run again") from None


#: The room a stamp has besides its parameters and paths (its step name, keys and punctuation).
_STAMP_BYTES = 1 << 20


def _stamp_limit(params: str, inputs: dict, outputs: list) -> int:
    """The most bytes a stamp of these parameters, inputs and outputs can take, with room to
    spare: a larger file is not read (a stamp lists every input: it grows with the audio files
    of a features step, so no fixed limit fits).  A JSON string is at most 12 bytes a character
    (``\\ud83d\\ude00``), a digest 64, and an entry's punctuation and indent far less than 64."""
    paths = (*inputs, *outputs)
    return _STAMP_BYTES + 12 * (len(params) + sum(map(len, paths))) + 128 * len(paths)


class Runner:
    """Runs steps in order, skipping the up-to-date ones, as make does (content-hash stamps).

    Parameters
    ----------
    work_dir : str or path-like
        Where the stamps (``.stamps/``) and the lock go.
    force : bool, default False
        Run every step, up to date or not.
    echo : callable, optional
        ``echo(text)`` for each line of progress ("[run] ...", "[skip] ..."); None: silent.
    """

    def __init__(self, work_dir, *, force: bool = False, echo: Callable | None = None):
        self.work_dir = Path(work_dir)
        self.stamps = self.work_dir / ".stamps"
        self.force = force
        self.echo = echo or (lambda text: None)
        self._hashes = {}  # (path, size, mtime_ns) -> sha256, within one run

    def digest(self, path) -> str:
        """SHA-256 of the file's contents, computed once per run for a size and time.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        str
            Hexadecimal digest.
        """
        path = os.fspath(path)
        with open_regular(path) as f:  # a named pipe put in the file's place would block open
            st = os.fstat(f.fileno())
            key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
            if key not in self._hashes:
                h = hashlib.sha256()
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
                self._hashes[key] = h.hexdigest()
        return self._hashes[key]

    def _digests(self, paths, step: str, what: str) -> dict:
        out = {}
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"step {step}: {what} {os.fspath(p)!r} does not exist")
            out[os.fspath(p)] = self.digest(p)
        return out

    def _stamp_path(self, step) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in step.name)
        return self.stamps / f"{safe}.json"

    def up_to_date(self, step, inputs: dict) -> bool:
        """Whether the step's stamp matches its parameters, inputs and outputs.

        Parameters
        ----------
        step : Step
        inputs : dict
            ``{path: digest}`` of its inputs now.

        Returns
        -------
        bool
        """
        params = _canonical(step.params())
        outputs = [os.fspath(p) for p in step.outputs()]
        try:  # (never a link: a stamp is a file the runner wrote itself)
            stamp = read_json(self._stamp_path(step), _stamp_limit(params, inputs, outputs),
                              "step stamp", follow_links=False)
        except (OSError, ValueError):  # none, not a regular file, too large, not JSON: not done
            return False
        if not isinstance(stamp, dict) or stamp.get("params") != params \
                or stamp.get("inputs") != inputs:
            return False
        stamped = stamp.get("outputs")
        if not isinstance(stamped, dict) or sorted(stamped) != sorted(outputs):
            return False
        return all(os.path.isfile(p) and self.digest(p) == stamped[p] for p in outputs)

    def run(self, steps, context) -> list:
        """Run (or skip) each step in order.

        Parameters
        ----------
        steps : sequence of Step
        context : Context
            Passed to each step's ``run``.

        Returns
        -------
        list of StepResult
            One per step.

        Raises
        ------
        WorkDirBusy
            Another run holds the work directory.
        FileNotFoundError
            A step's input, or an output it did not write, is missing.
        """
        self.stamps.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.stamps / "lock", self.work_dir):
            return self._run(steps, context)

    def _run(self, steps, context) -> list:
        results = []
        for step in steps:
            start = time.perf_counter()
            inputs = self._digests(step.inputs(), step.name, "input")
            if not self.force and self.up_to_date(step, inputs):
                result = StepResult(step.name, "skipped", time.perf_counter() - start)
                self.echo(f"[skip] {step.name} (up to date)")
            else:
                stamp = self._stamp_path(step)
                _remove_stamp(stamp, step.name)  # a failure below leaves the step out of date
                for p in step.outputs():
                    Path(p).parent.mkdir(parents=True, exist_ok=True)
                self.echo(f"[run]  {step.name}")
                summary = step.run(context) or ""
                outputs = self._digests(step.outputs(), step.name, "output")
                with atomic_write(stamp) as f:
                    json.dump({"step": step.name, "params": _canonical(step.params()),
                               "inputs": inputs, "outputs": outputs}, f, indent=1)
                result = StepResult(step.name, "run", time.perf_counter() - start, summary)
                self.echo(f"       {summary} ({result.seconds:.1f} s)")
            results.append(result)
        return results
