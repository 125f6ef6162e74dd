"""``emkit evaluate --calibration`` (actDCF and Cllr of calibrated scores) and ``--by-model``."""

import numpy as np
import pytest

from emkit import calibration_io as cio
from emkit import metrics
from cli_support import one_line_error, run


def write_scores(path, rows):
    path.write_text("".join(f"{m} {p} {s!r} {'target' if t else 'nontarget'}\n"
                            for m, p, s, t in rows))
    return path


@pytest.fixture
def scores(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for k, model in enumerate(("alice", "bob", "carol")):
        for j in range(40):
            target = j < 10
            rows.append((model, f"p{j}", float(rng.normal(3.0 + k if target else 0.0, 2.0)),
                         target))
    rows += [("dave", f"p{j}", float(rng.normal()), False) for j in range(5)]  # no target
    rows += [("erin", f"p{j}", float(rng.normal(2.0)), True) for j in range(3)]  # no non-target
    return write_scores(tmp_path / "dev.txt", rows), rows


def table(stdout, first):
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    return lines[start:]


def test_calibrated_actdcf_and_cllr_beside_min_dcf(scores, tmp_path):
    path, rows = scores
    run("calibrate", "--train", path, "--save", tmp_path / "cal.json")
    cal = cio.load_calibration(tmp_path / "cal.json")
    plain = run("evaluate", path, "--p-target", 0.1).stdout.splitlines()[1].split()
    calibrated = run("evaluate", path, "--p-target", 0.1, "--calibration",
                     tmp_path / "cal.json").stdout
    got = calibrated.splitlines()[1].split()
    assert "calibrated by" in calibrated and str(tmp_path / "cal.json") in calibrated
    sign = "-" if cal.intercept_ < 0 else "+"  # (a negative intercept read '+ -2.96')
    assert f"(llr = {cal.coef_[0]:.6g} * score {sign} {abs(cal.intercept_):.6g})" in calibrated
    values = np.array([s for _, _, s, _ in rows])
    labels = np.array([t for *_, t in rows])
    llr = cal.transform(values)
    # EER, minDCF and min Cllr unchanged; actDCF and Cllr those of the calibrated scores
    assert got[3:5] == plain[3:5] and got[7] == plain[7]
    assert float(got[5]) == pytest.approx(metrics.act_dcf(llr[labels], llr[~labels], 0.1),
                                          abs=6e-5)
    assert float(got[6]) == pytest.approx(metrics.cllr(llr[labels], llr[~labels]), abs=6e-4)
    assert float(got[6]) < float(plain[6])  # calibration lowers Cllr here (raw scores are off)


def test_calibration_option_errors(scores, tmp_path):
    path, _ = scores
    one_line_error(run("evaluate", path, "--calibration", tmp_path / "nope.json", ok=False), 2,
                   "--calibration", "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{secret")
    result = run("evaluate", path, "--calibration", bad, ok=False)
    one_line_error(result, 1, "bad.json", "not JSON")
    assert "secret" not in result.stderr
    one_line_error(run("evaluate", path, "--calibration", path, ok=False), 1, "dev.txt")


def test_by_model_table(scores):
    path, rows = scores
    out = run("evaluate", path, "--by-model", "--p-target", 0.01, "--p-target", 0.1).stdout
    lines = table(out, "per model (dev)")
    assert lines[1].split()[:4] == ["model", "targets", "non-tgt", "EER"]
    assert "minDCF(0.01)" in lines[1] and "minDCF(0.1)" in lines[1]
    body = {line.split()[0]: line for line in lines[2:]}
    assert list(body) == ["alice", "bob", "carol", "dave", "erin"]
    for model in ("alice", "bob", "carol"):
        tar = np.array([s for m, _, s, t in rows if m == model and t])
        non = np.array([s for m, _, s, t in rows if m == model and not t])
        fields = body[model].split()
        assert fields[1:3] == ["10", "30"]
        assert float(fields[3]) == pytest.approx(100 * metrics.eer(tar, non), abs=0.006)
        assert float(fields[5]) == pytest.approx(metrics.min_dcf(tar, non, 0.1), abs=6e-5)
    assert body["dave"].split()[1:3] == ["0", "5"] and "only non-target trials" in body["dave"]
    assert body["erin"].split()[1:3] == ["3", "0"] and "only target trials" in body["erin"]
    # without the flag: no per-model table
    assert "per model" not in run("evaluate", path).stdout


@pytest.mark.parametrize("name,magic", [("det.png", b"\x89PNG"), ("det.PDF", b"%PDF"),
                                        ("det.svg", b"<?xml"), ("det.eps", b"%!PS"),
                                        ("det.ps", b"%!PS")])
def test_det_plot_in_the_format_of_its_extension(scores, tmp_path, name, magic):
    path, _ = scores
    run("evaluate", path, "--det", tmp_path / name)
    assert (tmp_path / name).read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["det.jpg", "det", "det.txt"])
def test_det_plot_of_another_extension_is_a_usage_error(scores, tmp_path, name):
    path, _ = scores
    result = run("evaluate", path, "--det", tmp_path / name, ok=False)
    one_line_error(result, 2, "usage error", "--det", name, ".png, .pdf, .svg, .eps, .ps")
    assert not (tmp_path / name).exists()


def test_a_huge_cllr_is_printed_in_scientific_notation_and_the_table_stays_aligned(tmp_path):
    # scores of 1e300 on the wrong side: Cllr 7.2e299 bits (before: printed with 300 digits)
    path = write_scores(tmp_path / "bad.txt", [("a", "p1", -1e300, True), ("a", "p2", 0.5, True),
                                               ("a", "p3", 1e300, False), ("a", "p4", -2.0, False)])
    good = write_scores(tmp_path / "good.txt", [("a", "p1", 2.0, True), ("a", "p2", -1.0, False)])
    head, bad_row, good_row = run("evaluate", path, good, "--p-target", 0.01).stdout.splitlines()
    cllr = metrics.cllr([-1e300, 0.5], [1e300, -2.0])
    assert bad_row.split() == ["bad", "2", "2", "50.00", "1.0000", "50.5000",
                               f"{cllr:.2e}", "1.000"]
    assert good_row.split()[-2:] == [f"{metrics.cllr([2.0], [-1.0]):.3f}", "0.000"]
    assert len(head) == len(bad_row) == len(good_row)
    assert head.index("Cllr") + len("Cllr") == bad_row.index("e+299") + len("e+299")


def test_run_summary_prints_a_huge_cllr_in_scientific_notation():
    from emkit.cli._run import _table

    line = _table([{"system": "gmm", "condition": "clean", "eer": 0.125, "cllr": 2e300,
                    "min_cllr": 0.25}])
    assert line.split() == ["gmm", "clean", "EER", "12.50%", "Cllr", "2.00e+300", "min", "Cllr",
                            "0.250"]


@pytest.mark.parametrize("args", [("--p-target", "nan"), ("--p-target", 0.01, "--p-target", "nan"),
                                  ("--c-miss", "nan"), ("--c-fa", "inf")])
def test_a_cost_or_prior_that_is_not_finite_is_a_usage_error(scores, args):
    # before: click's ranges let NaN through; the library refused it: exit 1 naming p_target
    one_line_error(run("evaluate", scores[0], *args, ok=False), 2,
                   f"Invalid value for '{args[-2]}': must be a finite number; got {args[-1]}")


def test_one_key_for_several_score_files_is_read_once(scores, tmp_path, monkeypatch):
    # the key was read and parsed again for each unlabelled score file
    from emkit.io import key_files

    path, rows = scores
    key = tmp_path / "key.txt"
    key.write_text("".join(f"{m} {p} {'target' if t else 'nontarget'}\n"
                           for m, p, _, t in reversed(rows)))
    first, second = tmp_path / "a" / "dev.txt", tmp_path / "b" / "dev.txt"
    for out, part in ((first, rows[::2]), (second, rows[5:60])):  # other trials, other ids
        out.parent.mkdir()
        out.write_text("".join(f"{m} {p} {s!r}\n" for m, p, s, _ in part))
        write_scores(out.with_suffix(".labelled"), part)
    reads = []
    blocks = key_files.blocks
    monkeypatch.setattr(key_files, "blocks",
                        lambda file, *args: reads.append(str(file)) or blocks(file, *args))
    got = run("evaluate", first, second, "--key", key, "--by-model").stdout
    assert reads == [str(key)]
    expected = run("evaluate", first.with_suffix(".labelled"),
                   second.with_suffix(".labelled"), "--by-model").stdout
    assert got == expected  # (the rows named a/dev and b/dev in both)
