"""How the demo's hyper-parameters were chosen: scripts/select_demo_hyperparameters.py
cross-validates on the training session only, and its choice is the demo's default."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from emkit.datasets import load_japanese_vowels
from emkit.experiment import DemoConfig, run_demo

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "select_demo_hyperparameters.py"


def _script():
    spec = importlib.util.spec_from_file_location("select_demo_hyperparameters", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_selection_never_sees_the_evaluation_session():
    script = _script()
    jv, folds = script.folds()
    session0 = set(jv.indices(session=0).tolist())
    probes = []
    for train, probe in folds:
        assert set(train) | set(probe) == session0 and not set(train) & set(probe)
        # every speaker is enrolled from training utterances and probed in each fold
        assert set(jv.speaker_ids[probe]) == set(jv.speaker_ids[train]) and len(probe) == 90
        probes.extend(probe.tolist())
    assert sorted(probes) == sorted(session0)   # each session-0 utterance is probed once


def test_demo_defaults_are_the_cross_validated_choice():
    chosen = _script().CHOSEN
    defaults = dataclasses.asdict(DemoConfig())
    assert {k: defaults[k] for k in chosen} == chosen


def test_demo_explains_the_weak_jfa_under_its_table():
    lines = []
    config = DemoConfig(systems=("gmm-map", "jfa"), fa_iterations=2, ubm_iterations=5)
    result = run_demo(None, config=config, progress=False, echo=lines.append)
    table = result.table.splitlines()
    assert [r.split()[0] for r in table[1:3]] == ["GMM-MAP,", "JFA"]
    assert table[3] == ("note: JFA is weak here for lack of speakers: its speaker subspace V "
                        "(rank 8) is learnt from the 9 training speakers alone; it needs "
                        "hundreds.")
    assert np.isfinite(result.scores["jfa"]).all()
    other = run_demo(None, config=dataclasses.replace(config, systems=("gmm-map",)),
                     progress=False, echo=lines.append)
    assert "note:" not in other.table


def test_demo_gaussian_selection_all_gaussians_is_exact_and_fewer_change_the_scores():
    config = DemoConfig(systems=("gmm-map",), ubm_iterations=5)
    exact = run_demo(None, config=config, progress=False, echo=lambda text: None)
    full = run_demo(None, config=dataclasses.replace(config, gselect=4), progress=False,
                    echo=lambda text: None)
    one = run_demo(None, config=dataclasses.replace(config, gselect=1), progress=False,
                   echo=lambda text: None)
    np.testing.assert_allclose(full.scores["gmm-map"], exact.scores["gmm-map"], rtol=1e-9)
    assert not np.allclose(one.scores["gmm-map"], exact.scores["gmm-map"], rtol=1e-3)


def test_demo_gselect_options_are_checked(tmp_path):
    from click.testing import CliRunner

    from emkit.cli import cli

    out = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "d"), "--gselect", "5"])
    assert out.exit_code == 2 and "5 is more than the UBM's 4 Gaussians" in out.output
    out = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "d"), "--min-posterior", "0.1"])
    assert out.exit_code == 2 and "--min-posterior needs --gselect" in out.output
    out = CliRunner().invoke(cli, ["demo", "--export", str(tmp_path / "e"), "--gselect", "2",
                                   "--min-posterior", "0.025"])
    assert out.exit_code == 0, out.output
    text = (tmp_path / "e" / "recipe.toml").read_text()
    assert "gselect = 2\nmin_posterior = 0.025\n" in text
