"""Start-up of ``import emkit`` and of the ``emkit`` command (lazy imports), and Ctrl-C.

Behaviour, not time: which heavy modules a fresh interpreter has loaded, and the exit status and
stderr of a process interrupted with SIGINT at different moments.
"""

import contextlib
import functools
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

HEAVY = ("numpy", "scipy", "sklearn", "dask", "matplotlib", "h5py")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def python(code, *args, timeout=60):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_import_emkit_loads_no_heavy_module_and_every_name_still_works():
    proc = python(f"""
        import sys
        import emkit
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        assert set(emkit.__all__) <= set(dir(emkit))
        from emkit import GMMMachine, ISVMachine, PLDA, linear_scoring, metrics, datasets
        from emkit import *  # noqa
        import emkit.experiment  # binds the linear_scoring submodule to the package ...
        assert callable(emkit.linear_scoring) and emkit.linear_scoring is linear_scoring
        assert emkit.GMMMachine is GMMMachine and emkit.metrics.eer is metrics.eer
        try:
            emkit.no_such_name
        except AttributeError as exc:
            print("AttributeError", exc)
        """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "AttributeError module 'emkit' has no attribute 'no_such_name'"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["features", "--help"],
                                  ["train-isv", "--help"], ["evaluate", "--help"]])
def test_version_and_help_load_no_heavy_module(args):
    proc = python(f"""
        import sys
        from emkit.cli import main
        try:
            main({args!r})
        except SystemExit as exc:
            code = exc.code
        print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"


def test_python_dash_m_emkit_is_the_command_and_loads_no_heavy_module():
    proc = subprocess.run([sys.executable, "-m", "emkit", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: emkit [OPTIONS] COMMAND [ARGS]...")
    proc = python(f"""
        import runpy, sys
        sys.argv = ["emkit", "train-ubm", "--help"]
        try:
            runpy.run_module("emkit", run_name="__main__")
        except SystemExit as exc:
            print(exc.code, sorted(m for m in {HEAVY!r} if m in sys.modules))
        """)
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stderr


# ---------------------------------------------------------------------------------------------
# Ctrl-C: status 130, one line on stderr, no traceback, no output file


def _assert_interrupted(proc_returncode, stderr, out_dir):
    assert proc_returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "emkit: interrupted", stderr
    assert not [n for n in os.listdir(out_dir) if n.endswith(".h5") or ".emkit-" in n]


def _signal_during_training(tmp_path, sig, *more):
    """Exit status and stderr of ``emkit train-ubm`` sent ``sig`` once EM has started."""
    feats = tmp_path / "feats.npy"
    np.save(feats, np.random.default_rng(0).normal(size=(4000, 12)))
    code = ("import sys; from emkit.cli import main; main(sys.argv[1:])")
    with subprocess.Popen([sys.executable, "-c", code, "-v", "train-ubm", str(feats), "-n", "8",
                           "--iterations", "100000", "--threshold", "0", "--no-progress",
                           "-o", str(tmp_path / "ubm.h5"), *map(str, more)],
                          stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        try:
            seen = ""
            while "GMM ML: iteration 2" not in seen:  # EM has started (k-means is done)
                line = proc.stderr.readline()
                assert line, seen
                seen += line
            proc.send_signal(sig)
            _, rest = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode, seen + rest


def test_ctrl_c_during_training(tmp_path):
    _assert_interrupted(*_signal_during_training(tmp_path, signal.SIGINT), tmp_path)


def test_sigterm_stops_training_as_ctrl_c_does_and_the_checkpoint_resumes(tmp_path):
    # batch schedulers (SLURM, SGE) send SIGTERM: it killed the process, leaving temporary files
    status, stderr = _signal_during_training(tmp_path, signal.SIGTERM, "--checkpoint", tmp_path / "ck.h5")
    assert status == 143, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "emkit: terminated", stderr
    assert sorted(os.listdir(tmp_path)) == ["ck.h5", "ck.kmeans.h5", "feats.npy"]  # no temporary file
    status, stderr = _signal_during_training(tmp_path, signal.SIGTERM, "--checkpoint", tmp_path / "ck.h5")
    assert status == 143 and "resuming from checkpoint" in stderr, stderr


# A meta-path hook that sends SIGINT to the process when a given module starts importing: a
# deterministic "Ctrl-C during the imports".
HOOK = """
import os, signal, sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
"""


def test_ctrl_c_while_a_command_imports_its_modules(tmp_path):
    feats = tmp_path / "feats.npy"
    np.save(feats, np.ones((10, 2)))
    code = HOOK.format(module="numpy") + "from emkit.cli import main; main(sys.argv[1:])"
    proc = python(code, "train-ubm", feats, "-n", 2, "-o", tmp_path / "ubm.h5")
    _assert_interrupted(proc.returncode, proc.stderr, tmp_path)


def test_ctrl_c_while_the_console_script_starts(tmp_path):
    # as the installed script: argv[0] is "emkit"; the signal arrives while emkit.cli loads click
    code = ("import sys; sys.argv[0] = 'emkit'\n" + HOOK.format(module="click")
            + "from emkit.cli import main\nsys.exit(main())")
    proc = python(code, "--version")
    _assert_interrupted(proc.returncode, proc.stderr, tmp_path)


def _group_processes(pgid) -> list:
    """The live (not zombie) processes of process group ``pgid``."""
    psutil = pytest.importorskip("psutil")
    left = []
    for p in psutil.process_iter(["status"]):
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(p.pid)
    return left


def _interrupt_group(script, args, wait_for, signals=1):
    """Run ``emkit ARGS`` in a process group of its own, send SIGINT to the group (as a
    terminal does for Ctrl-C) once a stderr line contains ``wait_for`` (``signals`` times, 0.2 s
    apart); its exit status and stderr once it has exited (within 30 s)."""
    with subprocess.Popen([sys.executable, script, *map(str, args)], text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            seen = line = ""
            while wait_for not in line:
                line = proc.stderr.readline()
                assert line, seen
                seen += line
            for _ in range(signals):
                os.killpg(proc.pid, signal.SIGINT)
                time.sleep(0.2)
            _, rest = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    deadline = time.monotonic() + 10  # multiprocessing's resource tracker: gone on its own
    while _group_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_processes(proc.pid), "processes left"
    return proc.returncode, seen + rest


@pytest.mark.slow
def test_ctrl_c_of_a_local_cluster_run_and_its_resumption(tmp_path):
    # Ctrl-C reaches every process of the group: the worker processes must leave it to the
    # command, which closes the cluster and exits (it hanged, or printed tracebacks)
    pytest.importorskip("distributed")
    script = tmp_path / "emkit"  # as the console script (the worker processes import it too)
    script.write_text("import sys\nfrom emkit.cli import main\n"
                      "if __name__ == '__main__':\n    sys.exit(main())\n")
    feats = tmp_path / "feats.npy"
    rng = np.random.default_rng(0)  # 8 clusters: k-means converges (no warning on stderr)
    np.save(feats, rng.normal(scale=10, size=(8, 12))[rng.integers(8, size=4000)]
            + rng.normal(size=(4000, 12)))
    out = tmp_path / "out"
    out.mkdir()
    args = ("-v", "train-ubm", feats, "-n", 8, "--iterations", 100000, "--threshold", 0,
            "--no-progress", "--workers", 2, "--checkpoint", tmp_path / "ck.h5",
            "-o", out / "ubm.h5")
    status, stderr = _interrupt_group(script, args, "GMM ML: iteration 2")
    _assert_interrupted(status, stderr, out)
    assert [line for line in stderr.splitlines() if not line.startswith("emkit: ")] == [""]
    assert stderr.splitlines().count("emkit: interrupted") == 1, stderr
    # the checkpoint resumes; Ctrl-C twice (the second one while the cluster closes)
    status, stderr = _interrupt_group(script, args, "GMM ML: iteration", signals=2)
    assert "resuming from checkpoint" in stderr, stderr
    _assert_interrupted(status, stderr, out)
    assert [line for line in stderr.splitlines() if not line.startswith("emkit: ")] == [""]
    assert stderr.splitlines().count("emkit: interrupted") == 1, stderr


class _DelRaisesSigint:
    def __init__(self, seen):
        self.seen = seen

    def __del__(self):
        signal.raise_signal(signal.SIGINT)
        self.seen.append("__del__ finished")


@pytest.mark.parametrize("where", ["gc callback", "__del__"])
def test_ctrl_c_in_a_gc_callback_or_del_is_raised_after_it(where):
    # Python ignores an exception raised there ("Exception ignored in ..."): the Ctrl-C of a
    # cluster run was lost (and distributed's gc callback broken), the run went on.
    # The signal is sent again 50 ms later, when a loaded machine may still be in the collection
    # (0.7 s of wall time with 3 busy processes on 2 cores), running the weakref callback of some
    # garbage, where Python ignores it too: the test installs the unraisable hook that the command
    # line installs (which sends it once more), and waits as long as a loaded machine needs.
    from emkit.cli._train_options import _Interrupts

    interrupts = _Interrupts()
    interrupts.starting = False
    seen = []

    def callback(phase, info):
        if not seen:
            signal.raise_signal(signal.SIGINT)
        seen.append(phase)

    previous = signal.signal(signal.SIGINT, interrupts)
    unraisablehook = sys.unraisablehook
    sys.unraisablehook = functools.partial(interrupts.unraisable, unraisablehook)
    try:
        with pytest.raises(KeyboardInterrupt):
            if where == "gc callback":
                gc.collect()  # no garbage of earlier tests: their weakref callbacks would run first
                gc.callbacks.append(callback)
                try:
                    gc.collect()
                finally:
                    gc.callbacks.remove(callback)
            else:
                _DelRaisesSigint(seen)
            time.sleep(60)  # sent again a moment later: ends the sleep (60 s: a hang's bound)
    finally:
        sys.unraisablehook = unraisablehook
        signal.signal(signal.SIGINT, previous)
        interrupts.restore_logs()
    assert seen == (["start", "stop"] if where == "gc callback" else ["__del__ finished"])


def test_sigterm_in_a_weakref_callback_is_sent_again_as_sigterm():
    """Terminated raised in a weakref callback (h5py's WeakValueDictionary) was ignored by Python
    and the training went on to exit 0; with --workers it came back as Ctrl-C (exit 130)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import functools, signal, sys, time, weakref
        from emkit.cli import _signals
        sys.unraisablehook = functools.partial(_signals.unraisable_hook, sys.unraisablehook)
        signal.signal(signal.SIGTERM, _signals.terminate)
        class Thing:
            pass
        thing = Thing()
        ref = weakref.ref(thing, lambda r: signal.raise_signal(signal.SIGTERM))
        del thing  # the callback raises Terminated: Python ignores it ("Exception ignored in")
        try:
            time.sleep(5)
        except _signals.Terminated:
            print("terminated after the callback")
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "terminated after the callback", proc.stderr


def test_an_import_failed_by_a_signal_is_an_interruption():
    from emkit.cli._signals import Terminated, interrupted_by

    try:
        try:
            raise Terminated
        except Terminated:
            raise ImportError("initialization failed")  # what numpy's import reports
    except ImportError as exc:
        assert isinstance(interrupted_by(exc), Terminated)
    assert interrupted_by(ValueError("x")) is None


def test_sigterm_exits_even_with_a_worker_thread_stuck_on_a_lock(tmp_path):
    """Python's exit joins every non-daemon thread: one left waiting on a lock the signal cut
    short hung the terminated process for ever, with SIGTERM and Ctrl-C ignored (1 run in 50)."""
    feats = tmp_path / "feats.npy"
    np.save(feats, np.ones((10, 2)))
    code = ("import threading; threading.Thread(target=threading.Event().wait).start()\n"
            + HOOK.replace("signal.SIGINT", "signal.SIGTERM").format(module="numpy")
            + "from emkit.cli import main; main(sys.argv[1:])")
    proc = python(code, "train-ubm", feats, "-n", 2, "-o", tmp_path / "ubm.h5", timeout=60)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "emkit: terminated", proc.stderr


# A signal delivered while Python exits after the command, deterministically: the process sends
# it to itself from the __del__ of an object of __main__, which Python collects as it tears the
# modules down (after it has restored the signals' default actions), or from an atexit callback
# that runs before emkit's.
AFTER_THE_COMMAND = """
import atexit, os, signal, sys
from emkit.cli import main
WHEN, SIG = sys.argv[1], getattr(signal, sys.argv[2])
def send():
    os.kill(os.getpid(), SIG)
class SendWhenCollected:
    def __del__(self):
        send()
if WHEN == "teardown":
    keep = SendWhenCollected()
try:
    main(sys.argv[3:])
finally:
    if WHEN == "atexit":
        atexit.register(send)  # registered last: runs first
"""


@pytest.mark.parametrize("when, sig, fails", [("teardown", "SIGTERM", False),
                                              ("teardown", "SIGINT", False),
                                              ("teardown", "SIGTERM", True),
                                              ("atexit", "SIGTERM", False)])
def test_a_signal_while_python_exits_after_the_command_keeps_its_status(tmp_path, when, sig,
                                                                        fails):
    # the default action, restored as Python exits, killed the process: status -15 (or -2)
    # after a success whose output was complete (or after an error reported with status 1)
    feats = tmp_path / "f.npy"
    np.save(feats, np.random.default_rng(0).normal(size=(400, 3)))
    proc = python(AFTER_THE_COMMAND, when, sig, "train-ubm", feats, "--iterations", 2,
                  "--no-progress", "-o", tmp_path / "u.h5", "-n", 100 if fails else 2)
    if fails:  # too few frames for 100 Gaussians: status 1, one line
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("emkit train-ubm: error: 400 frames cannot train 100")
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("UBM: 2 Gaussians") and proc.stderr == ""
        assert (tmp_path / "u.h5").is_file()
