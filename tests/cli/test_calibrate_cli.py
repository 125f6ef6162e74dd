"""``emkit calibrate`` and emkit.calibration_io: train, apply, save, load, bad inputs."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from emkit import metrics
from emkit.calibration import LinearCalibration
from emkit.calibration_io import (load_calibration, save_calibration, score_metrics,
                                  train_calibration)
from emkit.cli import cli
from emkit.features import read_scores, write_scores
from cli_support import no_leftovers, one_line_error



def run(*args):
    return CliRunner().invoke(cli, ["calibrate", *[str(a) for a in args]],
                              catch_exceptions=False)


def scores(path, seed, n=60, labels=True, scale=3.0, shift=2.0):
    """Badly calibrated scores: llr * scale + shift of well separated Gaussian classes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3 == 0
    llr = np.where(y, 1.5, -1.5) + rng.standard_normal(n)
    models = [f"m{i % 5}" for i in range(n)]
    probes = [f"p{i}" for i in range(n)]
    write_scores(path, models, probes, scale * llr + shift, y if labels else None)
    return models, probes, scale * llr + shift, y


@pytest.fixture()
def files(tmp_path):
    scores(tmp_path / "dev.txt", 0)
    scores(tmp_path / "eval.txt", 1)
    return tmp_path


def test_train_save_apply_equals_library(files):
    result = run("--train", files / "dev.txt", "--save", files / "cal.json",
                 files / "eval.txt", "-o", files / "eval.llr")
    assert result.exit_code == 0, result.output
    assert "Cllr" in result.stdout and "60 calibrated scores" in result.stdout
    trials, dev = read_scores(files / "dev.txt")
    expected = LinearCalibration().fit(dev, trials.labels)
    etrials, ev = read_scores(files / "eval.txt")
    out_trials, out = read_scores(files / "eval.llr")
    assert out_trials.models == etrials.models and out_trials.probes == etrials.probes
    assert np.array_equal(out_trials.labels, etrials.labels)
    np.testing.assert_allclose(out, expected.transform(ev), rtol=0, atol=1e-9 * np.abs(out).max())
    # calibration helps: Cllr of the calibrated eval scores below the raw ones
    lab = etrials.labels
    assert metrics.cllr(out[lab], out[~lab]) < metrics.cllr(ev[lab], ev[~lab])
    doc = json.loads((files / "cal.json").read_text())
    assert doc["format"] == "emkit.LinearCalibration" and doc["trained_on"] == {
        "targets": 20, "nontargets": 40}


def test_load_gives_the_same_scores(files):
    assert run("--train", files / "dev.txt", "--save", files / "cal.json").exit_code == 0
    run("--train", files / "dev.txt", files / "eval.txt", "-o", files / "a.txt")
    result = run("--load", files / "cal.json", files / "eval.txt", "-o", files / "b.txt")
    assert result.exit_code == 0, result.output
    assert read_scores(files / "a.txt")[1].tolist() == read_scores(files / "b.txt")[1].tolist()


def test_key_labels_unlabelled_dev(files):
    models, probes, _, y = scores(files / "dev_nolab.txt", 0, labels=False)
    with open(files / "key", "w") as f:
        for m, p, t in zip(models, probes, y):
            f.write(f"{m} {p} {'target' if t else 'nontarget'}\n")
    result = run("--train", files / "dev_nolab.txt", "--key", files / "key", "--save",
                 files / "k.json")
    assert result.exit_code == 0, result.output
    a = load_calibration(files / "k.json")
    b = train_calibration(files / "dev.txt")
    assert a.coef_[0] == pytest.approx(b.coef_[0], rel=1e-9)
    assert a.intercept_ == pytest.approx(b.intercept_, rel=1e-9, abs=1e-12)


def test_round_trip_library(tmp_path):
    # a target (0.8) below a non-target (1): separated scores would warn
    cal = LinearCalibration(prior=0.3).fit(np.array([0.0, 1, 2, 3, 0.8, 0.5]),
                                           np.array([0, 0, 1, 1, 1, 0]))
    save_calibration(cal, tmp_path / "c.json")
    back = load_calibration(tmp_path / "c.json")
    assert back.prior == 0.3 and back.coef_.tolist() == cal.coef_.tolist()
    assert back.intercept_ == cal.intercept_


def test_a_negative_slope_is_saved_and_loaded_back(files):
    # a distance (lower for the same speaker): before, load refused the file that save wrote
    scores(files / "dist.txt", 0, scale=-3.0)
    scores(files / "dist_eval.txt", 1, scale=-3.0)
    result = run("--train", files / "dist.txt", "--save", files / "cal.json")
    assert result.exit_code == 0, result.output
    trials, dev = read_scores(files / "dist.txt")
    fitted = LinearCalibration().fit(dev, trials.labels)
    assert fitted.coef_[0] < 0
    back = load_calibration(files / "cal.json")
    assert back.coef_.tolist() == fitted.coef_.tolist() and back.intercept_ == fitted.intercept_
    result = run("--load", files / "cal.json", files / "dist_eval.txt", "-o", files / "out.txt")
    assert result.exit_code == 0, result.output
    _, ev = read_scores(files / "dist_eval.txt")
    assert read_scores(files / "out.txt")[1].tolist() == fitted.transform(ev).tolist()


def test_trial_counts_go_together(tmp_path):
    cal = LinearCalibration().fit([0.0, 1, 2, 1.5], [0, 1, 1, 0])
    with pytest.raises(TypeError, match=r"^n_targets and n_nontargets go together: give both or "
                                        r"neither; got n_targets=5, n_nontargets=None$"):
        save_calibration(cal, tmp_path / "c.json", n_targets=5)
    with pytest.raises(ValueError, match=r"^n_nontargets must be >= 0; got -1$"):
        save_calibration(cal, tmp_path / "c.json", n_targets=5, n_nontargets=-1)
    assert not (tmp_path / "c.json").exists()


def test_score_metrics_of_calibrated_scores():
    rng = np.random.default_rng(3)
    tar, non = rng.normal(2, 1, 200), rng.normal(-2, 1, 2000)
    m = score_metrics(tar, non, p_targets=(0.01, 0.1))
    assert m["eer"] == metrics.eer(tar, non) and m["cllr"] == metrics.cllr(tar, non)
    assert m["min_dcf"][0.1] == metrics.min_dcf(tar, non, 0.1)
    assert m["act_dcf"][0.01] == metrics.act_dcf(tar, non, 0.01)
    assert m["min_cllr"] <= m["cllr"] and (m["targets"], m["nontargets"]) == (200, 2000)
    assert all(m["min_dcf"][p] <= m["act_dcf"][p] + 1e-12 for p in (0.01, 0.1))


def test_score_metrics_with_a_calibration():
    rng = np.random.default_rng(4)
    tar, non = rng.normal(5, 2, 100), rng.normal(1, 2, 900)  # raw scores, not LLRs
    y = np.r_[np.ones(100, bool), np.zeros(900, bool)]
    cal = LinearCalibration().fit(np.r_[tar, non], y)
    raw = score_metrics(tar, non, (0.1,))
    m = score_metrics(tar, non, (0.1,), calibration=cal)
    llr_t, llr_n = cal.transform(tar), cal.transform(non)
    assert m["cllr"] == metrics.cllr(llr_t, llr_n) < raw["cllr"]
    assert m["act_dcf"][0.1] == metrics.act_dcf(llr_t, llr_n, 0.1)
    assert (m["eer"], m["min_dcf"], m["min_cllr"]) == (raw["eer"], raw["min_dcf"],
                                                       raw["min_cllr"])
    assert m["min_cllr"] <= m["cllr"]


@pytest.mark.parametrize("tar,non,error,fragment", [
    ([np.nan, 1.0], [0.0], ValueError, "target_scores must contain only finite scores"),
    ([1.0], [0.0, np.inf], ValueError, "nontarget_scores must contain only finite scores"),
    (["a"], [0.0], TypeError, "target_scores must be an array of real scores; got dtype <U1"),
])
def test_score_metrics_errors_name_the_argument_with_a_calibration(tar, non, error, fragment):
    # before: "scores contains NaN" (the calibration's argument) and a bare float() error
    cal = LinearCalibration().fit([0.0, 1.0, 2.0, 3.0], [False, True, False, True])
    for calibration in (None, cal):
        with pytest.raises(error, match="^" + re.escape(fragment)):
            score_metrics(tar, non, calibration=calibration)


@pytest.mark.parametrize("args,fragment", [
    ([], "exactly one of --train"),
    (["--train", "DEV", "--load", "DEV"], "exactly one of --train"),
    (["--train", "DEV"], "nothing to do"),
    (["--train", "DEV", "EVAL"], "go together"),
    (["--load", "DEV", "--key", "DEV", "--save", "x.json"], "--key labels the --train"),
    (["--train", "nothere.txt", "--save", "x.json"], "does not exist"),
    (["--train", "DEV", "--save", "x.json", "--prior", "1"], "--prior"),
    (["--train", "DEV", "--save", "nodir/x.json"], "does not exist"),
])
def test_usage_errors(files, monkeypatch, args, fragment):
    monkeypatch.chdir(files)
    args = [str(files / "dev.txt") if a == "DEV" else str(files / "eval.txt") if a == "EVAL"
            else a for a in args]
    result = run(*args)
    assert result.exit_code in (1, 2)
    one_line_error(result, result.exit_code, fragment)
    no_leftovers(files, "x.json")


def test_output_that_is_an_input_is_refused(files):
    """-o or --save naming an input file (here the scores or the loaded calibration) is a usage
    error, and the input is left as it was."""
    run("--train", files / "dev.txt", "--save", files / "cal.json")
    before = (files / "eval.txt").read_bytes(), (files / "cal.json").read_bytes()
    one_line_error(run(files / "eval.txt", "--load", files / "cal.json", "-o", files / "eval.txt"),
                   2, "eval.txt", "refusing to overwrite an input")
    one_line_error(run(files / "eval.txt", "--load", files / "cal.json", "-o", files / "out.txt",
                       "--save", files / "cal.json"), 2, "cal.json", "refusing to overwrite")
    assert ((files / "eval.txt").read_bytes(), (files / "cal.json").read_bytes()) == before


def test_unlabelled_dev_without_key_exits_1(files):
    scores(files / "nolab.txt", 0, labels=False)
    one_line_error(run("--train", files / "nolab.txt", "--save", files / "x.json"), 1,
                   "nolab.txt", "no label column", "give --key TRIALS")
    no_leftovers(files, "x.json")


def test_one_class_dev_exits_1(files):
    write_scores(files / "one.txt", ["a", "b"], ["p", "q"], [1.0, 2.0], [True, True])
    one_line_error(run("--train", files / "one.txt", "--save", files / "x.json"), 1,
                   "one.txt", "target and non-target")


def test_output_and_save_naming_one_file_are_refused(files, monkeypatch):
    # compared as strings, out.txt and ./out.txt were two files: the calibration was overwritten
    monkeypatch.chdir(files)
    one_line_error(run("--train", "dev.txt", "eval.txt", "-o", "out.txt", "--save", "./out.txt"), 2,
                   "-o/--output and --save must be different files")
    no_leftovers(files, "out.txt")


def test_a_calibration_that_overflows_the_scores_writes_nothing(files):
    (files / "big.json").write_text('{"format": "emkit.LinearCalibration", "version": 1, '
                                    '"prior": 0.5, "coef": [1e308], "intercept": 0.0}')
    result = run("--load", files / "big.json", files / "eval.txt", "-o", files / "out.txt")
    one_line_error(result, 1, "calibrated scores overflow")
    assert not (files / "out.txt").exists()


def test_key_missing_trial_exits_1(files):
    scores(files / "nolab.txt", 0, labels=False)
    (files / "key").write_text("m0 p0 target\n")
    one_line_error(run("--train", files / "nolab.txt", "--key", files / "key", "--save",
                       files / "x.json"), 1, "is not in the key", "key")
    # an id that would drive the terminal (escape sequences) is shown escaped
    write_scores(files / "esc.txt", ["\x1b]0;owned\x07\x1b[2J", "b"], ["p", "q"], [1.0, 2.0])
    result = run("--train", files / "esc.txt", "--key", files / "key", "--save", files / "x.json")
    one_line_error(result, 1, "is not in the key", r"'\x1b]0;owned\x07\x1b[2J p'")
    assert "\x1b" not in result.output


@pytest.mark.parametrize("content,fragment", [
    ("secret-text-not-json", "not JSON"),
    ('{"format": "other"}', "not an emkit calibration"),
    ('{"format": "emkit.LinearCalibration", "version": 9}', "version"),
    ('{"format": "emkit.LinearCalibration", "version": 1, "prior": 0.5, "coef": [1.0], '
     '"intercept": 0, "payload": "secret-text"}', "unexpected field"),
    ('{"format": "emkit.LinearCalibration", "version": 1, "prior": 0.5, "coef": [1, 2], '
     '"intercept": 0}', "coef must be a list of one"),
    ('{"format": "emkit.LinearCalibration", "version": 1, "prior": 0.5, "coef": ["x"], '
     '"intercept": 0}', "coef[0] must be a finite"),
    ('{"format": "emkit.LinearCalibration", "version": 1, "prior": 0.5, "coef": [1.0], '
     '"intercept": NaN}', "intercept must be a finite"),
    ('{"format": "emkit.LinearCalibration", "version": 1, "prior": 1.5, "coef": [1.0], '
     '"intercept": 0}', "prior must be in (0, 1)"),
])
def test_bad_calibration_file_exits_1(files, content, fragment):
    (files / "bad.json").write_text(content)
    result = run("--load", files / "bad.json", files / "eval.txt", "-o", files / "out.txt")
    one_line_error(result, 1, "bad.json", fragment)
    assert "secret-text" not in result.output
    no_leftovers(files, "out.txt")


def test_binary_calibration_file(files):
    (files / "bad.json").write_bytes(b"\xff\xfe\x00binary")
    one_line_error(run("--load", files / "bad.json", "--save", files / "x.json"), 1, "bad.json",
                   "not JSON")


def test_a_huge_cllr_of_the_training_scores_is_printed_in_scientific_notation(tmp_path):
    _, _, values, y = scores(tmp_path / "dev.txt", 0, scale=-1e300, shift=0.0)  # the wrong way
    result = run("--train", tmp_path / "dev.txt", "--save", tmp_path / "cal.json")
    assert result.exit_code == 0, result.output
    raw = metrics.cllr(values[y], values[~y])
    assert f"Cllr {raw:.2e} -> " in result.output and raw > 1e299


def test_a_prior_that_is_not_finite_is_a_usage_error(files):
    result = run("--train", files / "dev.txt", "--prior", "nan", "--save", files / "cal.json")
    one_line_error(result, 2, "Invalid value for '--prior': must be a finite number; got nan")
    assert not (files / "cal.json").exists()


def test_the_development_scores_are_read_once(files, monkeypatch):
    # emkit calibrate --train read the development file twice (its scores for the Cllr line,
    # then again to train): a 10^7-line file cost two full reads
    from emkit.evaluation import calibration_io

    reads = []
    monkeypatch.setattr(calibration_io, "read_scores",
                        lambda path: reads.append(path) or read_scores(path))
    result = run("--train", files / "dev.txt", "--save", files / "cal.json")
    assert result.exit_code == 0, result.output
    assert reads == [str(files / "dev.txt")]
    trials, dev = read_scores(files / "dev.txt")
    assert load_calibration(files / "cal.json").coef_[0] == \
        LinearCalibration().fit(dev, trials.labels).coef_[0]
