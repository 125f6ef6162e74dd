"""The ``emkit`` commands, run in-process with click's CliRunner on small real data.

Features come from the embedded Japanese Vowels data (4 speakers), written as a binary Kaldi
archive with its .scp (training and enrolment), an HDF5 file and a text Kaldi archive (probes).
"""

import os
import subprocess
import sys

import click
import h5py
import numpy as np
import pytest
from _parity import assert_parity
from click.testing import CliRunner

from emkit import GMMMachine, metrics
from emkit.cli import cli
from emkit.datasets import load_japanese_vowels
from emkit.features import read_scores
from cli_support import PROBES, SPEAKERS, no_leftovers, one_line_error, run  # noqa: F401
from feature_files import write_ark, write_scp, write_text_ark  # noqa: F401



def _eer(path):
    trials, values = read_scores(path)
    return metrics.eer(values[trials.labels], values[~trials.labels])


def test_train_ubm(data):
    ubm = GMMMachine.from_hdf5(data / "ubm.h5")
    assert ubm.means.shape == (8, 12) and np.isclose(ubm.weights.sum(), 1.0)
    again = run("train-ubm", data / "train.scp", "-n", 8, "--iterations", 10, "--seed", 1,
                "-o", data / "ubm2.h5", "--no-progress")
    assert "8 Gaussians x 12 features from 120 utterances" in again.stdout
    np.testing.assert_array_equal(GMMMachine.from_hdf5(data / "ubm2.h5").means, ubm.means)


def test_train_ubm_in_float32_is_close_to_float64(data):
    run("train-ubm", data / "train.scp", "-n", 8, "--iterations", 10, "--seed", 1,
        "--compute-dtype", "float32", "-o", data / "ubm32.h5", "--no-progress")
    ref, got = GMMMachine.from_hdf5(data / "ubm.h5"), GMMMachine.from_hdf5(data / "ubm32.h5")
    assert not np.array_equal(got.means, ref.means)
    assert got.compute_dtype == "float64"  # (the statistics computed from it: float64's)
    for name in ("means", "variances", "weights"):
        a, b = getattr(got, name), getattr(ref, name)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * np.abs(b).max(), err_msg=name)
    one_line_error(run("train-ubm", data / "train.scp", "--compute-dtype", "float16",
                       "-o", data / "x.h5", ok=False), 2, "--compute-dtype", "'float16'")
    assert not (data / "x.h5").exists()


def test_map_enroll_score_evaluate(data):
    d = data
    out = run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt",
              "-o", d / "map.h5")
    assert "4 gmm-map models from 120 utterances" in out.stdout
    run("score", *(d / p for p in PROBES), "--models", d / "map.h5", "-t", d / "trials",
        "-o", d / "map.txt")
    trials, values = read_scores(d / "map.txt")
    assert len(values) == 4 * 32 and trials.labels.sum() == 32
    assert (d / "trials").read_text().split()[:2] == (d / "map.txt").read_text().split()[:2]
    eer = _eer(d / "map.txt")
    assert eer < 0.5
    # scores without labels, evaluated with the key; a DET plot
    run("score", *(d / p for p in PROBES), "--models", d / "map.h5", "-t", d / "trials_nolabels",
        "-o", d / "map_nolabels.txt")
    assert read_scores(d / "map_nolabels.txt")[0].labels is None
    np.testing.assert_array_equal(read_scores(d / "map_nolabels.txt")[1], values)
    ev = run("evaluate", d / "map.txt", d / "map_nolabels.txt", "--key", d / "trials",
             "--det", d / "det.png")
    lines = ev.stdout.splitlines()
    assert lines[0].split()[:4] == ["scores", "targets", "non-tgt", "EER"]
    assert "minDCF(0.01)" in lines[0] and "actDCF(0.001)" in lines[0] and "minCllr" in lines[0]
    row = lines[1].split()
    assert row[0] == "map" and row[1:3] == ["32", "96"]
    assert float(row[3]) == pytest.approx(100 * eer, abs=0.006)
    assert lines[2].split()[0] == "map_nolabels" and lines[2].split()[1:] == row[1:]
    assert (d / "det.png").read_bytes()[:4] == b"\x89PNG"
    ev = run("evaluate", d / "map.txt", "--p-target", 0.5)
    assert "minDCF(0.5)" in ev.stdout and "minDCF(0.01)" not in ev.stdout


def test_isv_jfa_ivector_commands(data):
    d = data
    common = ("--no-progress", "--seed", 2)
    train = (d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk")
    run("train-isv", *train, "--rank-u", 2, "--iterations", 3, "-o", d / "isv.h5", *common)
    run("train-jfa", *train, "--rank-u", 2, "--rank-v", 2, "--iterations", 3, "-o", d / "jfa.h5",
        *common)
    out = run("train-ivector", *train, "--dim", 5, "--iterations", 3, "-o", d / "iv.h5", *common)
    assert "whitening, WCCN, PLDA" in out.stdout
    for machine, extra, name in (("isv.h5", (), "isv"), ("jfa.h5", (), "jfa"),
                                 ("iv.h5", ("--backend", "cosine"), "ivector-cosine"),
                                 ("iv.h5", ("--backend", "plda"), "ivector-plda")):
        out = run("enroll", d / "train.scp", "-m", d / machine, "-e", d / "spk2utt", *extra,
                  "-o", d / f"{name}_models.h5")
        assert f"4 {name} models" in out.stdout
        run("score", *(d / p for p in PROBES), "--models", d / f"{name}_models.h5",
            "-t", d / "trials", "-o", d / f"{name}.txt")
        assert _eer(d / f"{name}.txt") < 0.5, name
    # without labels: whitening only, and PLDA cannot be used
    out = run("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--dim", 4,
              "--iterations", 2, "-o", d / "iv_unsup.h5", *common)
    assert "and whitening from 120 utterances" in out.stdout
    bad = run("enroll", d / "train.scp", "-m", d / "iv_unsup.h5", "-e", d / "spk2utt",
              "--backend", "plda", "-o", d / "nope.h5", ok=False)
    one_line_error(bad, 2, "--backend plda does not apply", "iv_unsup.h5", "without PLDA")
    no_leftovers(d, "nope.h5")


def test_every_option_is_explained():
    for name, command in cli.commands.items():
        result = run(name, "--help")
        assert result.stdout.startswith(f"Usage: emkit {name} [OPTIONS]")
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help and len(param.help) > 10, (name, param.name)
    top = run("--help").stdout
    assert "Exit status" in top and "2  usage error" in top and "1  runtime failure" in top


# ---------------------------------------------------------------------------------------------
# bad input: one line on stderr, a non-zero status, no output file
# ---------------------------------------------------------------------------------------------


def test_missing_input_file(data):
    d = data
    result = run("score", d / "nothere.h5", "--models", d / "ubm.h5", "-t", d / "trials", "-o",
                 d / "s_missing.txt", ok=False)
    one_line_error(result, 2, "usage error", "nothere.h5", "does not exist")
    no_leftovers(d, "s_missing.txt")
    # a file named inside another one (the scp) is a runtime failure
    (d / "broken.scp").write_text(f"u1 {d / 'gone.ark'}:5\n")
    result = run("train-ubm", d / "broken.scp", "-n", 2, "-o", d / "u_missing.h5", ok=False)
    one_line_error(result, 1, "no such file", "gone.ark")
    no_leftovers(d, "u_missing.h5")


def test_wrong_feature_dimension(data):
    d = data
    np.savez(d / "wide.npz", spk1_s1_001=np.ones((10, 13)))
    result = run("enroll", d / "wide.npz", "-m", d / "ubm.h5", "-e", d / "spk2utt",
                 "-o", d / "m_wide.h5", ok=False)
    one_line_error(result, 1, "emkit enroll: error:", "wide.npz",
                   "has 13 features per frame; the model expects 12")
    no_leftovers(d, "m_wide.h5")


def test_unknown_model_and_probe(data):
    d = data
    run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt", "-o", d / "map_u.h5")
    # named by its line in the file (comments and blank lines counted), not its rank among trials
    (d / "t_unknown").write_text("# a comment\nspk1 spk1_s1_001 target\n\nspk9 spk1_s1_001 nontarget\n")
    result = run("score", *(d / p for p in PROBES), "--models", d / "map_u.h5",
                 "-t", d / "t_unknown", "-o", d / "s_unknown.txt", ok=False)
    one_line_error(result, 1, "emkit score: error:", "t_unknown' line 4: names model 'spk9'",
                   "not among the 4 models")
    (d / "t_probe").write_text("spk1 nobody target\n")
    result = run("score", *(d / p for p in PROBES), "--models", d / "map_u.h5", "-t", d / "t_probe",
                 "-o", d / "s_unknown.txt", ok=False)
    one_line_error(result, 1, "probe 'nobody'", "not in the features")
    no_leftovers(d, "s_unknown.txt")


def test_empty_trial_list(data):
    d = data
    run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt", "-o", d / "map_e.h5")
    (d / "t_empty").write_text("# no trials\n\n")
    result = run("score", *(d / p for p in PROBES), "--models", d / "map_e.h5", "-t", d / "t_empty",
                 "-o", d / "s_empty.txt", ok=False)
    one_line_error(result, 1, "t_empty", "the trial list is empty")
    no_leftovers(d, "s_empty.txt")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_directory_without_write_permission(data, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run("train-ubm", data / "train.scp", "-n", 2, "-o", locked / "ubm.h5", ok=False)
        one_line_error(result, 1, "no write permission", str(locked))
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


def test_directory_without_write_permission_simulated(data, tmp_path, monkeypatch):
    """As the test above, for root too: os.access reports the folder as not writable."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
        False if str(p) == str(locked) and mode & os.W_OK else real(p, mode, **kw)))
    for args in (("train-ubm", data / "train.scp", "-n", 2, "-o", locked / "ubm.h5"),
                 ("evaluate", data / "map.txt" if (data / "map.txt").exists() else data / "trials",
                  "--det", locked / "det.png"),
                 ("demo", "-o", locked)):
        result = run(*args, ok=False)
        one_line_error(result, 1, "no write permission", str(locked))
    assert os.listdir(locked) == []


def test_failure_while_writing_leaves_no_file(data, monkeypatch):
    """The rename of the finished temporary file fails: no partial file, no temporary file."""
    d = data
    run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt", "-o", d / "map_w.h5")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(os, "replace", refuse)
    result = run("score", *(d / p for p in PROBES), "--models", d / "map_w.h5", "-t", d / "trials",
                 "-o", d / "s_w.txt", ok=False)
    one_line_error(result, 1, "Permission denied", "s_w.txt")
    result = run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt",
                 "-o", d / "m_w.h5", ok=False)
    one_line_error(result, 1, "Permission denied")
    no_leftovers(d, "s_w.txt", "m_w.h5")


def test_usage_errors(data):
    d = data
    one_line_error(run("score", "--bogus", ok=False), 2, "usage error", "--bogus")
    one_line_error(run("frobnicate", ok=False), 2, "usage error", "frobnicate")
    one_line_error(run("train-ubm", "-o", d / "x.h5", ok=False), 2, "no feature file given")
    one_line_error(run("train-ubm", d / "train.scp", "-n", 0, "-o", d / "x.h5", ok=False), 2,
                   "--gaussians")
    no_leftovers(d, "x.h5")


def test_other_runtime_errors(data):
    d = data
    one_line_error(run("evaluate", d / "trials", ok=False), 1, "line 1: the score must be a number")
    write_nolabel = d / "nolabel.txt"
    write_nolabel.write_text("a b 1.0\n")
    one_line_error(run("evaluate", write_nolabel, ok=False), 1, "no label column")
    one_line_error(run("enroll", d / "train.scp", "-m", d / "trials", "-e", d / "spk2utt", "-o",
                       d / "y.h5", ok=False), 1, "emkit enroll: error:")
    (d / "spk2utt_bad").write_text("spkX nobody\n")
    one_line_error(run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt_bad", "-o",
                       d / "y.h5", ok=False), 1, "utterance 'nobody' of model 'spkX'")
    one_line_error(run("train-ubm", d / "train.scp", "-n", 5000, "-o", d / "y.h5", ok=False), 1,
                   "cannot train 5000 Gaussians")
    no_leftovers(d, "y.h5")


# ---------------------------------------------------------------------------------------------
# the demo
# ---------------------------------------------------------------------------------------------


def test_demo_command_is_reproducible_across_processes(tmp_path):
    result = run("demo", "-o", tmp_path / "a", "--seed", 5, "--no-progress")
    out = result.stdout
    assert "Protocol: UCI Japanese Vowels" in out and "Finished in" in out
    table = out[out.index("system "):].splitlines()
    rows = [line for line in table[1:6]]
    assert [r.split()[0] for r in rows] == ["GMM-MAP,", "ISV", "JFA", "i-vector,", "i-vector,"]
    for r in rows:
        eer = float(r.split()[-3])
        assert 0 < eer < 45, r   # percent; chance is 50
    # hyper-parameters chosen by cross-validation on session 0 (scripts/): 9 speakers are easy
    eers = {r.split()[0]: float(r.split()[-3]) for r in rows}
    assert eers["GMM-MAP,"] < 12 and eers["ISV"] < 13, rows
    assert max(float(r.split()[-3]) for r in rows[3:]) < 8, rows   # both i-vector systems
    assert table[6].startswith("note: JFA is weak here for lack of speakers"), table[6]
    code = ("import sys; from emkit.cli import main; "
            f"main(['demo', '-o', {str(tmp_path / 'b')!r}, '--seed', '5', '--no-progress'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in sorted(os.listdir(tmp_path / "a" / "scores")):
        a, b = (tmp_path / run_dir / "scores" / name for run_dir in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), name
    assert proc.stdout.split("Finished")[0] == out.split("Finished")[0]


def test_feature_list_of_npy_files_gives_the_same_models(data, tmp_path):
    from emkit.experiment import EnrolledModels
    from emkit.features import read_kaldi_scp

    d = data
    run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt", "-o", d / "map_l.h5")
    names = []
    for key, M in read_kaldi_scp(d / "train.scp").items():  # one .npy per utterance
        np.save(tmp_path / f"{key}.npy", M)
        names.append(str(tmp_path / f"{key}.npy"))
    (tmp_path / "list").write_text("\n".join(names) + "\n")
    run("enroll", "--feature-list", tmp_path / "list", "-m", d / "ubm.h5", "-e", d / "spk2utt",
        "-o", tmp_path / "m.h5")
    a, b = EnrolledModels.from_hdf5(d / "map_l.h5"), EnrolledModels.from_hdf5(tmp_path / "m.h5")
    assert a.model_ids == b.model_ids == ["spk1", "spk2", "spk3", "spk4"]
    np.testing.assert_array_equal(a.arrays["means"], b.arrays["means"])


def test_enrolment_and_scoring_in_blocks_give_the_same_results(data, tmp_path, monkeypatch):
    """Statistics are held for a bounded number of utterances at a time: same numbers."""
    from emkit import experiment
    from emkit.experiment import EnrolledModels

    d = data
    run("train-isv", d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk",
        "--rank-u", 2, "--iterations", 2, "-o", tmp_path / "isv.h5")
    for machine in (tmp_path / "isv.h5", d / "ubm.h5"):
        run("enroll", d / "train.scp", "-m", machine, "-e", d / "spk2utt", "-o", tmp_path / "a.h5")
        run("score", *(d / p for p in PROBES), "--models", tmp_path / "a.h5", "-t", d / "trials",
            "-o", tmp_path / "a.txt")
        with monkeypatch.context() as m:
            m.setattr(experiment._trials, "stats_per_block", lambda ubm, budget_bytes=0: 7)
            run("enroll", d / "train.scp", "-m", machine, "-e", d / "spk2utt",
                "-o", tmp_path / "b.h5")
            run("score", *(d / p for p in PROBES), "--models", tmp_path / "b.h5",
                "-t", d / "trials", "-o", tmp_path / "b.txt")
        a, b = (EnrolledModels.from_hdf5(tmp_path / f"{x}.h5") for x in "ab")
        for key in a.arrays:
            assert_parity(b.arrays[key], a.arrays[key], tol=1e-12)
        scores_a, scores_b = (read_scores(tmp_path / f"{x}.txt")[1] for x in "ab")
        assert_parity(scores_b, scores_a, tol=1e-10)


def _library_inputs(d):
    from emkit.features import read_feature_sources, read_id_lists, read_trials

    features = read_feature_sources([d / "train.scp", *(d / p for p in PROBES)])
    return features, read_id_lists(d / "spk2utt"), read_trials(d / "trials")


def test_python_enrolment_and_score_trials_equal_the_cli_score_file(data, tmp_path):
    """enroll_lists + score_trials without the CLI: the very numbers of 'emkit score'."""
    from emkit.experiment import EnrolledModels, enroll_lists, load_machine, score_trials

    d = data
    run("train-isv", d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk",
        "--rank-u", 2, "--iterations", 2, "-o", tmp_path / "isv.h5")
    features, lists, trials = _library_inputs(d)
    for machine in (d / "ubm.h5", tmp_path / "isv.h5"):
        run("enroll", d / "train.scp", "-m", machine, "-e", d / "spk2utt", "-o", tmp_path / "m.h5")
        run("score", *(d / p for p in PROBES), "--models", tmp_path / "m.h5", "-t", d / "trials",
            "-o", tmp_path / "s.txt")
        models = enroll_lists(load_machine(machine), lists, features)
        cli_models = EnrolledModels.from_hdf5(tmp_path / "m.h5")
        assert models.system == cli_models.system and models.model_ids == cli_models.model_ids
        for key in cli_models.arrays:
            np.testing.assert_array_equal(models.arrays[key], cli_models.arrays[key])
        got = score_trials(models, trials, features)
        pairs = score_trials(models, list(zip(trials.models, trials.probes)), features)
        file_trials, expected = read_scores(tmp_path / "s.txt")
        assert file_trials.models == trials.models and file_trials.probes == trials.probes
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(pairs, expected)


def test_score_trials_refuses_unknown_models_and_probes(data):
    from emkit.experiment import enroll_lists, load_machine, score_trials

    features, lists, trials = _library_inputs(data)
    models = enroll_lists(load_machine(data / "ubm.h5"), lists, features)
    with pytest.raises(ValueError, match="trial 1 names model 'nobody'"):
        score_trials(models, [("nobody", trials.probes[0])], features)
    with pytest.raises(ValueError, match="trial 2 names probe 'gone'"):
        score_trials(models, [("spk1", trials.probes[0]), ("spk1", "gone")], features)
    with pytest.raises(ValueError, match="model 'spk9': utterance 'gone' is not in features"):
        enroll_lists(load_machine(data / "ubm.h5"), {"spk9": ["gone"]}, features)
    long_id = "x" * 100_000  # an id is shown by its first 80 characters only
    for call in (lambda: score_trials(models, [(long_id, trials.probes[0])], features),
                 lambda: score_trials(models, [("spk1", long_id)], features),
                 lambda: enroll_lists(load_machine(data / "ubm.h5"), {long_id: [long_id]}, features)):
        with pytest.raises(ValueError) as info:
            call()
        assert "x" * 81 not in str(info.value) and len(str(info.value)) < 300
    with pytest.raises(ValueError, match="norm and cohort go together"):
        score_trials(models, trials, features, norm="z")


def test_gselect_options_select_gaussians_in_train_enroll_and_score(data, tmp_path):
    """--gselect K on train-isv, enroll and score: the numbers of the same steps run in
    emkit.config_context(gselect_top_k=K); exact statistics without it."""
    import emkit
    from emkit import ISVMachine
    from emkit.experiment import enroll_lists, load_machine, score_trials

    d = data
    train = (d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk", "--rank-u", 2,
             "--iterations", 2, "--no-progress")
    selection = ("--gselect", 2, "--min-posterior", 0.05)
    run("train-isv", *train, *selection, "-o", tmp_path / "isv_sel.h5")
    run("train-isv", *train, "-o", tmp_path / "isv.h5")
    run("enroll", d / "train.scp", "-m", tmp_path / "isv_sel.h5", "-e", d / "spk2utt",
        *selection, "-o", tmp_path / "m.h5")
    same = run("score", *(d / p for p in PROBES), "--models", tmp_path / "m.h5", "-t", d / "trials",
               *selection, "-o", tmp_path / "s.txt")
    assert "warning" not in same.stderr
    # scoring with another selection than enrolment's says so (the scores silently differed)
    other = run("score", *(d / p for p in PROBES), "--models", tmp_path / "m.h5", "-t", d / "trials",
                "-o", tmp_path / "s_exact.txt")
    assert ("m.h5: the models were enrolled with --gselect 2 --min-posterior 0.05, the probes get exact "
            "statistics: scores differ") in other.stderr, other.stderr
    features, lists, trials = _library_inputs(d)
    with emkit.config_context(gselect_top_k=2, gselect_min_posterior=0.05):
        machine = load_machine(tmp_path / "isv_sel.h5")
        expected = score_trials(enroll_lists(machine, lists, features), trials, features)
    exact_scores = score_trials(enroll_lists(machine, lists, features), trials, features)
    _, got = read_scores(tmp_path / "s.txt")
    np.testing.assert_array_equal(got, expected)
    selected, exact = ISVMachine.from_hdf5(tmp_path / "isv_sel.h5"), \
        ISVMachine.from_hdf5(tmp_path / "isv.h5")
    assert np.max(np.abs(selected.U - exact.U)) > 1e-6  # the selection changed the statistics
    assert np.max(np.abs(exact_scores - expected)) > 1e-6
    bad = run("train-isv", *train, "--gselect", 99, "-o", tmp_path / "nope.h5", ok=False)
    one_line_error(bad, 2, "'--gselect': must be in [1, 8] (the UBM has 8 Gaussians); got 99")
    bad = run("score", *(d / p for p in PROBES), "--models", tmp_path / "m.h5", "-t",
              d / "trials", "--min-posterior", 0.1, "-o", tmp_path / "nope.txt", ok=False)
    one_line_error(bad, 2, "--min-posterior needs --gselect")
    no_leftovers(tmp_path, "nope.h5", "nope.txt")
