"""Guard (passes on the code as it was): two processes writing the same model file, as two
``emkit`` commands given the same output, leave it whole: whenever it is read it is one writer's
complete model, never a mix or a truncated file, and no temporary file is left."""

import os
import subprocess
import sys
import textwrap

import numpy as np

from emkit import GMMMachine

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from emkit import GMMMachine
    path, value, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    machine = GMMMachine(64)
    machine.means, machine.variances = np.full((64, 20), value), np.ones((64, 20))
    machine.weights = np.full(64, 1 / 64)
    for _ in range(rounds):
        machine.save(path)
""")


def test_two_processes_saving_one_model_file_leave_it_whole(tmp_path):
    path = tmp_path / "ubm.h5"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(value), "15"],
                                env=env, stderr=subprocess.PIPE) for value in (1.0, 2.0)]
    seen = set()
    while any(w.poll() is None for w in writers):
        if path.exists():
            means = GMMMachine.from_hdf5(str(path)).means
            assert means.shape == (64, 20) and np.unique(means).size == 1
            seen.add(float(means[0, 0]))
    for w in writers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err.decode()
    assert seen <= {1.0, 2.0}
    assert float(GMMMachine.from_hdf5(str(path)).means[0, 0]) in (1.0, 2.0)
    assert sorted(os.listdir(tmp_path)) == ["ubm.h5"]  # no temporary file left
