"""emkit's own thread pool takes the share of the CPUs that its process was given:
``OMP_NUM_THREADS`` as the process found it when emkit was imported (dask's nanny sets it to 1 in
every worker process, joblib's loky backend to ``cpus // n_jobs``) caps it.  Without the cap, W
single-threaded dask workers on C CPUs each started C threads of emkit's; read later than import,
the client process of a ``LocalCluster`` lost its threads (the nanny sets the variable there too)."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from emkit import _cpus
from emkit._backend import map_reduce, n_threads


@pytest.mark.parametrize("value, expected", [
    ("1", 1), ("3", 3), ("4,2", 4), (" 2 ", 2), ("64", 64),
    (None, None), ("", None), ("0", None), ("-1", None), ("two", None), ("2.5", None),
    ("²", None), ("٣", None),  # (str.isdigit() is True for these, int() raises on the first)
])
def test_omp_num_threads_values(value, expected):
    assert _cpus.omp_num_threads(value) == expected


@pytest.mark.parametrize("omp, expected", [(1, 1), (3, 3), (64, 8), (None, 8)])
def test_the_pool_has_the_usable_cpus_at_most_omp_num_threads(monkeypatch, omp, expected):
    monkeypatch.setattr(_cpus, "usable_cpus", lambda: 8)
    monkeypatch.setattr(_cpus, "_OMP_NUM_THREADS", omp)
    assert n_threads() == expected


def test_omp_num_threads_set_after_import_changes_nothing(monkeypatch):
    before = n_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what a dask nanny does in its client process
    assert n_threads() == before


WORKER = textwrap.dedent("""
    import threading
    import numpy as np
    from emkit._backend import map_reduce
    seen = set()

    def chunk(rows):
        seen.add(threading.get_ident())
        return rows.sum(axis=0)

    X = np.random.default_rng(0).normal(size=(40_000, 3))  # enough rows for two threads
    total = map_reduce(chunk, X)
    assert np.allclose(total, X.sum(axis=0), rtol=1e-12, atol=0)
    print(seen == {threading.get_ident()})  # (which pool threads ran it is up to the pool)
""")


@pytest.mark.parametrize("omp, expected", [("1", "True"), (None, "False")])
def test_a_process_started_with_one_thread_runs_emkits_passes_in_the_calling_thread(omp, expected):
    if _cpus.usable_cpus() < 2:
        pytest.skip("needs two usable CPUs for emkit to start its pool at all")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp  # as in a dask worker started by a nanny
    out = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == expected


IMPORT_THEN_NANNY = textwrap.dedent("""
    import os
    import emkit
    os.environ["OMP_NUM_THREADS"] = "1"  # what a dask nanny does in its client process
    import emkit._backend
    print(emkit._backend.n_threads(), emkit._cpus.usable_cpus())
""")


def test_omp_num_threads_is_read_at_import_emkit_not_at_the_first_pass():
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", IMPORT_THEN_NANNY], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    threads, cpus = out.stdout.split()
    assert threads == cpus


def test_a_non_ascii_digit_in_omp_num_threads_does_not_break_the_command_line():
    env = dict(os.environ, OMP_NUM_THREADS="²", PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "emkit", "--help"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
