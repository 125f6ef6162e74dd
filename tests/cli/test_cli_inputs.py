"""Directories as FEATURES, row names of ``emkit evaluate``, and the DET plot it draws."""

import numpy as np
import pytest

from emkit import metrics
from emkit.experiment import EnrolledModels
from emkit.features import read_kaldi_scp
from cli_support import one_line_error, run

# ---------------------------------------------------------------------------------------------
# item 18: a directory as FEATURES


def test_a_directory_stands_for_its_feature_files(data, tmp_path):  # noqa: F811
    d = data
    folder = tmp_path / "feats"
    (folder / "sub").mkdir(parents=True)
    names = []
    for key, M in read_kaldi_scp(d / "train.scp").items():  # one .npy per utterance
        np.save(folder / f"{key}.npy", M)
        names.append(str(folder / f"{key}.npy"))
    (folder / "README.txt").write_text("not features\n")            # other files: ignored
    np.save(folder / "sub" / "spk1_s0_001.npy", np.ones((3, 12)))  # not recursive
    (tmp_path / "list").write_text("\n".join(names) + "\n")
    run("enroll", "--feature-list", tmp_path / "list", "-m", d / "ubm.h5", "-e", d / "spk2utt",
        "-o", tmp_path / "from_list.h5")
    out = run("enroll", folder, "-m", d / "ubm.h5", "-e", d / "spk2utt",
              "-o", tmp_path / "from_dir.h5")
    assert "4 gmm-map models from 120 utterances" in out.stdout
    a, b = (EnrolledModels.from_hdf5(tmp_path / f"{x}.h5") for x in ("from_list", "from_dir"))
    assert a.model_ids == b.model_ids
    np.testing.assert_array_equal(a.arrays["means"], b.arrays["means"])
    # in a feature list too
    (tmp_path / "dirlist").write_text(f"{folder}\n")
    run("train-ubm", "--feature-list", tmp_path / "dirlist", "-n", 2, "--iterations", 1,
        "-o", tmp_path / "u.h5")
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    np.save(empty / "deeper" / "x.npy", np.ones((3, 12)))
    one_line_error(run("train-ubm", empty, "-n", 2, "-o", tmp_path / "u2.h5", ok=False), 1,
                   "empty: the directory holds no feature file", "not read")


def test_a_file_given_twice_and_output_paths_are_named(data, tmp_path):  # noqa: F811
    np.save(tmp_path / "u1.npy", np.ones((30, 12)))
    one_line_error(run("train-ubm", tmp_path, tmp_path / "u1.npy", "-n", 2, "-o", tmp_path / "u.h5",
                       ok=False), 1, "u1.npy is given twice (directly and through its directory")
    one_line_error(run("train-ubm", tmp_path / "u1.npy", "-n", 2, "-o", "", ok=False), 2,
                   "-o/--output is an empty path: give a file name")
    one_line_error(run("train-ubm", tmp_path / "u1.npy", "-n", 2, "-o", tmp_path / "no" / "u.h5",
                       ok=False), 1, "-o/--output: cannot write", "directory", "does not exist")


def test_a_scheduler_that_is_no_address_is_a_usage_error(tmp_path):
    pytest.importorskip("distributed")
    np.save(tmp_path / "u1.npy", np.ones((30, 12)))
    one_line_error(run("train-ubm", tmp_path / "u1.npy", "-n", 2, "-o", tmp_path / "u.h5",
                       "--scheduler", "nonsense", ok=False), 2,
                   "'--scheduler': 'nonsense' is not a scheduler address", "tcp://")
    assert not (tmp_path / "u.h5").exists()


def test_help_says_how_directories_and_npy_files_are_read():
    for command in ("train-ubm", "train-isv", "train-jfa", "train-ivector", "enroll", "score"):
        text = " ".join(run(command, "--help").stdout.split())
        assert "A .npy file is one utterance whose id is the file's stem" in text, command
        assert "A directory stands for its .npy, .npz, .h5, .hdf5, .hdf and .ark files, sorted " \
            "by name (not recursive" in text, command
    top = " ".join(run("--help").stdout.split())
    assert "whose id is the file's stem" in top
    assert "a directory stands for its .npy, .npz, .h5, .hdf5, .hdf and .ark files" in top
    assert "not recursive" in top


# ---------------------------------------------------------------------------------------------
# item 19: row names of evaluate


def _scores(path, shift):
    rng = np.random.default_rng(len(str(path)))
    tar, non = rng.normal(shift, 1, 20), rng.normal(0, 1, 60)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"m t{i} {float(v)!r} target\n" for i, v in enumerate(tar))
                    + "".join(f"m n{i} {float(v)!r} nontarget\n" for i, v in enumerate(non)))


def test_evaluate_names_rows_by_their_shortest_unique_path_suffix(tmp_path, monkeypatch):
    for rel, shift in (("exp/a/dev/scores.txt", 1), ("exp/b/dev/scores.txt", 2),
                       ("exp/c/scores.txt", 3), ("exp/c/other.txt", 4)):
        _scores(tmp_path / rel, shift)
    monkeypatch.chdir(tmp_path)
    out = run("evaluate", "exp/a/dev/scores.txt", tmp_path / "exp/b/dev/scores.txt",
              "exp/c/scores.txt", "exp/c/other.txt").stdout
    rows = [line.split()[0] for line in out.splitlines()[1:]]
    assert rows == ["a/dev/scores", "b/dev/scores", "c/scores", "other"]
    one_line_error(run("evaluate", "exp/c/other.txt", "./exp/c/other.txt", ok=False), 2,
                   "given twice")


# ---------------------------------------------------------------------------------------------
# item 20: the DET plot


@pytest.fixture(scope="module")
def det_figure():
    rng = np.random.default_rng(0)
    systems = {f"system {k}": (rng.normal(mu, 1, 400), rng.normal(0, 1, 6000))
               for k, mu in enumerate((1.5, 2.5, 3.5))}
    fig = metrics.plot_det_curves(systems)
    fig.canvas.draw()
    return systems, fig


def test_det_legend_is_outside_the_axes(det_figure):
    _, fig = det_figure
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y1 < ax.get_window_extent(renderer).y0   # below the axes, hiding no curve


def test_det_tick_labels_do_not_overlap(det_figure):
    _, fig = det_figure
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    for labels, lo, hi in ((ax.get_xticklabels(), "x0", "x1"), (ax.get_yticklabels(), "y0", "y1")):
        boxes = sorted((getattr(b, lo), getattr(b, hi)) for b in
                       (t.get_window_extent(renderer) for t in labels if t.get_text()))
        assert len(boxes) >= 5
        for (_, end), (start, _) in zip(boxes, boxes[1:]):
            assert start > end, [t.get_text() for t in labels]


def _overlapping_tick_labels(fig):
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    for labels, lo, hi in ((ax.get_xticklabels(), "x0", "x1"), (ax.get_yticklabels(), "y0", "y1")):
        boxes = sorted((getattr(b, lo), getattr(b, hi), t.get_text()) for t, b in
                       ((t, t.get_window_extent(renderer)) for t in labels if t.get_text()))
        for (_, end, a), (start, _, b) in zip(boxes, boxes[1:]):
            if start <= end:
                return a, b
    return None


@pytest.mark.parametrize("low", [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02])
def test_det_tick_labels_do_not_overlap_at_any_low_limit(det_figure, low):
    """The long labels near the low end ("0.02", "0.05") need more room than "5" and "10"."""
    systems, _ = det_figure
    fig = metrics.plot_det_curves(systems, limits=(low, 0.5), title="DET")
    fig.canvas.draw()
    assert _overlapping_tick_labels(fig) is None


def test_det_curves_cross_the_diagonal_at_the_eer_of_the_legend(det_figure):
    from scipy.special import ndtri

    systems, fig = det_figure
    (ax,) = fig.axes
    for line, (name, pair) in zip(ax.get_lines(), systems.items()):
        e = metrics.eer(*pair)
        assert line.get_label() == f"{name} (EER {100 * e:.2f}%)"
        x, y = line.get_xydata().T     # probit coordinates, P_fa increasing along -x
        k = np.flatnonzero(np.diff(np.sign(y - x)))[0]
        t = (x[k] - y[k]) / ((y[k + 1] - y[k]) - (x[k + 1] - x[k]))
        crossing = x[k] + t * (x[k + 1] - x[k])
        assert crossing == pytest.approx(ndtri(e), abs=0.02), name
