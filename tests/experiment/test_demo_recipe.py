"""The demo as a recipe: the shipped examples/demo_recipe.toml is the defaults' recipe, and
running the exported recipe gives run_demo's numbers."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from emkit.cli import cli
from emkit.experiment import DemoConfig, run_demo
from emkit.demo_recipe import export_demo, recipe_rows, recipe_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo_recipe.toml"
SMALL = DemoConfig(ubm_iterations=8, fa_iterations=3, ivector_iterations=3, ivector_dim=6)


def test_shipped_example_is_the_recipe_of_the_defaults():
    assert EXAMPLE.read_text(encoding="utf-8") == recipe_text(DemoConfig())


def test_exported_recipe_reproduces_run_demo(tmp_path):
    export_demo(tmp_path, SMALL, seed=3)
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "recipe.toml")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    got = recipe_rows(tmp_path / "work" / "results.json")
    ref = run_demo(None, seed=3, config=SMALL, progress=False, echo=lambda text: None).rows
    assert [r[:2] for r in got] == [r[:2] for r in ref] and len(got) == 5
    np.testing.assert_allclose([r[2:] for r in got], [r[2:] for r in ref], rtol=0, atol=1e-12)


def test_demo_command_prints_run_demos_table(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "d"), "--seed", 3,
                                      "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ref = run_demo(None, seed=3, progress=False, echo=lambda text: None)
    assert ref.table in result.stdout
    assert "[run]  evaluate" in result.stderr  # the recipe's steps go to stderr
    out = tmp_path / "d"
    assert (out / "recipe.toml").read_text() == recipe_text(DemoConfig(), 3, ".")
    assert sorted(p.name for p in (out / "scores").iterdir()) == sorted(
        f"{k}.txt" for k, *_ in ref.rows)
    assert ref.table in (out / "results.txt").read_text()


def test_export_option_writes_the_example_recipe_and_its_data(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--export", str(tmp_path / "x")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "recipe.toml").read_text() == EXAMPLE.read_text()
    trials = (tmp_path / "x" / "lists" / "trials").read_text().splitlines()
    assert len(trials) == 3330 and sum(t.endswith(" target") for t in trials) == 370
    assert not (tmp_path / "x" / "work").exists()  # nothing trained
    both = runner.invoke(cli, ["demo", "--export", str(tmp_path / "y"), "-o", str(tmp_path)])
    assert both.exit_code == 2 and "-o/--output does not apply with --export" in both.stderr
    assert not (tmp_path / "y").exists()


def test_export_keeps_a_recipe_the_user_edited(tmp_path):
    # the recipe is there to be edited: exporting again replaced the edits without a word
    runner = CliRunner()
    out = tmp_path / "x"
    assert runner.invoke(cli, ["demo", "--export", str(out)]).exit_code == 0
    again = runner.invoke(cli, ["demo", "--export", str(out), "--gaussians", "8"])  # its own file
    assert again.exit_code == 0, again.output
    assert "gaussians = 8" in (out / "recipe.toml").read_text()
    edited = (out / "recipe.toml").read_text().replace("gaussians = 8", "gaussians = 16") + "# mine\n"
    (out / "recipe.toml").write_text(edited)
    result = runner.invoke(cli, ["demo", "--export", str(out)])
    assert result.exit_code == 1 and "recipe.toml exists and differs from the demo's (edited?)" in result.output
    assert f"emkit run {out / 'recipe.toml'}" in result.output
    assert (out / "recipe.toml").read_text() == edited
    (out / "recipe.toml").unlink()
    assert runner.invoke(cli, ["demo", "--export", str(out)]).exit_code == 0
    assert (out / "recipe.toml").read_text() == EXAMPLE.read_text()


def test_recipe_refuses_a_config_it_cannot_express():
    with pytest.raises(ValueError, match="plda_model"):
        recipe_text(DemoConfig(plda_model="simple"))


def test_ivector_lda_and_plda_dims_of_a_recipe_train_that_system_only(tmp_path):
    from emkit.experiment import load_machine
    from emkit.recipe import run_recipe

    export_demo(tmp_path, SMALL, seed=3)
    recipe = tmp_path / "recipe.toml"
    first, _ = run_recipe(recipe)
    path = tmp_path / "work" / "systems" / "ivector-plda" / "machine.h5"
    assert load_machine(path).lda is None
    text = recipe.read_text()
    head, tail = text.split("[systems.ivector-plda]\n")
    recipe.write_text(head + "[systems.ivector-plda]\nlda_dim = 5\nplda_dim = 3\n" + tail)
    again, _ = run_recipe(recipe)
    ran = [r.name for r in again if r.status == "run"]
    assert ran[0] == "train:ivector-plda" and all("ivector-plda" in n or n == "evaluate"
                                                  for n in ran)
    system = load_machine(path)
    assert system.lda.weights.shape == (6, 5)  # SMALL: dim 6
    assert system.plda.model == "simplified" and system.plda.F_.shape == (5, 3)


def test_convergence_warnings_of_a_recipe_advise_its_keys():
    # they advised the estimators' parameters (k_means_trainer=KMeansMachine(...), max_iter)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from emkit.recipe._steps import convergence_advice

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with convergence_advice("systems.isv.iterations"):
            warnings.warn("k-means did not converge in 20 iterations (relative change above 1e-05); raise "
                          "max_iter or convergence_threshold (GMMMachine's k-means start: ...)",
                          ConvergenceWarning)
            warnings.warn("ISV did not converge in 10 iterations (relative change above 1e-05); raise the "
                          "maximum number of iterations or the threshold", ConvergenceWarning)
            warnings.warn("something else", UserWarning)
    assert [str(w.message) for w in caught] == [
        "k-means did not converge in 20 iterations (relative change above 1e-05); raise "
        "ubm.kmeans_iterations in the recipe",
        "ISV did not converge in 10 iterations (relative change above 1e-05); raise "
        "systems.isv.iterations in the recipe",
        "something else"]
