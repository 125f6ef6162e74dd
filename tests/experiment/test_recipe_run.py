"""``emkit run``: the runner's skip logic on a tiny audio experiment, and what the steps write."""

import json
import logging
import os
import shutil

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

import soundfile as sf  # noqa: E402

from emkit import GMMMachine, score_norm  # noqa: E402
from emkit.calibration_io import load_calibration  # noqa: E402
from emkit.cli import cli  # noqa: E402
from emkit.features import read_scores  # noqa: E402
from emkit.recipe import (FunctionStep, RecipeError, Runner, Step, WorkDirBusy,  # noqa: E402
                          run_recipe)
from emkit.recipe._scoring import read_npz  # noqa: E402
from recipe_data import RATE, make_project, voice  # noqa: E402


ALL = ["features:train", "features:test", "features:cohort", "ubm", "train:isv",
       "score:gmm:dev", "score:gmm:eval", "score:isv:dev", "score:isv:eval", "norm:gmm:dev",
       "norm:gmm:eval", "norm:isv:dev", "norm:isv:eval", "calibrate:gmm", "calibrate:isv",
       "evaluate"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe") / "p"
    recipe = make_project(root)
    results, report = run_recipe(recipe)
    shutil.copytree(root, root.with_name("pristine"))
    return root, results, report


@pytest.fixture()
def project(first_run):
    """The project as after its first run (stamps and outputs), at the same path (the .scp
    files name their archives by absolute path)."""
    root = first_run[0]
    shutil.rmtree(root)
    shutil.copytree(root.with_name("pristine"), root)
    return root


def ran(results):
    return [r.name for r in results if r.status == "run"]


def test_first_run_runs_every_step_in_order(first_run):
    root, results, report = first_run
    assert [r.name for r in results] == ALL and ran(results) == ALL
    assert not (root / "work" / ".checkpoints").exists()  # the training steps' checkpoints: gone
    text = report.read_text()
    assert "| gmm | eval | eval.cal.txt | 3 | 6 | " in text and "| evaluate | run |" in text
    assert (root / "work" / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_skips_every_step(project):
    before = (project / "work" / "systems" / "isv" / "eval.cal.txt").read_bytes()
    results, report = run_recipe(project / "recipe.toml")
    assert ran(results) == [] and len(results) == len(ALL)
    assert (project / "work" / "systems" / "isv" / "eval.cal.txt").read_bytes() == before
    assert "| evaluate | skipped |" in report.read_text()


def test_force_runs_every_step(project):
    assert ran(run_recipe(project / "recipe.toml", force=True)[0]) == ALL


def edit(project, old, new):
    path = project / "recipe.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_norm_parameter_reruns_only_normalisation_and_after(project):
    edit(project, 'method = "s"', 'method = "z"')
    assert ran(run_recipe(project / "recipe.toml")[0]) == [
        "norm:gmm:dev", "norm:gmm:eval", "norm:isv:dev", "norm:isv:eval", "calibrate:gmm",
        "calibrate:isv", "evaluate"]


def test_system_parameter_reruns_only_that_system(project):
    edit(project, "rank_u = 2", "rank_u = 1")
    assert ran(run_recipe(project / "recipe.toml")[0]) == [
        "train:isv", "score:isv:dev", "score:isv:eval", "norm:isv:dev", "norm:isv:eval",
        "calibrate:isv", "evaluate"]


def _stop_after_saving(monkeypatch, owner, step):
    """Make the training of ``owner`` stop (as after Ctrl-C) once its checkpoint of ``step``
    iterations is saved."""
    from emkit import _checkpoint

    save = _checkpoint.Checkpoint.save

    def save_then_stop(self, saved_step, *args, **kwargs):
        save(self, saved_step, *args, **kwargs)
        if self.owner == owner and saved_step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(_checkpoint.Checkpoint, "save", save_then_stop)


def test_an_interrupted_training_step_resumes_at_its_last_iteration(project, monkeypatch, caplog):
    """A recipe's training steps started again from their first iteration after Ctrl-C or a
    scheduler's SIGTERM (hours of a UBM or a T matrix at production sizes)."""
    work = project / "work"
    ubm, isv = (work / "ubm.h5").read_bytes(), (work / "systems" / "isv" / "machine.h5").read_bytes()
    (work / "ubm.h5").unlink()
    (work / "systems" / "isv" / "machine.h5").unlink()
    _stop_after_saving(monkeypatch, "GMMMachine", 2)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(project / "recipe.toml")
    assert sorted(os.listdir(work / ".checkpoints")) == ["ubm.h5", "ubm.kmeans.h5"]
    monkeypatch.undo()
    _stop_after_saving(monkeypatch, "ISVMachine", 1)
    with caplog.at_level(logging.INFO, logger="emkit"), pytest.raises(KeyboardInterrupt):
        run_recipe(project / "recipe.toml")
    assert "GMMMachine: resuming from checkpoint" in caplog.text
    assert "after 2 completed iteration" in caplog.text
    assert os.listdir(work / ".checkpoints") == ["train.isv.h5"]
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emkit"):
        results = run_recipe(project / "recipe.toml")[0]
    assert "ISVMachine: resuming from checkpoint" in caplog.text
    # the same models as the uninterrupted run, to the byte: the steps after them are skipped
    assert (work / "ubm.h5").read_bytes() == ubm
    assert (work / "systems" / "isv" / "machine.h5").read_bytes() == isv
    assert ran(results) == ["train:isv"] and not (work / ".checkpoints").exists()


def test_checkpoint_of_a_step_since_edited_is_discarded(project, monkeypatch, caplog):
    (project / "work" / "ubm.h5").unlink()
    _stop_after_saving(monkeypatch, "GMMMachine", 1)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(project / "recipe.toml")
    monkeypatch.undo()
    edit(project, "iterations = 3", "iterations = 4")
    with caplog.at_level(logging.INFO, logger="emkit"):
        results = run_recipe(project / "recipe.toml")[0]
    assert "ubm" in ran(results) and "starting afresh" in caplog.text
    assert "resuming" not in caplog.text
    assert not (project / "work" / ".checkpoints").exists()


def test_gaussian_selection_reruns_the_statistics_steps_not_the_ubm(project):
    raw = (project / "work" / "systems" / "isv" / "eval.raw.txt").read_text()
    edit(project, "kmeans_iterations = 3", "kmeans_iterations = 3\ngselect = 1")
    assert ran(run_recipe(project / "recipe.toml")[0]) == [
        "train:isv", "score:gmm:dev", "score:gmm:eval", "score:isv:dev", "score:isv:eval",
        "norm:gmm:dev", "norm:gmm:eval", "norm:isv:dev", "norm:isv:eval", "calibrate:gmm",
        "calibrate:isv", "evaluate"]
    assert (project / "work" / "systems" / "isv" / "eval.raw.txt").read_text() != raw


def test_float32_ubm_reruns_the_ubm_and_its_dependants_float64_reruns_nothing(project):
    edit(project, "kmeans_iterations = 3", 'kmeans_iterations = 3\ncompute_dtype = "float64"')
    assert ran(run_recipe(project / "recipe.toml")[0]) == []  # (the stamps written without it)
    before = GMMMachine.from_hdf5(project / "work" / "ubm.h5")
    edit(project, 'compute_dtype = "float64"', 'compute_dtype = "float32"')
    assert ran(run_recipe(project / "recipe.toml")[0]) == [n for n in ALL if n[:9] != "features:"]
    after = GMMMachine.from_hdf5(project / "work" / "ubm.h5")
    assert not np.array_equal(after.means, before.means)
    np.testing.assert_allclose(after.means, before.means, rtol=0,
                               atol=1e-3 * np.abs(before.means).max())


def test_whole_numbers_for_float_feature_options_rerun_nothing(project):
    # before: sample_frequency = 16000 (the default, 16000.0) was stamped as 16000, and emkit
    # run recomputed the features of every data set (to the same archives)
    edit(project, "num_ceps = 13", "num_ceps = 13\nsample_frequency = 16000\nframe_length = 25\n"
                                   "energy_floor = 0\nvad_energy_threshold = 5")
    assert ran(run_recipe(project / "recipe.toml")[0]) == []
    edit(project, "frame_length = 25", "frame_length = 25.0")
    assert ran(run_recipe(project / "recipe.toml")[0]) == []


def test_dithered_features_of_a_stamp_from_random_dither_days_are_recomputed(project):
    # kaldi-native-fbank dithered at random before: a stamp written then is of features no rerun
    # gives; the stamp of a dithered features step now says how its noise is drawn
    edit(project, "num_ceps = 13", "num_ceps = 13\ndither = 1")
    assert ran(run_recipe(project / "recipe.toml")[0])[:3] == [n for n in ALL if "features:" in n]
    archive = (project / "work" / "features" / "test.ark").read_bytes()
    for path in (project / "work" / ".stamps").glob("features_*.json"):
        stamp = json.loads(path.read_text())
        params = json.loads(stamp["params"])
        del params["dither_noise"]
        stamp["params"] = json.dumps(params, sort_keys=True)
        path.write_text(json.dumps(stamp))
    assert ran(run_recipe(project / "recipe.toml")[0]) == [n for n in ALL if "features:" in n]
    assert (project / "work" / "features" / "test.ark").read_bytes() == archive  # seeded
    assert ran(run_recipe(project / "recipe.toml")[0]) == []


def test_a_dither_seed_reruns_the_features_only_where_it_changes_their_noise(project):
    features = [n for n in ALL if "features:" in n]
    test_ark = project / "work" / "features" / "test.ark"
    edit(project, "num_ceps = 13", "num_ceps = 13\ndither_seed = 3")
    assert ran(run_recipe(project / "recipe.toml")[0]) == []  # no dither: no noise to seed
    edit(project, "dither_seed = 3", "dither = 1")
    assert ran(run_recipe(project / "recipe.toml")[0])[:3] == features
    unseeded = test_ark.read_bytes()
    edit(project, "dither = 1", "dither = 1\ndither_seed = 0")  # 0: the noise of before the key
    assert ran(run_recipe(project / "recipe.toml")[0]) == []
    edit(project, "dither_seed = 0", "dither_seed = 3")
    assert ran(run_recipe(project / "recipe.toml")[0])[:3] == features
    assert test_ark.read_bytes() != unseeded


def test_ubm_threshold_zero_runs_every_iteration_without_a_convergence_warning(project):
    edit(project, "kmeans_iterations = 3", "kmeans_iterations = 3\nthreshold = 1e-5")
    assert ran(run_recipe(project / "recipe.toml")[0]) == []  # the default: the stamps stay valid
    edit(project, "threshold = 1e-5", "threshold = 0.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "ubm" in ran(run_recipe(project / "recipe.toml")[0])
    assert not [w for w in caught if "GMM ML did not converge" in str(w.message)]
    assert "4 Gaussians from" in (project / "work" / "report.md").read_text()
    assert "3 EM iterations" in (project / "work" / "report.md").read_text()


def test_changed_audio_file_reruns_its_dependants(project):
    wav = project / "data" / "test" / "wav" / "spk9-s1.wav"
    sf.write(wav, voice(9, 1) + 0.02 * np.random.default_rng(7).standard_normal(9600), RATE,
             subtype="PCM_16")
    # spk9 is an eval probe: the dev condition's score matrices come out byte-identical, so
    # its normalisation is not re-run (content hashes, not times)
    assert ran(run_recipe(project / "recipe.toml")[0]) == [
        "features:test", "score:gmm:dev", "score:gmm:eval", "score:isv:dev", "score:isv:eval",
        "norm:gmm:eval", "norm:isv:eval", "calibrate:gmm", "calibrate:isv", "evaluate"]


def test_touched_but_unchanged_file_reruns_nothing(project):
    wav = project / "data" / "train" / "wav" / "spk0-s0.wav"
    os.utime(wav, ns=(1, 1))
    assert ran(run_recipe(project / "recipe.toml")[0]) == []


def test_changed_trial_list_reruns_its_condition(project):
    trials = project / "eval.trials"
    trials.write_text("".join(trials.read_text().splitlines(keepends=True)[:-1]))
    assert ran(run_recipe(project / "recipe.toml")[0]) == [
        "score:gmm:eval", "score:isv:eval", "norm:gmm:eval", "norm:isv:eval", "calibrate:gmm",
        "calibrate:isv", "evaluate"]


def test_deleted_or_edited_output_reruns_its_step(project):
    (project / "work" / "systems" / "gmm" / "dev.norm.txt").unlink()
    (project / "work" / "ubm.h5").write_bytes(b"tampered")
    results = run_recipe(project / "recipe.toml")[0]
    # an output that is missing or not what the step wrote makes the step run again
    assert "ubm" in ran(results) and "norm:gmm:dev" in ran(results)
    assert (project / "work" / "systems" / "gmm" / "dev.norm.txt").is_file()


def test_the_features_step_writes_utt2num_frames_as_emkit_features_does(first_run):
    # before: the recipe wrote features/SET.ark and .scp only, emkit features utt2num_frames too
    from emkit.features import read_features

    features = first_run[0] / "work" / "features"
    for name in ("train", "test", "cohort"):
        feats = read_features(features / f"{name}.scp")
        lines = (features / f"{name}.utt2num_frames").read_text().splitlines()
        assert [line.split() for line in lines] == [[key, str(matrix.shape[0])]
                                                    for key, matrix in feats.items()]
    assert not [n for n in os.listdir(features) if n.startswith(".emkit-")]


def test_a_deleted_utt2num_frames_reruns_only_its_features_step(project):
    (project / "work" / "features" / "test.utt2num_frames").unlink()
    assert ran(run_recipe(project / "recipe.toml")[0]) == ["features:test"]
    assert (project / "work" / "features" / "test.utt2num_frames").is_file()


def test_failed_step_leaves_it_out_of_date(tmp_path):
    out = tmp_path / "out.txt"
    calls = []

    def fail(ctx):
        calls.append(1)
        raise RuntimeError("boom")

    def ok(ctx):
        calls.append(2)
        out.write_text("x")
        return "done"

    step = FunctionStep("one", fail, list, {"a": 1}, [out])
    assert isinstance(step, Step)
    with pytest.raises(RuntimeError, match="boom"):
        Runner(tmp_path / "w").run([step], None)
    step.run_fn = ok
    assert [r.status for r in Runner(tmp_path / "w").run([step], None)] == ["run"]
    assert [r.status for r in Runner(tmp_path / "w").run([step], None)] == ["skipped"]
    step.param_values = {"a": 2}
    assert [r.status for r in Runner(tmp_path / "w").run([step], None)] == ["run"]
    assert calls == [1, 2, 2]


def test_second_run_on_the_same_work_dir_is_refused_while_the_first_runs(tmp_path):
    out, inner = tmp_path / "out.txt", tmp_path / "inner.txt"
    refused = []

    def nested(ctx):
        try:  # a second run while this one holds the work directory
            Runner(tmp_path / "w").run([FunctionStep("two", lambda c: inner.write_text("y"),
                                                     list, {}, [inner])], None)
        except WorkDirBusy as exc:
            refused.append(str(exc))
        out.write_text("x")

    Runner(tmp_path / "w").run([FunctionStep("one", nested, list, {}, [out])], None)
    assert len(refused) == 1 and "in use by another emkit run" in refused[0]
    assert str(tmp_path / "w") in refused[0] and not inner.exists()

    def fail(ctx):
        raise RuntimeError("boom")

    # released when the first run ends, also when it fails
    with pytest.raises(RuntimeError, match="boom"):
        Runner(tmp_path / "w").run([FunctionStep("bad", fail, list, {}, [out])], None)
    assert [r.status for r in Runner(tmp_path / "w").run(
        [FunctionStep("two", lambda c: inner.write_text("y"), list, {}, [inner])], None)] == ["run"]


def test_normalised_and_calibrated_scores(first_run):
    root = first_run[0]
    d = root / "work" / "systems" / "isv"
    arrays = read_npz(d / "eval.npz")
    expected = score_norm.snorm(arrays["scores"], arrays["model_cohort"],
                                arrays["cohort_probe"])[arrays["rows"], arrays["cols"]]
    trials, normed = read_scores(d / "eval.norm.txt")
    np.testing.assert_allclose(normed, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert arrays["model_cohort"].shape == (3, 6) and arrays["cohort_probe"].shape == (3, 3)
    cal = load_calibration(d / "calibration.json")
    _, calibrated = read_scores(d / "eval.cal.txt")
    np.testing.assert_allclose(calibrated, cal.coef_[0] * normed + cal.intercept_, rtol=0,
                               atol=1e-12 * np.abs(calibrated).max())
    rows = json.loads((root / "work" / "results.json").read_text())
    assert [(r["system"], r["condition"]) for r in rows] == [
        ("gmm", "dev"), ("gmm", "eval"), ("isv", "dev"), ("isv", "eval")]
    assert all(r["targets"] == 3 and r["nontargets"] == 6 for r in rows)


def test_cli_run(project):
    result = CliRunner().invoke(cli, ["run", str(project / "recipe.toml"), "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "0 step(s) run, 16 up to date" in result.stdout
    assert "[skip] evaluate" in result.stderr
    result = CliRunner().invoke(cli, ["run", str(project / "recipe.toml"), "--force"],
                                catch_exceptions=False)
    assert "16 step(s) run, 0 up to date" in result.stdout


def test_the_run_table_stays_aligned_with_long_names():
    from emkit.cli._run import _table

    row = dict(eer=0.1, cllr=0.5, min_cllr=0.25)
    lines = _table([dict(row, system="ivector-cosine", condition="eval"),
                    dict(row, system="gmm", condition="a-long-condition")]).splitlines()
    assert len({line.index("EER") for line in lines}) == 1
    assert lines[0].startswith("ivector-cosine eval ") and lines[1].startswith("gmm            a-long-condition ")


def test_results_match_the_score_files(first_run):
    from emkit import metrics

    root = first_run[0]
    rows = json.loads((root / "work" / "results.json").read_text())
    for r in rows:
        d = root / "work" / "systems" / r["system"]
        for stage, key in (("raw", "eer_raw"), ("cal", "eer")):
            trials, values = read_scores(d / f"{r['condition']}.{stage}.txt")
            y = trials.labels
            assert r[key] == metrics.eer(values[y], values[~y])
        assert r["cllr"] == metrics.cllr(values[y], values[~y])
        assert r["act_dcf"]["0.1"] == metrics.act_dcf(values[y], values[~y], 0.1)


FEATURE_RECIPE = """\
[data.train]
features = ["train.npz"]
[data.test]
features = ["test.npz"]
[ubm]
data = "train"
gaussians = 2
iterations = 2
kmeans_iterations = 2
[systems.gmm]
kind = "gmm-map"
[systems.ivec]
kind = "ivector"
dim = 2
iterations = 2
backend = "cosine"
[conditions.test]
data = "test"
enroll = "enroll"
trials = "trials"
"""


def test_feature_lists_without_norm_or_calibration(tmp_path):
    rng = np.random.default_rng(0)

    def feats(speakers):
        return {f"s{s}-{k}": rng.normal(s, 1.0, (40, 3)) for s in speakers for k in (0, 1)}

    np.savez(tmp_path / "train.npz", **feats(range(4)))
    np.savez(tmp_path / "test.npz", **feats(range(4, 7)))
    (tmp_path / "enroll").write_text("".join(f"m{s} s{s}-0\n" for s in range(4, 7)))
    (tmp_path / "trials").write_text("".join(
        f"m{m} s{p}-1 {'target' if m == p else 'nontarget'}\n"
        for m in range(4, 7) for p in range(4, 7)))
    (tmp_path / "recipe.toml").write_text(FEATURE_RECIPE)
    results, report = run_recipe(tmp_path / "recipe.toml")
    assert ran(results) == ["ubm", "train:ivec", "score:gmm:test", "score:ivec:test",
                            "evaluate"]
    rows = json.loads((tmp_path / "work" / "results.json").read_text())
    assert [r["scores"] for r in rows] == ["test.raw.txt", "test.raw.txt"]
    assert rows[0]["eer"] == rows[0]["eer_raw"]
    np.savez(tmp_path / "test.npz", **feats(range(4, 7)))  # new features of the test set
    assert ran(run_recipe(tmp_path / "recipe.toml")[0]) == [
        "score:gmm:test", "score:ivec:test", "evaluate"]


def test_speaker_labels_that_do_not_cover_the_features_are_reported(tmp_path):
    """emkit run trained on the labelled utterances without a word, and ignored labels of
    utterances it does not have (train-isv refuses the one and notes the other)."""
    from emkit.features import FeatureError

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", **{f"s{s}-{k}": rng.normal(s, 1.0, (40, 3))
                                        for s in range(4) for k in (0, 1)})
    lines = [f"s{s}-{k} spk{s}\n" for s in range(4) for k in (0, 1)]
    utt2spk = tmp_path / "train.utt2spk"
    (tmp_path / "recipe.toml").write_text(
        '[data.train]\nfeatures = ["train.npz"]\nutt2spk = "train.utt2spk"\n'
        '[ubm]\ndata = "train"\ngaussians = 2\niterations = 2\nkmeans_iterations = 2\n'
        '[systems.isv]\nkind = "isv"\nrank_u = 1\niterations = 2\n'
        '[conditions.test]\ndata = "train"\nenroll = "enroll"\ntrials = "trials"\n')
    (tmp_path / "enroll").write_text("m0 s0-0\n")
    (tmp_path / "trials").write_text("m0 s0-1 target\nm0 s1-1 nontarget\n")
    utt2spk.write_text("".join(lines[2:]))
    with pytest.warns(UserWarning, match=f"2 utterance.s. of data set 'train' have no speaker in "
                                         f"{utt2spk} and are not used to train system 'isv'") as caught:
        assert "train:isv" in ran(run_recipe(tmp_path / "recipe.toml")[0])
    assert caught[0].filename == __file__  # the user's line (was emkit's recipe runner)
    utt2spk.write_text("".join(lines) + "ghost spk0\n")
    with pytest.raises(FeatureError, match=f"'{utt2spk}': utterance 'ghost' is not in the features "
                                           r"\(1 of 9 listed utterances are missing\)"):
        run_recipe(tmp_path / "recipe.toml")


def test_failed_step_reruns_after_the_fix_and_only_it(project):
    wav = project / "data" / "test" / "wav" / "spk9-s1.wav"
    good = wav.read_bytes()
    wav.write_text("not audio")
    result = CliRunner().invoke(cli, ["run", str(project / "recipe.toml")])
    assert result.exit_code == 1
    assert "emkit run: error:" in result.stderr and "spk9-s1.wav" in result.stderr
    assert "Traceback" not in result.output
    wav.write_bytes(good)
    # the features come out byte-identical to the first run's: nothing after them re-runs
    assert ran(run_recipe(project / "recipe.toml")[0]) == ["features:test"]


def failed_feature_recipe(tmp_path, train: dict, old: str, new: str) -> str:
    """The error of FEATURE_RECIPE (``old`` replaced by ``new``) on the training utterances
    ``train`` and a one-trial test set."""
    np.savez(tmp_path / "train.npz", **train)
    np.savez(tmp_path / "test.npz", x=np.random.default_rng(1).normal(size=(40, 3)))
    (tmp_path / "enroll").write_text("m x\n")
    (tmp_path / "trials").write_text("m x target\n")
    (tmp_path / "recipe.toml").write_text(FEATURE_RECIPE.replace(old, new))
    with pytest.raises(RecipeError) as info:
        run_recipe(tmp_path / "recipe.toml")
    return str(info.value)


def test_ivector_dim_above_the_utterances_fails_before_training_naming_the_key(tmp_path):
    rng = np.random.default_rng(0)
    train = {f"s{s}-{k}": rng.normal(s, 1.0, (40, 3)) for s in range(4) for k in (0, 1)}
    assert failed_feature_recipe(tmp_path, train, "dim = 2", "dim = 8") == (
        f"{tmp_path / 'recipe.toml'}: systems.ivec.dim: 8: the whitening of the i-vectors needs "
        "more training utterances than dim (at least 9); data set 'train' has 8: set a smaller "
        "dim or use more utterances")
    (tmp_path / "utt2spk").write_text("".join(f"s{s}-{k} spk{s}\n" for s in range(4) for k in (0, 1)))
    (tmp_path / "recipe.toml").write_text(FEATURE_RECIPE.replace("dim = 2", "dim = 5").replace(
        'features = ["train.npz"]', 'features = ["train.npz"]\nutt2spk = "utt2spk"'))
    with pytest.raises(RecipeError, match=r"systems.ivec.dim: 5: WCCN needs at least dim \+ the "
                                          r"number of speakers = 5 \+ 4 = 9 training utterances; "
                                          "data set 'train' has 8"):
        run_recipe(tmp_path / "recipe.toml")
    assert not (tmp_path / "work" / "systems" / "ivec" / "machine.h5").exists()


def test_ubm_of_too_many_gaussians_for_its_frames_fails_before_training_naming_the_key(tmp_path):
    rng = np.random.default_rng(0)
    train = {"a": rng.normal(size=(25, 3)), "b": rng.normal(size=(14, 3))}
    assert failed_feature_recipe(tmp_path, train, "gaussians = 2", "gaussians = 4") == (
        f"{tmp_path / 'recipe.toml'}: ubm.gaussians: 39 frames cannot train 4 Gaussians: a UBM "
        "needs at least 10 frames per Gaussian; use ubm.gaussians = 3 or fewer, or more data "
        "(data set 'train')")
    assert not (tmp_path / "work" / "ubm.h5").exists()


def test_errors_about_a_data_sets_audio_name_the_recipe_key(tmp_path):
    from emkit.audio import AudioError

    recipe = make_project(tmp_path / "p")
    bad = tmp_path / "p" / "data" / "train" / "wav" / "spk0-s0.wav"
    shutil.copy(bad, tmp_path / "good.wav")
    bad.write_text("not audio")
    # before: only the file was named, not the data set of the recipe it was read for
    with pytest.raises(AudioError, match=r"recipe.toml: data\.train\.audio: '.*spk0-s0.wav': "
                                         "not a readable audio file"):
        run_recipe(recipe)
    bad.unlink()
    with pytest.raises(FileNotFoundError, match=r"recipe.toml: data\.train\.audio: .*spk0-s0"):
        run_recipe(recipe)
    shutil.copy(tmp_path / "good.wav", bad)
    scp = tmp_path / "p" / "data" / "test" / "wav.scp"  # found while planning, before any step
    scp.write_text("spk5-s0 sox wav/spk5-s0.wav -t wav - |\n" + scp.read_text())
    with pytest.raises(AudioError, match=r"recipe.toml: data\.test\.audio: .*piped command"):
        run_recipe(recipe)
    assert not (tmp_path / "p" / "work" / "features" / "test.ark").exists()


def test_little_audio_starts_no_process_pool_whatever_jobs(project, monkeypatch):
    # before: jobs = 2 started loky's workers for a few seconds of audio, slower than one process
    # (emkit features has started at most one process per SECONDS_PER_PROCESS of audio)
    import joblib

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a process pool was started")

    recipe = project / "recipe.toml"
    recipe.write_text("jobs = 2\n" + recipe.read_text())
    wav = project / "data" / "test" / "wav" / "spk9-s1.wav"
    sf.write(wav, voice(9, 1) + 0.02 * np.random.default_rng(7).standard_normal(9600), RATE,
             subtype="PCM_16")
    monkeypatch.setattr(joblib, "Parallel", NoPool)
    assert "features:test" in ran(run_recipe(recipe)[0])


@pytest.mark.parametrize("missing_from, message", [
    ("eval", r"trials: utterance 'ghost' is not in the features of data set 'eval' "),
    ("cohort", r"the cohort's utt2spk: utterance 'ghost' is not in the features of data set "
               r"'cohort' "),
])
def test_an_utterance_missing_from_the_features_names_the_data_set(missing_from, message,
                                                                    tmp_path):
    """The data set is named (before: "of the data set", which one not said): the condition's
    (a trial's probe) or the score-normalisation cohort's (an utterance of its utt2spk)."""
    from emkit.features import FeatureError

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", **{f"s{s}-{k}": rng.normal(s, 1.0, (40, 3))
                                        for s in range(2) for k in (0, 1)})
    for name in ("eval", "cohort"):
        np.savez(tmp_path / f"{name}.npz", **{"s0-2": rng.normal(0.0, 1.0, (40, 3))})
    (tmp_path / "cohort.utt2spk").write_text(
        "s0-2 spk0\n" + ("ghost spk1\n" if missing_from == "cohort" else ""))
    (tmp_path / "recipe.toml").write_text(
        '[data.train]\nfeatures = ["train.npz"]\n[data.eval]\nfeatures = ["eval.npz"]\n'
        '[data.cohort]\nfeatures = ["cohort.npz"]\nutt2spk = "cohort.utt2spk"\n'
        '[ubm]\ndata = "train"\ngaussians = 2\niterations = 2\nkmeans_iterations = 2\n'
        '[systems.gmm]\nkind = "gmm-map"\n'
        '[conditions.test]\ndata = "eval"\nenroll = "enroll"\ntrials = "trials"\n'
        '[norm]\nmethod = "z"\ncohort = "cohort"\ntop_n = 1\nddof = 0\n')
    (tmp_path / "enroll").write_text("m0 s0-2\n")
    probe = "ghost" if missing_from == "eval" else "s0-2"
    (tmp_path / "trials").write_text(f"m0 {probe} target\n")
    with pytest.raises(FeatureError, match=message + r"\(1 missing\)$"):
        run_recipe(tmp_path / "recipe.toml")


def test_a_full_disk_stops_a_run_naming_the_file_and_the_next_run_finishes_its_steps(
        project, monkeypatch):
    """Every file of the work folder (outputs, stamps, report) is left as it was by a run whose
    first write meets a full disk, but the stamp of the step it stopped; freed, the next run
    runs the steps that one could not.  (A guard: passes on the old code but for the message,
    which named no file.)"""
    import errno

    from writer_cases import fail_writes

    work = project / "work"
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    edit(project, 'method = "s"', 'method = "z"')
    fail_writes(monkeypatch, ["emkit.io.atomic", "emkit.recipe._scoring", "emkit.io._h5_new_file"],
                OSError(errno.ENOSPC, "No space left on device"), after=0)
    with pytest.raises(OSError, match=rf"^\[Errno 28\] No space left on device: '{work}/"):
        run_recipe(project / "recipe.toml")
    after = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    # (the stamp of the step stopped is removed before it starts: it is not done)
    assert set(before) - set(after) == {work / ".stamps" / "norm_gmm_dev.json"}
    assert all(after[p] == before[p] for p in after)
    monkeypatch.undo()
    assert ran(run_recipe(project / "recipe.toml")[0]) == [
        "norm:gmm:dev", "norm:gmm:eval", "norm:isv:dev", "norm:isv:eval", "calibrate:gmm",
        "calibrate:isv", "evaluate"]
