"""Guard (passes on the code as it was): the work directory's lock between processes.  A second
``Runner`` on a work directory that another process is running in is refused with a message
naming the directory and the lock; once that process is killed (SIGKILL: no clean-up of its own)
the lock is free, as the system releases it, and the next run runs the interrupted step again."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from emkit.recipe import FunctionStep, Runner, WorkDirBusy

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")

HOLDER = textwrap.dedent("""
    import pathlib, sys, time
    from emkit.recipe import FunctionStep, Runner
    work, started, out = (pathlib.Path(p) for p in sys.argv[1:4])

    def hold(ctx):
        started.write_text("in")
        time.sleep(120)  # killed long before
        out.write_text("held")

    Runner(work).run([FunctionStep("slow", hold, list, {}, [out])], None)
""")


def _wait_for(path, process, limit=60.0):
    """Wait until ``path`` exists (a hang's bound, not a timing assumption)."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the holder never started its step"
        time.sleep(0.02)


def test_a_run_killed_by_sigkill_leaves_no_stale_lock(tmp_path):
    work, started, out = tmp_path / "work", tmp_path / "started", tmp_path / "out.txt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(work), str(started), str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(started, holder)
        step = FunctionStep("slow", lambda ctx: out.write_text("mine"), list, {}, [out])
        with pytest.raises(WorkDirBusy) as busy:
            Runner(work).run([step], None)
        message = str(busy.value)
        assert "in use by another emkit run" in message
        assert str(work) in message and str(work / ".stamps" / "lock") in message
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)
    assert holder.returncode == -signal.SIGKILL
    assert (work / ".stamps" / "lock").is_file()  # left behind, and harmless
    assert [r.status for r in Runner(work).run([step], None)] == ["run"]
    assert out.read_text() == "mine"
