"""``emkit score --norm/--cohort/--top-n``: normalised scores equal emkit.score_norm applied to the
raw matrices that plain ``enroll``/``score`` give, and the options' bad values."""

import h5py
import numpy as np
import pytest

from emkit import score_norm
from emkit.datasets import load_japanese_vowels
from emkit.features import read_scores
from cli_support import PROBES, no_leftovers, one_line_error, run

COHORT_SPEAKERS = (5, 6, 7, 8)


@pytest.fixture(scope="module")
def norm_data(data):  # noqa: F811
    d = data
    jv = load_japanese_vowels()
    cohort = {s: [jv.utterance_ids[i] for i in jv.indices(session=0, speaker=s)[:3]]
              for s in COHORT_SPEAKERS}
    with h5py.File(d / "cohort.h5", "w") as f:
        for i in (i for s in COHORT_SPEAKERS for i in jv.indices(session=0, speaker=s)[:3]):
            f[jv.utterance_ids[i]] = jv.utterances[i]
    (d / "cohort.lst").write_text("".join(f"c{s} {' '.join(us)}\n" for s, us in cohort.items()))
    run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt", "-o", d / "nmap.h5")
    run("enroll", d / "cohort.h5", "-m", d / "ubm.h5", "-e", d / "cohort.lst",
        "-o", d / "cohort_models.h5")
    probes = [line.split()[1] for line in (d / "trials").read_text().splitlines()][:32]
    models = [f"spk{s}" for s in (1, 2, 3, 4)]
    z_ids = [u for us in cohort.values() for u in us]

    def matrix(model_file, rows, cols, name):
        (d / f"{name}.trials").write_text("".join(f"{m} {p}\n" for m in rows for p in cols))
        run("score", *(d / p for p in PROBES), d / "cohort.h5", "--models", d / model_file,
            "-t", d / f"{name}.trials", "-o", d / f"{name}.txt")
        return read_scores(d / f"{name}.txt")[1].reshape(len(rows), len(cols))

    raw = {"scores": matrix("nmap.h5", models, probes, "m_p"),
           "model_cohort": matrix("nmap.h5", models, z_ids, "m_z"),
           "cohort_probe": matrix("cohort_models.h5", list(map("c{}".format, COHORT_SPEAKERS)),
                                  probes, "t_p"),
           "cohort_cohort": matrix("cohort_models.h5", list(map("c{}".format, COHORT_SPEAKERS)),
                                   z_ids, "t_z")}
    raw["same"] = np.repeat(np.eye(4, dtype=bool), 3, axis=1)
    return d, raw


def normalised(d, *options, trials="m_p.trials"):
    out = d / "normed.txt"
    result = run("score", *(d / p for p in PROBES), d / "cohort.h5", "--models", d / "nmap.h5",
                 "-t", d / trials, "--cohort", d / "cohort.lst", "-o", out, *options)
    return result, read_scores(out)[1].reshape(4, -1)


@pytest.mark.parametrize("norm", ["z", "t", "zt", "s", "as"])
def test_normalised_scores_equal_the_library_on_the_raw_matrices(norm_data, norm):
    d, raw = norm_data
    s, z, t = raw["scores"], raw["model_cohort"], raw["cohort_probe"]
    expected = {"z": lambda: score_norm.znorm(s, z),
                "t": lambda: score_norm.tnorm(s, t),
                "zt": lambda: score_norm.ztnorm(s, z, t, raw["cohort_cohort"], raw["same"]),
                "s": lambda: score_norm.snorm(s, z, t),
                "as": lambda: score_norm.adaptive_snorm(s, z, t, top_n=3)}[norm]()
    options = ("--norm", norm) + (("--top-n", 3) if norm == "as" else ())
    result, got = normalised(d, *options)
    assert f"{norm}-norm with 4 cohort models" in result.stdout
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    assert not np.allclose(got, s)


def test_normalisation_in_probe_blocks_is_the_same(norm_data, monkeypatch):
    from emkit import experiment
    d, raw = norm_data
    _, whole = normalised(d, "--norm", "as", "--top-n", 3)
    monkeypatch.setattr(experiment._trials, "stats_per_block", lambda ubm, budget_bytes=0: 5)
    _, blocks = normalised(d, "--norm", "as", "--top-n", 3)
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-12 * np.abs(whole).max())


def test_norm_option_errors(norm_data):
    d, _ = norm_data
    base = ("score", *(d / p for p in PROBES), d / "cohort.h5", "--models", d / "nmap.h5",
            "-t", d / "trials", "-o", d / "bad.txt")
    one_line_error(run(*base, "--norm", "z", ok=False), 2, "--norm z needs --cohort")
    one_line_error(run(*base, "--cohort", d / "cohort.lst", ok=False), 2,
                   "--cohort does not apply without --norm")
    one_line_error(run(*base, "--norm", "s", "--cohort", d / "cohort.lst", "--top-n", 5,
                       ok=False), 2, "--top-n does not apply", "--norm is s")
    one_line_error(run(*base, "--norm", "x", "--cohort", d / "cohort.lst", ok=False), 2,
                   "--norm")
    one_line_error(run(*base, "--norm", "as", "--cohort", d / "cohort.lst", "--top-n", 1,
                       ok=False), 2, "--top-n")
    one_line_error(run(*base, "--norm", "z", "--cohort", d / "missing.lst", ok=False), 2,
                   "--cohort", "missing.lst")
    (d / "cohort_bad.lst").write_text("c1 nobody\n")
    one_line_error(run(*base, "--norm", "z", "--cohort", d / "cohort_bad.lst", ok=False), 1,
                   "cohort_bad.lst", "utterance 'nobody' of cohort model 'c1'")
    (d / "cohort_one.lst").write_text((d / "cohort.lst").read_text().splitlines()[0] + "\n")
    one_line_error(run(*base, "--norm", "t", "--cohort", d / "cohort_one.lst", ok=False), 1,
                   "cohort_one.lst", "at least 2 cohort models")
    (d / "cohort_empty.lst").write_text("\n")
    one_line_error(run(*base, "--norm", "z", "--cohort", d / "cohort_empty.lst", ok=False), 1,
                   "cohort_empty.lst")
    one_line_error(run(*base[:-1], d / "cohort.lst", "--norm", "z", "--cohort", d / "cohort.lst",
                       ok=False), 2, "refusing to overwrite an input")
    no_leftovers(d, "bad.txt")


@pytest.mark.parametrize("norm", ["zt", "as"])
def test_score_trials_with_a_cohort_equals_the_cli(norm_data, norm):
    """emkit.experiment.score_trials(norm=, cohort=) in Python: the numbers of 'emkit score'."""
    from emkit.experiment import EnrolledModels, score_trials
    from emkit.features import read_feature_sources, read_id_lists, read_trials

    d, _ = norm_data
    options = ("--norm", norm) + (("--top-n", 3) if norm == "as" else ())
    _, expected = normalised(d, *options)
    features = read_feature_sources([*(d / p for p in PROBES), d / "cohort.h5"])
    got = score_trials(EnrolledModels.from_hdf5(d / "nmap.h5"), read_trials(d / "m_p.trials"),
                       features, norm=norm, cohort=read_id_lists(d / "cohort.lst"),
                       top_n=3 if norm == "as" else None)
    np.testing.assert_array_equal(got.reshape(4, -1), expected)


@pytest.mark.parametrize("norm", ["zt", "s"])
def test_the_order_of_the_cohort_lines_changes_no_score(norm_data, norm):
    # the cohort models were enrolled, and their utterances scored and summed, in the order of
    # the list's lines: the same cohort listed in another order gave scores that differed by
    # rounding (emkit run takes its cohort in id order, and so does the command)
    d, _ = norm_data
    lines = (d / "cohort.lst").read_text().splitlines()
    (d / "cohort_reordered.lst").write_text("\n".join(lines[1::2] + lines[::2][::-1]) + "\n")
    in_order, reordered = d / "in_order.txt", d / "reordered.txt"
    for cohort, out in (("cohort.lst", in_order), ("cohort_reordered.lst", reordered)):
        run("score", *(d / p for p in PROBES), d / "cohort.h5", "--models", d / "nmap.h5",
            "-t", d / "m_p.trials", "--cohort", d / cohort, "-o", out, "--norm", norm)
    assert reordered.read_bytes() == in_order.read_bytes()
