"""Every kind of file emkit writes for a user to keep, as small cases for the failure tests
(tests/io/test_writers_under_failure.py): a name -> (write into a folder, the files it writes,
the modules whose ``open`` makes its temporary files)."""

import builtins
import io

import numpy as np

FAIL_AFTER = 100  # bytes: every case writes more

H5 = ["emkit.io._h5_new_file"]  # (every HDF5 file: models, statistics, checkpoints)
TEXT = ["emkit.io.atomic"]  # atomic_write
AUDIO = ["emkit.audio._write"]


def _ubm():
    from emkit import GMMMachine

    ubm = GMMMachine(4)
    ubm.means = np.arange(4 * 60, dtype=float).reshape(4, 60)
    ubm.variances = np.ones((4, 60))
    ubm.weights = np.full(4, 0.25)
    return ubm


def _gmm(folder):
    _ubm().save(folder / "ubm.h5")


def _gmm_stats(folder):
    from emkit import GMMStats

    stats = GMMStats(4, 60)
    stats.t, stats.n, stats.sum_px = 2, np.full(4, 0.5), np.ones((4, 60))
    stats.save(folder / "stats.h5")


def _statistics_file(folder):
    from emkit import GMMStats
    from emkit.experiment._stats_file import write_statistics

    stats = GMMStats(4, 60)
    stats.t, stats.n, stats.sum_px = 2, np.full(4, 0.5), np.ones((4, 60))
    write_statistics(folder / "run.stats.h5", "key", [stats, stats])


def _scores(folder):
    from emkit.io.lists import write_scores

    write_scores(folder / "scores.txt", [f"m{i}" for i in range(40)], ["p"] * 40,
                 np.linspace(-1, 1, 40))


def _calibration(folder):
    from emkit.evaluation.calibration import LinearCalibration
    from emkit.evaluation.calibration_io import save_calibration

    scores = np.random.default_rng(0).normal(size=60) + np.repeat([1.0, -1.0], 30)
    cal = LinearCalibration().fit(scores, np.repeat([1, 0], 30))
    save_calibration(cal, folder / "cal.json")


def _items():
    return [(f"utt{i}", np.full((20, 3), float(i))) for i in range(4)]


def _kaldi_ark(folder):
    from emkit.audio._write import write_kaldi_ark

    write_kaldi_ark(_items(), folder / "feats.ark")


def _kaldi_vectors(folder):
    from emkit.io.kaldi_vectors import write_kaldi_vectors

    write_kaldi_vectors({f"utt{i}": np.full(20, float(i)) for i in range(4)}, folder / "ivector.ark",
                        folder / "ivector.scp")


def _npy_dir(folder):
    from emkit.audio._write import write_npy_dir

    write_npy_dir(_items(), folder / "feats")


def _npz(folder):
    from emkit.recipe._scoring import save_npz

    save_npz({"scores": np.zeros((10, 10))}, folder / "scores.npz")


#: name -> (writer of a folder, the paths it writes in that folder, modules of its ``open``)
WRITERS = {
    "GMMMachine.save": (_gmm, ["ubm.h5"], H5),
    "GMMStats.save": (_gmm_stats, ["stats.h5"], H5),
    "statistics file": (_statistics_file, ["run.stats.h5"], H5),
    "write_scores": (_scores, ["scores.txt"], TEXT),
    "save_calibration": (_calibration, ["cal.json"], TEXT),
    "Kaldi ark + scp": (_kaldi_ark, ["feats.ark", "feats.scp"], AUDIO),
    "Kaldi vectors ark + scp": (_kaldi_vectors, ["ivector.ark", "ivector.scp"],
                                ["emkit.io.kaldi_vectors"]),
    "npy directory": (_npy_dir, ["feats/utt0.npy"], AUDIO),
    "recipe npz": (_npz, ["scores.npz"], ["emkit.recipe._scoring"]),
}


class FailingFile:
    """A file whose writes fail once ``budget`` bytes are written: on an unbuffered file, the
    write that crosses it writes what fits (as the kernel does) and the next raises
    ``failure``; on a buffered or text file (whose writes are whole or fail), it raises."""

    def __init__(self, file, budget: list, failure):
        self._file, self._budget, self._failure = file, budget, failure

    def write(self, data):
        size = len(data) if isinstance(data, str) else memoryview(data).nbytes
        if size > self._budget[0] and (self._budget[0] == 0 or not isinstance(self._file, io.FileIO)):
            raise self._failure
        if size > self._budget[0]:
            size = self._budget[0]
            data = memoryview(data).cast("B")[:size]
        self._budget[0] -= size
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def fail_writes(monkeypatch, modules, failure, after=FAIL_AFTER):
    """The files that ``modules`` open for writing fail (``failure``) after ``after`` bytes."""
    budget = [after]

    def failing_open(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        return FailingFile(file, budget, failure) if set(mode) & set("wa+") else file

    for module in modules:
        monkeypatch.setattr(f"{module}.open", failing_open, raising=False)
