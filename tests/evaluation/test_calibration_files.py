"""Calibration files keep what a refit needs, ``C`` and ``max_iter``, and the system's name
(``feature_names_in_``); files without them still load, and bad values are refused."""

import json
import warnings

import numpy as np
import pytest
from data_frames import Frame
from sklearn.base import clone

from emkit.calibration import LinearCalibration
from emkit.calibration_io import load_calibration, save_calibration


@pytest.fixture(scope="module")
def dev():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 4 == 0
    return rng.normal(size=200) * 3.0 + 4.0 * y, y


def test_a_reloaded_calibration_refits_as_the_saved_one(tmp_path, dev):
    """A reloaded calibration had C=1e6 and max_iter=1000 whatever it was fitted with: its refit
    on the same scores gave another slope (0.51 for 0.086 here)."""
    scores, y = dev
    cal = LinearCalibration(prior=0.2, C=0.01, max_iter=50).fit(scores, y)
    save_calibration(cal, tmp_path / "cal.json")
    # (version 2: an emkit that reads version 1 only says "upgrade emkit", not "unexpected field")
    assert json.loads((tmp_path / "cal.json").read_text())["version"] == 2
    back = load_calibration(tmp_path / "cal.json")
    assert back.get_params() == {"prior": 0.2, "C": 0.01, "max_iter": 50}
    assert type(back.max_iter) is int
    np.testing.assert_array_equal(clone(back).fit(scores, y).coef_, cal.coef_)
    np.testing.assert_array_equal(back.transform(scores), cal.transform(scores))
    assert not hasattr(back, "feature_names_in_")


def test_the_system_name_of_a_data_frame_is_kept(tmp_path, dev):
    """A reloaded calibration forgot it: a frame of another system's scores was calibrated."""
    scores, y = dev
    cal = LinearCalibration().fit(Frame(scores[:, None], ["plda"]), y)
    save_calibration(cal, tmp_path / "cal.json")
    assert json.loads((tmp_path / "cal.json").read_text())["feature_names"] == ["plda"]
    back = load_calibration(tmp_path / "cal.json")
    assert back.feature_names_in_.dtype == object and list(back.feature_names_in_) == ["plda"]
    with pytest.raises(ValueError, match=r"scores's feature names \['cosine'\] differ"):
        back.transform(Frame(scores[:, None], ["cosine"]))
    with pytest.warns(UserWarning, match="scores does not have valid feature names"):
        back.transform(scores)


def test_files_without_the_settings_load_with_the_defaults(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"format": "emkit.LinearCalibration", "version": 1, "prior": 0.3, '
                    '"coef": [2.0], "intercept": -1.0, "trained_on": {"targets": 3, "nontargets": 9}}')
    back = load_calibration(path)
    assert back.get_params() == {"prior": 0.3, "C": 1e6, "max_iter": 1000}
    assert back.coef_.tolist() == [2.0] and back.intercept_ == -1.0
    assert not hasattr(back, "feature_names_in_")


@pytest.mark.parametrize("field, value, message", [
    ("C", 0, "C must be a finite number > 0"),
    ("C", -1e-3, "C must be a finite number > 0"),
    ("C", "SECRET", "C must be a finite number"),
    ("C", True, "C must be a finite number"),
    ("C", 1e999, "C must be a finite number"),
    ("max_iter", 0, r"max_iter must be an integer in \[1, 2147483647\]"),
    ("max_iter", 2.0, "max_iter must be an integer"),
    ("max_iter", 2**40, "max_iter must be an integer"),
    ("max_iter", True, "max_iter must be an integer"),
    ("max_iter", "SECRET", "max_iter must be an integer"),
    ("feature_names", ["SECRET", "b"], r"feature_names must be a list of 1 string\(s\), one per system"),
    ("feature_names", "SECRET", "feature_names must be a list of 1 string"),
    ("feature_names", [["SECRET"]], "feature_names must be a list of 1 string"),
    ("feature_names", [], "feature_names must be a list of 1 string"),
])
def test_bad_settings_in_a_file_are_refused_naming_the_file_and_field(tmp_path, field, value, message):
    path = tmp_path / "cal.json"
    doc = {"format": "emkit.LinearCalibration", "version": 1, "prior": 0.5, "coef": [1.0],
           "intercept": 0.0, field: value}
    path.write_text(json.dumps(doc).replace("Infinity", "1e999"))
    with pytest.raises(ValueError, match=message) as info:
        load_calibration(path)
    assert str(info.value).startswith(f"{str(path)!r}: ") and "SECRET" not in str(info.value)


def test_a_bad_calibration_file_is_named_escaped_and_bounded(tmp_path):
    """Before, the messages of a file's contents began with the raw path: a control character in
    its name reached the terminal, and a long path was echoed whole."""
    escape = tmp_path / "cal\x1b[2J.json"
    escape.write_text("{}")
    with pytest.raises(ValueError, match="not an emkit calibration file") as info:
        load_calibration(escape)
    assert "\x1b" not in str(info.value) and "\\x1b[2J.json'" in str(info.value)
    folder = tmp_path / ("d" * 150) / ("e" * 150)
    folder.mkdir(parents=True)
    (folder / "cal.json").write_text('{"format": "emkit.LinearCalibration", "version": 1, '
                                     '"prior": 2, "coef": [1.0], "intercept": 0.0}')
    with pytest.raises(ValueError, match="prior must be in") as info:
        load_calibration(folder / "cal.json")
    assert "e" * 100 not in str(info.value) and "/cal.json': prior" in str(info.value)


@pytest.mark.parametrize("param, value, message", [
    ("C", float("nan"), "calibration.C must be a finite number > 0 to be saved; got nan"),
    ("max_iter", 2**31, r"calibration.max_iter must be an integer in \[1, 2147483647\] to be saved"),
    ("max_iter", 3.0, "calibration.max_iter must be an integer"),
])
def test_settings_a_file_cannot_hold_are_refused_at_save(tmp_path, dev, param, value, message):
    cal = LinearCalibration().fit(*dev).set_params(**{param: value})
    with pytest.raises(ValueError, match=message):
        save_calibration(cal, tmp_path / "cal.json")
    assert not (tmp_path / "cal.json").exists()


def test_a_one_column_refit_matches_after_the_round_trip_of_every_setting(tmp_path, dev):
    scores, y = dev
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (3 Newton steps: not converged)
        cal = LinearCalibration(C=5.0, max_iter=3).fit(scores, y)
        save_calibration(cal, tmp_path / "cal.json")
        refit = clone(load_calibration(tmp_path / "cal.json")).fit(scores, y)
    assert refit.n_iter_ == cal.n_iter_ == 3
    np.testing.assert_array_equal(refit.coef_, cal.coef_)


def test_calibrate_file_with_a_key_reads_the_score_file_once(tmp_path, dev, monkeypatch):
    # the labels were taken by labelled_scores, which read and parsed the score file again
    from emkit.calibration_io import calibrate_file
    from emkit.io import lists

    scores, y = dev
    (tmp_path / "s.txt").write_text("".join(f"m{k % 7} p{k} {s!r}\n"
                                            for k, s in enumerate(scores.tolist())))
    (tmp_path / "k.txt").write_text("".join(f"m{k % 7} p{k} {('nontarget', 'target')[t]}\n"
                                            for k, t in reversed(list(enumerate(y.tolist())))))
    cal = LinearCalibration().fit(scores, y)
    reads = []
    read = lists.read_score_columns
    monkeypatch.setattr(lists, "read_score_columns",
                        lambda path, *args: reads.append(path) or read(path, *args))
    assert calibrate_file(cal, tmp_path / "s.txt", tmp_path / "out.txt", tmp_path / "k.txt") == 200
    assert reads == [tmp_path / "s.txt"]
    trials, written = lists.read_scores(tmp_path / "out.txt")
    np.testing.assert_array_equal(trials.labels, y)
    np.testing.assert_array_equal(written, cal.transform(scores))
