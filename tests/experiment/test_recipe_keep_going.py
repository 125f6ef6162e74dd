"""The recipe's ``[features] keep_going``: the features step leaves out the utterances that
cannot be used, as ``emkit features --keep-going`` does."""

import shutil

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

import soundfile as sf  # noqa: E402

from emkit.io.kaldi import read_kaldi_scp  # noqa: E402
from emkit.recipe import RecipeError, Runner, load_recipe, plan  # noqa: E402
from emkit.recipe._steps import Context  # noqa: E402
from recipe_data import RATE, make_project  # noqa: E402


def run_cohort_features(recipe_path):
    """(status, summary) of the features step of the cohort set alone."""
    recipe = load_recipe(recipe_path)
    steps = [s for s in plan(recipe) if s.name == "features:cohort"]
    [result] = Runner(recipe["work_dir"]).run(steps, Context(recipe))
    return result.status, result.summary


@pytest.fixture()
def cohort_with_bad_entries(tmp_path):
    """A project whose cohort lists a missing file and a silent one among its 6 utterances."""
    recipe = make_project(tmp_path / "p")
    cohort = tmp_path / "p" / "data" / "cohort"
    sf.write(cohort / "wav" / "silent.wav", np.zeros(4800), RATE, subtype="PCM_16")
    with open(cohort / "wav.scp", "a") as f:
        f.write("spk98-s0 wav/silent.wav\nspk99-s0 wav/gone.wav\n")
    with open(cohort / "utt2spk", "a") as f:
        f.write("spk98-s0 spk98\nspk99-s0 spk99\n")
    return recipe, cohort


def test_keep_going_leaves_out_the_unusable_utterances_of_the_features_step(
        cohort_with_bad_entries, monkeypatch):
    # before: no such key (an unknown [features] key); the first unusable utterance, here a
    # missing file, stopped the run
    recipe, cohort = cohort_with_bad_entries
    monkeypatch.chdir(recipe.parent.parent)  # (relative paths are not taken from here)
    with pytest.raises(FileNotFoundError, match=r"data\.cohort\.audio: .*line 8: no such audio "
                                                "file 'wav/gone.wav'"):
        run_cohort_features(recipe)
    recipe.write_text(recipe.read_text().replace("[features]\n",
                                                 "[features]\nkeep_going = true\n"))
    with pytest.warns(UserWarning) as caught:
        status, summary = run_cohort_features(recipe)
    assert status == "run" and summary.startswith("6 of 8 utterances (2 left out), ")
    messages = [str(w.message) for w in caught]
    assert any("(utterance 'spk98-s0')" in m and "digital silence" in m for m in messages)
    assert any("(utterance 'spk99-s0'): no such audio file" in m for m in messages)
    assert messages[-1].startswith("2 of 8 utterances could not be used")
    work = recipe.parent / "work"
    assert "spk99-s0" not in read_kaldi_scp(work / "features" / "cohort.scp")
    assert len(read_kaldi_scp(work / "features" / "cohort.scp")) == 6
    assert run_cohort_features(recipe)[0] == "skipped"  # the missing file is no input to hash
    # the file appears: a new input, the step runs again and keeps it
    shutil.copy(cohort / "wav" / "spk11-s0.wav", cohort / "wav" / "gone.wav")
    with pytest.warns(UserWarning) as caught:
        status, summary = run_cohort_features(recipe)
    assert "digital silence" in str(caught[0].message)
    assert status == "run" and summary.startswith("7 of 8 utterances (1 left out), ")


def test_keep_going_is_a_boolean_and_a_parameter_of_the_step_only_when_set(tmp_path):
    recipe = make_project(tmp_path / "p")
    features = [s for s in plan(load_recipe(recipe)) if s.name.startswith("features:")]
    assert all("keep_going" not in s.params() for s in features)  # earlier stamps stay valid
    text = recipe.read_text()
    recipe.write_text(text.replace("[features]\n", "[features]\nkeep_going = true\n"))
    features = [s for s in plan(load_recipe(recipe)) if s.name.startswith("features:")]
    assert all(s.params()["keep_going"] is True for s in features)
    recipe.write_text(text.replace("[features]\n", "[features]\nkeep_going = 1\n"))
    with pytest.raises(RecipeError, match="features.keep_going: must be a boolean; got int"):
        load_recipe(recipe)


def test_the_labels_of_utterances_left_out_are_not_used_by_training(tmp_path, monkeypatch):
    # a data directory's utt2spk must list every utterance of its wav.scp; before, training then
    # failed: "utterance 'spk97-s0' is not in the features ... remove their lines"
    recipe = make_project(tmp_path / "p")
    train = tmp_path / "p" / "data" / "train"
    with open(train / "wav.scp", "a") as f:
        f.write("spk97-s0 wav/gone.wav\n")
    with open(train / "utt2spk", "a") as f:
        f.write("spk97-s0 spk97\n")
    recipe.write_text(recipe.read_text().replace("[features]\n", "[features]\nkeep_going = true\n"))
    monkeypatch.chdir(tmp_path)
    loaded = load_recipe(recipe)
    steps = [s for s in plan(loaded) if s.name in ("features:train", "ubm", "train:isv")]
    with pytest.warns(UserWarning) as caught:
        results = Runner(loaded["work_dir"]).run(steps, Context(loaded))
    assert [r.status for r in results] == ["run"] * 3
    assert results[0].summary.startswith("10 of 11 utterances (1 left out), ")
    assert str(caught[-1].message) == (
        "1 utterance(s) of data set 'train' were left out of its features ([features] "
        "keep_going), so their speaker labels are not used (the first: 'spk97-s0')")


def test_the_left_out_labels_warning_names_the_first_in_utt2spk_order_and_bounds_ids(tmp_path):
    # before: min() of the ids left out ('aa-1', not the first line's), and the data set's
    # name and that id echoed whole
    from emkit.io.untrusted import show_key
    from emkit.recipe._left_out import kept_labels

    data = tmp_path / "d"
    data.mkdir()
    ids = ["zz-" + "x" * 10_000, "aa-1", "mm-2"]
    (data / "wav.scp").write_text("".join(f"{u} {u[:4]}.wav\n" for u in ids))
    name = "n" * 10_000
    recipe = {"keep_going": True, "data": {name: {"audio": data}}}
    with pytest.warns(UserWarning) as caught:
        kept = kept_labels(recipe, name, {"mm-2": None}, dict.fromkeys(ids, "s"))
    assert kept == {"mm-2": "s"}
    message = str(caught[0].message)
    assert len(message) < 400 and message.endswith(f"(the first: {show_key(ids[0])})")


def test_the_summary_reads_the_data_directory_again_only_with_keep_going(tmp_path):
    # before: the data directory was listed again after every features step, keep_going or not
    # (its utterances were all written without it); the old signature took the audio module
    from emkit.recipe._steps import _utterances_written

    gone = tmp_path / "no such data directory"
    assert _utterances_written(gone, 3, keep_going=False) == "3 utterances"
    assert _utterances_written(gone, 1, keep_going=False) == "1 utterance"
    with pytest.raises(FileNotFoundError):
        _utterances_written(gone, 3, keep_going=True)
