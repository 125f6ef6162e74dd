"""The demo experiment as a library function, and the system building blocks behind it."""


import numpy as np
import pytest
from _parity import assert_parity

from emkit import metrics
from emkit.experiment import (SYSTEM_TITLES, DemoConfig, EnrolledModels, compute_stats, enroll,
                              run_demo, score, train_ubm)

SMALL = DemoConfig(n_gaussians=8, ubm_iterations=10, kmeans_iterations=10, isv_rank=2, jfa_rank_u=2,
                   jfa_rank_v=3, fa_iterations=3, ivector_dim=6, ivector_iterations=3)


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, seed=3, config=SMALL, progress=False, echo=quiet)


def test_every_system_runs_and_beats_chance(small_run):
    _, result = small_run
    assert [r[0] for r in result.rows] == list(SYSTEM_TITLES)
    assert result.skipped == {} and result.failed == {}
    assert result.labels.shape == (9, 370) and result.labels.sum() == 370
    for system, _, e, dcf2, dcf3 in result.rows:
        s = result.scores[system]
        assert s.shape == (9, 370) and np.isfinite(s).all()
        assert e == metrics.eer(s[result.labels], s[~result.labels])
        assert 0 < e < 0.5, system                 # better than chance
        assert 0 < dcf2 <= 1 and 0 < dcf3 <= 1
    assert "minDCF(0.01)" in result.table and "JFA" in result.table
    assert "session 0: 270 utterances" in result.protocol
    assert "370 target, 2960 non-target" in result.protocol


def test_same_seed_same_numbers_other_seed_others(small_run):
    _, first = small_run
    again = run_demo(None, seed=3, config=SMALL, progress=False, echo=quiet)
    other = run_demo(None, seed=4, config=SMALL, progress=False, echo=quiet)
    assert again.rows == first.rows and again.files == []
    for system in first.scores:
        np.testing.assert_array_equal(again.scores[system], first.scores[system])
        assert not np.array_equal(other.scores[system], first.scores[system])


def test_files_written(small_run):
    from emkit.features import read_scores

    out, result = small_run
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted(["det.png", "results.txt", "ubm.h5", "isv.h5", "jfa.h5", "ivector.h5"]
                           + [f"{s}_models.h5" for s in SYSTEM_TITLES]
                           + [f"scores/{s}.txt" for s in SYSTEM_TITLES])
    assert (out / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.table in (out / "results.txt").read_text()
    trials, values = read_scores(out / "scores" / "isv.txt")
    assert len(values) == 3330 and trials.labels.sum() == 370
    assert trials.models[0] == "spk1" and trials.probes[0] == result.probe_ids[0]
    np.testing.assert_array_equal(values, result.scores["isv"].ravel())  # exact text round trip


@pytest.mark.parametrize("system", list(SYSTEM_TITLES))
def test_saved_models_score_the_same(small_run, system):
    from emkit.datasets import load_japanese_vowels

    out, result = small_run
    models = EnrolledModels.from_hdf5(out / f"{system}_models.h5")
    assert models.system == system and models.model_ids == result.model_ids
    jv = load_japanese_vowels()
    probes = [jv.utterances[i] for i in jv.indices(session=1)[:40]]
    stats = compute_stats(models.ubm, probes)
    assert_parity(score(models, stats), result.scores[system][:, :40],
                               tol=1e-10)


def test_batched_fa_scores_equal_the_machines_score():
    from emkit.datasets import load_japanese_vowels
    from emkit.factor_analysis import ISVMachine, JFAMachine

    jv = load_japanese_vowels()
    train = jv.indices(session=0)
    y = jv.speaker_ids[train]
    ubm = train_ubm(np.concatenate([jv.utterances[i] for i in train]), 4, max_iterations=5, seed=1)
    stats = compute_stats(ubm, [jv.utterances[i] for i in train])
    probes = compute_stats(ubm, [jv.utterances[i] for i in jv.indices(session=1)[::37]])
    per_model = [[stats[k] for k in np.flatnonzero(y == s)] for s in (1, 2, 3)]
    for machine in (ISVMachine(r_U=2, em_iterations=2, ubm=ubm).fit(stats, y),
                    JFAMachine(r_U=2, r_V=2, em_iterations=2, ubm=ubm).fit(stats, y)):
        models = enroll(machine, ["a", "b", "c"], per_model)
        batched = score(models, probes)
        one_by_one = np.array([[machine.score(machine.enroll(m), [p]) for p in probes]
                               for m in per_model])
        assert_parity(batched, one_by_one, tol=1e-10)


def test_gmm_map_models_equal_map_fitted_machines():
    from emkit import GMMMachine
    from emkit.datasets import load_japanese_vowels

    jv = load_japanese_vowels()
    utts = [jv.utterances[i] for i in jv.indices(session=0, speaker=2)]
    ubm = train_ubm(np.concatenate(utts), 4, max_iterations=5, seed=0)
    models = enroll(ubm, ["spk2"], [compute_stats(ubm, utts)], relevance_factor=3.0)
    reference = GMMMachine(4, trainer="map", ubm=ubm, map_relevance_factor=3.0, max_fitting_steps=1)
    reference.fit(np.concatenate(utts))
    assert_parity(models.arrays["means"][0], reference.means, tol=1e-10)


def test_a_failing_system_is_reported_and_the_others_still_run(monkeypatch):
    from emkit.factor_analysis import ISVMachine

    def broken(self, X, y=None):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(ISVMachine, "fit", broken)
    cfg = DemoConfig(**{**SMALL.__dict__, "systems": ("gmm-map", "isv")})
    lines = []
    result = run_demo(None, seed=0, config=cfg, progress=False, echo=lines.append)
    assert [r[0] for r in result.rows] == ["gmm-map"]
    assert result.failed == {"isv": "RuntimeError: simulated failure"}
    assert "error: ISV failed: RuntimeError: simulated failure" in "\n".join(lines)


def test_unknown_system_is_refused():
    with pytest.raises(ValueError, match="unknown system"):
        run_demo(None, config=DemoConfig(systems=("gmm-map", "svm")), echo=quiet)


def test_systems_registry_picks_one_class_per_machine():
    import _model_files as mf

    from emkit.experiment import (SYSTEMS, GMMMAPSystem, ISVSystem, IVectorCosineSystem,
                                  IVectorPLDASystem, JFASystem, SystemUnavailable, system_for)
    from emkit.factor_analysis import JFAMachine

    assert list(SYSTEMS) == list(SYSTEM_TITLES)
    assert all(SYSTEMS[name].name == name for name in SYSTEMS)
    backend = mf.backend()
    picked = [system_for(mf.ubm(), relevance_factor=3), system_for(mf.isv()),
              system_for(mf.isv(JFAMachine)), system_for(backend),
              system_for(backend, backend="plda")]
    assert [type(s) for s in picked] == [GMMMAPSystem, ISVSystem, JFASystem,
                                         IVectorCosineSystem, IVectorPLDASystem]
    assert picked[0].parameters == {"relevance_factor": 3.0} and picked[1].parameters == {}
    backend.plda = None
    with pytest.raises(SystemUnavailable, match="no PLDA"):
        system_for(backend, backend="plda")
    with pytest.raises(ValueError, match="backend must be 'cosine' or 'plda'; got 'lda'"):
        system_for(backend, backend="lda")
    with pytest.raises(TypeError, match="got IVectorMachine"):
        system_for(mf.ivector())


def test_enrolled_models_and_backend_go_through_the_persistence_registry(tmp_path):
    import _model_files as mf

    from emkit import io
    from emkit.experiment import IVectorBackend

    models = mf.enrolled()
    io.save(models, tmp_path / "m.h5")
    loaded = io.load(tmp_path / "m.h5")
    assert type(loaded) is EnrolledModels and loaded.model_ids == models.model_ids
    np.testing.assert_array_equal(loaded.arrays["means"], models.arrays["means"])
    assert loaded.parameters == {"relevance_factor": 4.0}
    backend = mf.backend()
    backend.save(tmp_path / "b.h5")
    loaded = io.load(tmp_path / "b.h5", expected=IVectorBackend)
    assert type(loaded) is IVectorBackend
    for step in ("whitening", "wccn"):
        for name in ("weights", "input_subtract", "input_divide"):
            np.testing.assert_array_equal(getattr(getattr(loaded, step), name),
                                          getattr(getattr(backend, step), name))
    X = np.random.default_rng(0).normal(size=(5, mf.R))
    np.testing.assert_array_equal(loaded.cosine_space(X, from_ivectors=True),
                                  backend.cosine_space(X, from_ivectors=True))
    np.testing.assert_array_equal(loaded.plda.log_likelihood_ratio(X[:2], X),
                                  backend.plda.log_likelihood_ratio(X[:2], X))


def test_a_backend_file_keeps_the_plda_a_new_fit_trains(tmp_path):
    """plda_model and plda_dim_f were lost: the loaded back-end refitted a two-covariance PLDA
    where the saved one had a simplified PLDA of rank 1."""
    import _model_files as mf

    from emkit import io
    from emkit.experiment import IVectorBackend

    backend = mf.backend()
    backend.plda_model, backend.plda_dim_f = "simplified", 1
    backend.save(tmp_path / "b.h5")
    loaded = io.load(tmp_path / "b.h5", expected=IVectorBackend)
    assert (loaded.plda_model, loaded.plda_dim_f) == ("simplified", 1)
    backend.plda_model, backend.plda_dim_f = "two-covariance", None
    backend.save(tmp_path / "c.h5")
    loaded = io.load(tmp_path / "c.h5", expected=IVectorBackend)
    assert (loaded.plda_model, loaded.plda_dim_f) == ("two-covariance", None)


@pytest.mark.parametrize("ids, error, message", [
    ([], ValueError, "without any model"),  # written, then refused on load
    ([1, 2], TypeError, "model ids must be non-empty strings without NUL characters; got int '1'"),
    (["a", "a\x00"], TypeError, "got str 'a.x00'"),  # saved as 'a' twice: unreadable
])
def test_enrolled_models_that_would_not_load_are_not_saved(tmp_path, ids, error, message):
    import _model_files as mf

    models = mf.enrolled()
    models = EnrolledModels(models.system, ids, {"means": models.arrays["means"][:len(ids)]},
                            models.machine, models.parameters)
    with pytest.raises(error, match=message):
        models.save(tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_io_systems_imports_no_estimator_module():
    import ast
    from pathlib import Path

    import emkit.io.systems as module

    tree = ast.parse(Path(module.__file__).read_text())
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert all(n.level == 1 for n in relative), [f"..{n.module}" for n in relative if n.level > 1]
    absolute = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
    absolute += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in absolute if m.startswith("emkit") and not m.startswith("emkit.io")]


def test_ivector_backend_needs_enough_utterances_and_never_suggests_pinv():
    """The whitening needs more utterances than the dimension, WCCN/PLDA the dimension + the
    number of speakers; the Whitening/WCCN advice 'use pinv=True' is no option of the back-end."""
    import _model_files as mf

    from emkit.experiment import IVectorBackend

    assert (IVectorBackend.min_utterances(5), IVectorBackend.min_utterances(5, 3)) == (6, 8)
    assert IVectorBackend.too_few_utterances(5, 8, 3) is None
    machine = mf.ivector()
    rng = np.random.default_rng(0)
    stats = machine.ubm.transform([rng.normal(size=(20, mf.D)) for _ in range(mf.R + 2)])
    with pytest.raises(ValueError, match=f"^{mf.R} training utterances are too few for i-vectors "
                                         f"of dimension {mf.R}: the whitening .*at least "
                                         f"{mf.R + 1}"):
        IVectorBackend(machine).fit(stats[:mf.R])
    labels = [0, 1] * (mf.R // 2 + 1)
    with pytest.raises(ValueError, match=rf"WCCN and PLDA need .* {mf.R} \+ 2 = {mf.R + 2} "):
        IVectorBackend(machine).fit(stats[:mf.R + 1], labels[:mf.R + 1])
    IVectorBackend(machine).fit(stats, labels)  # just enough
    with pytest.raises(ValueError) as info:  # enough utterances, all the same: singular
        IVectorBackend(machine).fit([stats[0]] * (mf.R + 2))
    assert "covariance of the training i-vectors is singular" in str(info.value)
    assert "pinv" not in str(info.value)
