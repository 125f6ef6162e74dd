"""An error never echoes a long user value: a 10^5-character string or a 10^5-item list given to a
public entry point (a path, a parameter, a hyper-parameter) shows up in the message as at most
about 100 of its characters (messages quote such values through ``emkit._describe.describe`` and
``emkit.io._message_text``'s path helpers)."""

import inspect

import numpy as np
import pytest

import emkit
from emkit import (PLDA, WCCN, GMMMachine, IVectorMachine, ISVMachine, JFAMachine, KMeansMachine,
                   Whitening)
from emkit.calibration import LinearCalibration
from emkit.lda import LDA

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LONG_TEXT = "x" * 100_000
LONG_LIST = list(range(100_000))


def _assert_bounded(error: BaseException):
    message = str(error)
    assert "x" * 101 not in message and "100, 101, 102" not in message, message[:300]
    assert len(message) <= 1000, message[:300]


def _raises_bounded(call, *args, **kwargs):
    with pytest.raises(Exception) as info:
        call(*args, **kwargs)
    _assert_bounded(info.value)


def _path_readers():
    from emkit import calibration_io, experiment, features, io, recipe

    return [features.read_features, features.read_kaldi_ark, features.read_kaldi_scp,
            features.read_id_map, features.read_id_lists, features.read_trials,
            features.read_scores, io.load, calibration_io.load_calibration, recipe.load_recipe,
            experiment.load_machine]


@pytest.mark.parametrize("reader", _path_readers(), ids=lambda f: f.__name__)
def test_a_reader_given_a_long_path_shows_its_tail_only(reader, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _raises_bounded(reader, LONG_TEXT)


def test_a_long_path_of_a_missing_feature_file_is_cut(tmp_path):
    from emkit.features import read_features

    with pytest.raises(FileNotFoundError) as info:
        read_features(str(tmp_path / ("y" * 300)) + ".npy")
    _assert_bounded(info.value)
    assert "..." in str(info.value) and str(info.value).endswith("yyy.npy'")


def test_a_figure_path_of_another_extension_is_cut(tmp_path):
    from emkit.experiment import save_figure

    _raises_bounded(save_figure, None, LONG_TEXT + ".bmp")


@pytest.mark.parametrize("value", [LONG_TEXT, LONG_LIST], ids=["text", "list"])
def test_a_long_normalisation_method_is_described(value):
    from emkit.cohort import normalise

    _raises_bounded(normalise, np.zeros((2, 2)), {}, value)


@pytest.mark.parametrize("value", [LONG_TEXT, LONG_LIST], ids=["text", "list"])
def test_a_long_compute_dtype_is_described(value):
    _raises_bounded(lambda: GMMMachine(2, compute_dtype=value).fit(np.ones((10, 2))))


@pytest.fixture(scope="module")
def training():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.repeat([0, 1, 2], 20)
    ubm = GMMMachine(2, max_fitting_steps=2).fit(X)
    stats = [ubm.acc_stats(X[i * 10:(i + 1) * 10]) for i in range(6)]
    return X, y, ubm, stats


ESTIMATORS = {
    KMeansMachine: ({"n_clusters": 2}, "X"), GMMMachine: ({"n_gaussians": 2}, "X"),
    WCCN: ({}, "Xy"), Whitening: ({}, "X"), LDA: ({"n_components": 1}, "Xy"), PLDA: ({}, "Xy"),
    LinearCalibration: ({}, "scores"), ISVMachine: ({"r_U": 1}, "stats"),
    JFAMachine: ({"r_U": 1, "r_V": 1}, "stats"), IVectorMachine: ({"dim_t": 2}, "stats"),
}
CASES = [(cls, name) for cls in ESTIMATORS for name in inspect.signature(cls).parameters
         if name not in ("ubm", "checkpoint")]  # (checkpoint: OSError's own message, see below)


@pytest.mark.parametrize("value", [LONG_TEXT, LONG_LIST], ids=["text", "list"])
@pytest.mark.parametrize("cls, name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_a_long_hyper_parameter_is_never_echoed(training, cls, name, value):
    X, y, ubm, stats = training
    kwargs, data = ESTIMATORS[cls]
    kwargs = dict(kwargs, **({"ubm": ubm} if data == "stats" else {}))
    kwargs[name] = value
    args = {"X": (X,), "Xy": (X, y), "scores": (X[:, :2], y == 0),
            "stats": (stats, [0, 0, 1, 1, 2, 2]) if cls is not IVectorMachine else (stats,)}[data]
    try:
        cls(**kwargs).fit(*args)  # (refused at construction or at fit)
    except Exception as error:  # (a value that is refused; one that is accepted is fine too)
        _assert_bounded(error)


@pytest.mark.parametrize("value", [LONG_TEXT, LONG_LIST], ids=["text", "list"])
@pytest.mark.parametrize("name", [n for n in emkit.metrics.__all__ + emkit.score_norm.__all__
                                  if inspect.isfunction(getattr(emkit.metrics, n, None)
                                                        or getattr(emkit.score_norm, n))])
def test_a_long_argument_of_a_metric_or_normalisation_is_never_echoed(name, value):
    function = getattr(emkit.metrics, name, None) or getattr(emkit.score_norm, name)
    parameters = [p for p in inspect.signature(function).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    rng = np.random.default_rng(0)
    for bad in parameters:
        kwargs = {p.name: rng.standard_normal(20) if p.default is p.empty else p.default
                  for p in parameters}
        kwargs[bad.name] = value
        try:
            function(**kwargs)
        except Exception as error:
            _assert_bounded(error)


def test_a_long_path_in_a_missing_directory_is_cut_when_writing(tmp_path):
    from emkit.features import atomic_write

    target = tmp_path / ("d" * 300) / "scores.txt"
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        with atomic_write(target):
            pass
    _assert_bounded(info.value)
    assert "d" * 81 not in str(info.value)  # (the file's path and its folder's: 80 of each)


def test_a_long_system_name_of_a_det_plot_is_described():
    from emkit.metrics import plot_det_curves

    _raises_bounded(plot_det_curves, {LONG_TEXT: 5})


SUPERVISED = [cls for cls, (_, data) in ESTIMATORS.items()
              if data in ("Xy", "scores") or (data == "stats" and cls is not IVectorMachine)]


@pytest.mark.parametrize("labels", ["one long class", "long classes"])
@pytest.mark.parametrize("cls", SUPERVISED, ids=lambda c: c.__name__)
def test_a_long_class_label_is_never_echoed(training, cls, labels):
    """Labels y of 10^5 characters: a message may name a class, never quote it whole (PLDA quoted
    the one class of a single-class y in full)."""
    X, y, ubm, stats = training
    kwargs, data = ESTIMATORS[cls]
    kwargs = dict(kwargs, **({"ubm": ubm} if data == "stats" else {}))
    n = {"Xy": len(X), "scores": len(X), "stats": len(stats)}[data]
    codes = np.zeros(n, int) if labels == "one long class" else np.arange(n) % 3
    long_y = np.array([LONG_TEXT + str(c) for c in codes], dtype=object)
    args = {"Xy": (X, long_y), "scores": (X[:, :2], long_y), "stats": (stats, list(long_y))}[data]
    try:
        cls(**kwargs).fit(*args)
    except Exception as error:  # (labels that are accepted are fine too)
        _assert_bounded(error)


def test_a_long_cohort_utterance_id_without_statistics_is_cut():
    from emkit.cohort import enroll_cohort

    _raises_bounded(enroll_cohort, None, {"m": [LONG_TEXT]}, {})


@pytest.mark.parametrize("runner", ["run_demo", "run_demo_recipe"])
def test_a_long_demo_folder_that_cannot_be_written_is_cut(runner, tmp_path, monkeypatch):
    import os

    from emkit import demo, demo_recipe

    folder = tmp_path / ("d" * 150) / ("e" * 150)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # (root may write anywhere)
    run = getattr(demo, runner, None) or getattr(demo_recipe, runner)
    with pytest.raises(PermissionError, match="^cannot write into '...") as info:
        run(folder)
    assert "e" * 81 not in str(info.value) and len(str(info.value)) < 200
