"""Recipe validation: every error names the recipe file and the key (no audio needed)."""

import pytest
from click.testing import CliRunner

from emkit.cli import cli
from emkit.recipe import RecipeError, load_recipe, plan
from cli_support import one_line_error


BASE = """\
[data.train]
features = ["train.npz"]
utt2spk = "utt2spk"
[data.test]
features = ["test.npz"]

[ubm]
data = "train"
gaussians = 8

[systems.isv]
kind = "isv"
rank_u = 2

[systems.ivec]
kind = "ivector"
dim = 5
backend = "cosine"

[conditions.eval]
data = "test"
enroll = "enroll"
trials = "trials"

[norm]
method = "zt"
cohort = "train"

[calibration]
train = "eval"
"""


@pytest.fixture()
def project(tmp_path):
    for name in ("train.npz", "test.npz", "utt2spk", "enroll", "trials"):
        (tmp_path / name).write_text("x")
    (tmp_path / "recipe.toml").write_text(BASE)
    return tmp_path


def test_a_folder_of_features_stands_for_its_feature_files(project):
    """docs/recipes.md allows folders, as the command line's FEATURES; the recipe refused them."""
    folder = project / "feats"
    folder.mkdir()
    for name in ("b.npy", "a.npy", "notes.txt", ".hidden.npy"):
        (folder / name).write_text("x")
    (project / "recipe.toml").write_text(BASE.replace('features = ["test.npz"]',
                                                      'features = ["feats", "test.npz"]'))
    assert load_recipe(project / "recipe.toml")["data"]["test"]["features"] == [
        str(folder / "a.npy"), str(folder / "b.npy"), str(project / "test.npz")]
    for name in ("a.npy", "b.npy"):
        (folder / name).unlink()
    with pytest.raises(RecipeError, match="recipe.toml: data.test.features: .*feats: the "
                                          "directory holds no feature file"):
        load_recipe(project / "recipe.toml")


def test_relevance_factor_of_an_ivector_system_is_refused(project):
    """It was accepted and never used (changing it re-ran the system for the same scores)."""
    (project / "recipe.toml").write_text(BASE.replace('kind = "ivector"',
                                                      'kind = "ivector"\nrelevance_factor = 1.0'))
    with pytest.raises(RecipeError, match="systems.ivec.relevance_factor: does not apply to an "
                                          "i-vector system"):
        load_recipe(project / "recipe.toml")


def test_top_level_keys_are_named_as_written(project):
    """(a wrong type was reported as 'recipe.jobs', a wrong value as 'jobs')"""
    for line, message in [('jobs = "2"', "recipe.toml: jobs: must be an integer; got str"),
                          ("jobs = 0", "recipe.toml: jobs: must be > 0"),
                          ("seed = 1.5", "recipe.toml: seed: must be an integer; got float")]:
        (project / "recipe.toml").write_text(f"{line}\n{BASE}")
        with pytest.raises(RecipeError, match=message):
            load_recipe(project / "recipe.toml")


def test_valid_recipe_with_defaults(project):
    r = load_recipe(project / "recipe.toml")
    assert r["work_dir"] == str(project / "work") and r["seed"] == 0
    assert r["ubm"] == {"data": "train", "gaussians": 8, "iterations": 25, "threshold": 1e-5,
                        "kmeans_iterations": 20, "compute_dtype": "float64", "gselect": None,
                        "min_posterior": 0.0}
    assert r["systems"]["isv"] == {"kind": "isv", "data": "train", "relevance_factor": 4.0,
                                   "rank_u": 2, "iterations": 10}
    assert r["systems"]["ivec"] == {"kind": "ivector", "data": "train", "relevance_factor": 4.0,
                                    "dim": 5, "iterations": 10, "backend": "cosine"}  # no dims
    assert r["conditions"]["eval"]["trials"] == str(project / "trials")
    assert r["norm"] == {"method": "zt", "cohort": "train", "top_n": 200, "ddof": 1}
    assert r["calibration"] == {"train": "eval", "prior": 0.5}
    assert r["evaluation"] == {"p_target": [0.01], "c_miss": 1.0, "c_fa": 1.0, "title": "DET curves"}


def test_relative_recipe_path_gives_absolute_paths(project, monkeypatch):
    (project / "audio").mkdir()
    (project / "audio" / "utt2spk").write_text("u s\n")
    (project / "recipe.toml").write_text(BASE.replace('features = ["test.npz"]',
                                                      'audio = "audio"'))
    monkeypatch.chdir(project.parent)
    r = load_recipe(f"{project.name}/recipe.toml")
    assert r["data"]["test"]["audio"] == str(project / "audio")
    assert r["data"]["test"]["utt2spk"] == str(project / "audio" / "utt2spk")
    assert r["data"]["train"]["utt2spk"] == str(project / "utt2spk")
    assert r["work_dir"] == str(project / "work")


@pytest.mark.parametrize("old,new,key,fragment", [
    ("[data.train]", "workdir = 'w'\n[data.train]", "workdir", "unknown key"),
    ("gaussians = 8", "gausians = 8", "ubm.gausians", "unknown key (known: compute_dtype, data, gaussians"),
    ("gaussians = 8", 'gaussians = "8"', "ubm.gaussians", "must be an integer; got str"),
    ("gaussians = 8", "gaussians = 0", "ubm.gaussians", "must be > 0"),
    ("gaussians = 8", "gaussians = true", "ubm.gaussians", "must be an integer; got bool"),
    ('data = "train"\ngaussians', 'data = "dev"\ngaussians', "ubm.data",
     "names data set 'dev', which is not defined (defined: test, train)"),
    ('features = ["test.npz"]', 'features = ["nothere.npz"]', "data.test.features",
     "no such file 'nothere.npz'"),
    ('features = ["test.npz"]', 'audio = "nodir"', "data.test.audio",
     "no such directory 'nodir'"),
    ('features = ["test.npz"]', 'features = "test.npz"', "data.test.features",
     "must be a list of strings"),
    ('features = ["test.npz"]', 'features = []', "data.test.features", "the list is empty"),
    ('features = ["test.npz"]', 'utt2spk = "utt2spk"', "data.test",
     "exactly one of 'audio'"),
    ('kind = "isv"', 'kind = "gmm"', "systems.isv.kind", "must be one of gmm-map, isv"),
    ("rank_u = 2", "rank_v = 2", "systems.isv.rank_v", "unknown key"),
    ('backend = "cosine"', 'backend = "svm"', "systems.ivec.backend", "'plda' or 'cosine'"),
    ('trials = "trials"', 'trials = "no_trials"', "conditions.eval.trials", "no such file"),
    ('enroll = "enroll"\n', "", "conditions.eval.enroll", "missing (required)"),
    ('method = "zt"', 'method = "q"', "norm.method", "must be one of z, t, zt, s, as"),
    ('cohort = "train"', 'cohort = "test"', "norm.cohort", "needs an utt2spk"),
    ('train = "eval"', 'train = "dev"', "calibration.train", "names condition 'dev'"),
    ('train = "eval"', 'train = "eval"\nprior = 1.0', "calibration.prior", "in (0, 1)"),
    ('[calibration]', '[evaluation]\np_target = [0.5, 2]\n[calibration]', "evaluation.p_target",
     "priors in (0, 1)"),
    ('[data.train]\nfeatures = ["train.npz"]\nutt2spk = "utt2spk"',
     '[data.train]\nfeatures = ["train.npz"]', "systems.isv.data", "needs speaker labels"),
    ("[ubm]", "[features]\nnum_ceps = 13\n[ubm]", "features", "need a data set with 'audio'"),
    ("gaussians = 8", "gaussians = 8\ngselect = 9", "ubm.gselect",
     "must be at most ubm.gaussians (8); got 9"),
    ("gaussians = 8", "gaussians = 8\ngselect = 0", "ubm.gselect", "must be > 0; got 0"),
    ("gaussians = 8", "gaussians = 8\ngselect = 2\nmin_posterior = 1.0", "ubm.min_posterior",
     "must be in [0, 1); got 1.0"),
    ("gaussians = 8", "gaussians = 8\nthreshold = -1.0", "ubm.threshold", "must be a number >= 0"),
    ("gaussians = 8", "gaussians = 8\nthreshold = inf", "ubm.threshold", "must be a number >= 0"),
    ("gaussians = 8", "gaussians = 8\nmin_posterior = 0.1", "ubm.min_posterior",
     "needs ubm.gselect"),
    ("gaussians = 8", 'gaussians = 8\ncompute_dtype = "float16"', "ubm.compute_dtype",
     "must be 'float64' or 'float32'; got 'float16'"),
    ('[data.train]\nfeatures = ["train.npz"]\nutt2spk = "utt2spk"\n[data.test]\n'
     'features = ["test.npz"]', 'data = "x"', "data", "must be a table; got str"),
    ("dim = 5", "dim = 5\nlda_dim = 6", "systems.ivec.lda_dim", "must be at most dim (5); got 6"),
    ("dim = 5", "dim = 5\nlda_dim = 0", "systems.ivec.lda_dim", "must be > 0; got 0"),
    ("dim = 5", 'dim = 5\ndata = "test"\nlda_dim = 2', "systems.ivec.lda_dim",
     "needs speaker labels"),
    ("dim = 5", "dim = 5\nplda_dim = 2", "systems.ivec.plda_dim",
     "applies to backend = 'plda' only; got backend = 'cosine'"),
    ('dim = 5\nbackend = "cosine"', 'dim = 5\nbackend = "plda"\nlda_dim = 3\nplda_dim = 4',
     "systems.ivec.plda_dim", "must be at most lda_dim (3), the PLDA's input dimension; got 4"),
    ("rank_u = 2", "rank_u = 2\nlda_dim = 2", "systems.isv.lda_dim", "unknown key"),
])
def test_validation_errors_name_file_and_key(project, old, new, key, fragment):
    path = project / "recipe.toml"
    assert old in BASE
    path.write_text(BASE.replace(old, new, 1))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert fragment in message, message


def test_missing_section(project):
    (project / "recipe.toml").write_text(BASE.split("[conditions.eval]")[0])
    with pytest.raises(RecipeError, match=r"recipe.toml: conditions: missing \(required"):
        load_recipe(project / "recipe.toml")


def test_feature_options_checked(project, monkeypatch):
    audio = project / "audio"
    audio.mkdir()
    text = BASE.replace('features = ["test.npz"]', 'audio = "audio"')
    for extra, fragment in [("num_cep = 13", "features.num_cep: unknown key"),
                            ("num_ceps = 30", "features.num_ceps: must be between 1 and"),
                            ('cmvn = "global"', "features.cmvn: must be one of"),
                            ("cmvn = [1]", "features.cmvn: must be a single value"),
                            # a string "false" was read as true: the option turned on silently
                            ('norm_vars = "false"', "features.norm_vars: must be a boolean .true or "
                                                    "false.; got str 'false'"),
                            ('snip_edges = "false"', "features.snip_edges: must be a boolean"),
                            ("num_mel_bins = 23.5", "features.num_mel_bins: must be an integer; got "
                                                    "float 23.5"),
                            ('sample_frequency = "16k"', "features.sample_frequency: must be a number"),
                            ("delta_order = 1.9", "features.delta_order: must be an integer"),
                            # before: accepted, and the features step failed with a bare
                            # "You may have set num_mel_bins too large."
                            ("num_mel_bins = 300", "recipe.toml: features: kaldi-native-fbank "
                                                   "refuses these options: .*num_mel_bins too "
                                                   r"large. \(num_mel_bins 300, "),
                            ("channel = -2", "features.channel: must be -1 or None "
                                             r"\(Kaldi's default: .*\) or a channel number from "
                                             r"0 to 1023 \(.*\); got -2"),
                            ("channel = 1024", "features.channel: must be .* a channel number "
                                               r"from 0 to 1023 \(libsndfile opens no file of "
                                               r"more than 1024 channels\); got 1024"),
                            ("dither = nan", "features.dither: must be a finite number; got nan"),
                            ("min_cmn_window = 2147483648", "features.min_cmn_window: must be an "
                                                            "integer from 1 to 2147483647 "
                                                            r"\(Kaldi's int32 options\)"),
                            ("dither_seed = -1", r"features.dither_seed: must be an integer from "
                                                 r"0 to 2\*\*64 - 1; got -1"),
                            ("dither_seed = 1.5", "features.dither_seed: must be an integer; got "
                                                  "float 1.5"),
                            ("vad_energy_threshold = nan",
                             "features.vad_energy_threshold: must be a finite number")]:
        (project / "recipe.toml").write_text(f"[features]\n{extra}\n" + text)
        with pytest.raises(RecipeError, match=fragment):
            load_recipe(project / "recipe.toml")


def test_recipe_channel_minus_one_is_the_default(project):
    """Kaldi's --channel=-1 in a recipe: the same configuration (and stamps) as no channel key
    (it was refused, "leave the key out")."""
    from emkit.audio import FeatureConfig

    (project / "audio").mkdir()
    text = BASE.replace('features = ["test.npz"]', 'audio = "audio"')
    (project / "recipe.toml").write_text("[features]\nchannel = -1\n" + text)
    assert load_recipe(project / "recipe.toml")["features"] == FeatureConfig()
    (project / "recipe.toml").write_text(text)
    assert load_recipe(project / "recipe.toml")["features"] == FeatureConfig()


def test_bad_toml_and_cli_exit_codes(project):
    (project / "recipe.toml").write_text("[ubm\nsecret = 'do-not-echo'")
    result = CliRunner().invoke(cli, ["run", str(project / "recipe.toml")])
    one_line_error(result, 1, "emkit run: error:", "recipe.toml: not a valid TOML file")
    assert "do-not-echo" not in result.output
    (project / "recipe.toml").write_text(BASE.replace("gaussians = 8", "gaussians = -1"))
    one_line_error(CliRunner().invoke(cli, ["run", str(project / "recipe.toml")]), 1,
                   "recipe.toml: ubm.gaussians: must be > 0")
    one_line_error(CliRunner().invoke(cli, ["run", str(project / "nothere.toml")]), 2,
                   "does not exist")
    assert not (project / "work").exists()


def test_ivector_lda_and_plda_dims_are_kept_when_set(project):
    path = project / "recipe.toml"
    path.write_text(BASE.replace('dim = 5\nbackend = "cosine"',
                                 'dim = 5\nbackend = "plda"\nlda_dim = 3\nplda_dim = 2'))
    s = load_recipe(path)["systems"]["ivec"]
    assert (s["lda_dim"], s["plda_dim"], s["backend"]) == (3, 2, "plda")


@pytest.mark.parametrize("old,new,section", [
    ("[systems.isv]", '[systems."../../escaped"]', "systems"),
    ("[systems.isv]", '[systems."a/b"]', "systems"),
    ("[systems.isv]", '[systems."a\\\\b"]', "systems"),
    ("[systems.isv]", '[systems.".."]', "systems"),
    ("[systems.isv]", '[systems.""]', "systems"),
    ("[systems.isv]", '[systems."a\\nb"]', "systems"),
    ("[systems.isv]", f'[systems.{"s" * 101}]', "systems"),
    ("[conditions.eval]", '[conditions."../eval"]', "conditions"),
    ('[data.test]\nfeatures = ["test.npz"]', '[data."/tmp/test"]\nfeatures = ["test.npz"]',
     "data"),
])
def test_names_must_be_plain_file_names(project, old, new, section):
    # data sets, systems and conditions name files under work_dir: none may lead out of it
    path = project / "recipe.toml"
    path.write_text(BASE.replace(old, new, 1))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {section}: name "), message
    assert "plain name" in message and len(message) < len(str(path)) + 300, message


def test_long_values_are_shortened_in_errors(project):
    path = project / "recipe.toml"
    long = "S" * 1_000_000
    for old, new, key in [('data = "train"\ngaussians', f'data = "{long}"\ngaussians', "ubm.data"),
                          ('kind = "isv"', f'kind = "{long}"', "systems.isv.kind"),
                          ('method = "zt"', f'method = "{long}"', "norm.method"),
                          ('features = ["test.npz"]', f'features = ["{long}"]',
                           "data.test.features"),
                          ("gaussians = 8", f"gaussians = 8\n{long} = 1", "ubm.SSS")]:
        path.write_text(BASE.replace(old, new, 1))
        with pytest.raises(RecipeError) as info:
            load_recipe(path)
        message = str(info.value)
        assert message.startswith(f"{path}: {key}") or \
            message.startswith(f"{path}: '{key}"), message[:300]
        assert len(message) < len(str(path)) + 400, message[:300]


def test_deeply_nested_toml_is_a_recipe_error(project):
    path = project / "recipe.toml"
    path.write_text("x = " + "[" * 50000 + "]" * 50000 + "\n")
    with pytest.raises(RecipeError, match="recipe.toml: not a usable TOML file"):
        load_recipe(path)


def test_an_archive_named_by_a_script_file_is_an_input_wherever_the_recipe_runs(project, monkeypatch):
    # its lines were resolved against the current directory: run from elsewhere, the UBM step
    # was allowed to write over the archive
    (project / "work").mkdir()
    (project / "work" / "ubm.h5").write_text("input")
    (project / "train.scp").write_text("u0 work/ubm.h5:0\n")
    path = project / "recipe.toml"
    path.write_text(BASE.replace('features = ["train.npz"]', 'features = ["train.scp"]', 1))
    monkeypatch.chdir(project.parent)
    with pytest.raises(RecipeError, match=r"data.train.features: .*'ubm.h5'.*refusing to overwrite an input"):
        plan(load_recipe(path))
    assert (project / "work" / "ubm.h5").read_text() == "input"


@pytest.mark.parametrize("old,new,key,output", [
    ('features = ["train.npz"]', 'features = ["work/ubm.h5"]', "data.train.features", "ubm.h5"),
    ('trials = "trials"', 'trials = "work/systems/isv/eval.raw.txt"', "conditions.eval.trials",
     "systems/isv/eval.raw.txt"),
    ('utt2spk = "utt2spk"', 'utt2spk = "labels"', "data.train.utt2spk", "report.md"),
])
def test_no_step_writes_over_an_input(project, old, new, key, output):
    # checked before anything runs: the input is left as it was
    (project / "work" / "systems" / "isv").mkdir(parents=True)
    (project / "work" / output).write_text("input")
    if new.endswith('"labels"'):
        (project / "labels").symlink_to(project / "work" / output)  # the same file, linked
    path = project / "recipe.toml"
    path.write_text(BASE.replace(old, new, 1))
    recipe = load_recipe(path)
    with pytest.raises(RecipeError) as info:
        plan(recipe)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert f"{output!r}" in message and "refusing to overwrite an input" in message, message
    result = CliRunner().invoke(cli, ["run", str(path)])
    one_line_error(result, 1, f"{key}:", "refusing to overwrite an input")
    assert (project / "work" / output).read_text() == "input"
    assert not (project / "work" / ".stamps").exists()


def test_docs_recipes_lists_every_section_and_key_with_its_default():
    # the recipe reference is written by hand: it must keep up with the schema
    import dataclasses
    from pathlib import Path

    from emkit.audio import FeatureConfig, KaldiOptions
    from emkit.recipe import _schema

    text = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text()
    for section, spec in [("top", _schema.TOP), *_schema.SECTIONS.items(),
                          *(("systems", s) for s in (_schema.COMMON_SYSTEM, *_schema.SYSTEM_KINDS.values()))]:
        for key, (_, default) in spec.items():
            assert f"`{key}`" in text, (section, key)
            if default not in (None, ...) and not isinstance(default, list):
                shown = f'"{default}"' if isinstance(default, str) else repr(default)
                assert shown in text, (section, key, shown)
    for kind in _schema.SYSTEM_KINDS:
        assert f'`"{kind}"`' in text, kind
    for field in [*dataclasses.fields(KaldiOptions), *dataclasses.fields(FeatureConfig)]:
        assert field.name == "kaldi" or f"`{field.name}`" in text, field.name


def test_the_example_recipe_of_the_docs_is_valid(tmp_path):
    """docs/recipes.md's first example names only data sets it defines (it named an undefined one)."""
    import re
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # Python 3.10: emkit reads recipes with tomli there
        tomllib = pytest.importorskip("tomli")

    from emkit.recipe import load_recipe

    text = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    for name in ["feats/train.scp", "feats/test.scp", "feats/utt2spk", "lists/enroll", "lists/trials"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    named = {v for table in tomllib.loads(example)["data"].values() for v in
             [*table.get("features", []), table.get("utt2spk")] if v}
    assert named <= {"feats/train.scp", "feats/test.scp", "feats/utt2spk"}
    (tmp_path / "recipe.toml").write_text(example)
    recipe = load_recipe(tmp_path / "recipe.toml")
    assert set(recipe["data"]) == {"train", "test"} and recipe["conditions"]["eval"]["data"] == "test"


def test_a_huge_integer_in_the_features_table_is_named_shortly(project):
    # before: "features.num_ceps: must be between 1 and num_mel_bins (23); got 9999...", cut at
    # 300 characters; for num_mel_bins, kaldi-native-fbank's TypeError quoting its binding
    (project / "audio").mkdir()
    text = BASE.replace('features = ["test.npz"]', 'audio = "audio"')
    for key, fragment in [("num_ceps", "must be between 1 and num_mel_bins (23)"),
                          ("num_mel_bins", "must be between 3 and 131072 (the FFT size of the "
                                           "longest frame accepted)"),
                          ("delta_window", "must be at most 1000 (frames on each side)"),
                          ("dither_seed", "must be an integer from 0 to 2**64 - 1")]:
        (project / "recipe.toml").write_text(f"[features]\n{key} = {'9' * 400}\n" + text)
        with pytest.raises(RecipeError) as info:
            load_recipe(project / "recipe.toml")
        assert str(info.value).endswith(f"recipe.toml: features.{key}: {fragment}; got "
                                        "99999999999999999999... (an integer of 400 digits)")
