"""ISV/JFA after the split by stage: the batched score matrix, the derived constants, the EM
contract, and the package's shape (module sizes, no io -> estimator import)."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from _parity import assert_parity
from factor_analysis_cases import load_case, make_stats, trained

import emkit
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.factor_analysis._constants import Constants
from emkit.stats import GMMStats


@pytest.fixture(scope="module")
def medium():
    return load_case("medium")


def _models(m, d, n_models=4):
    """Models enrolled from rotating subsets of the enrolment sessions."""
    sessions = make_stats(d, "enroll_")
    return [m.enroll(sessions[i:] + sessions[:i] if i % 2 else sessions[i:i + 2] or sessions)
            for i in range(n_models)]


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_score_matrix_equals_the_score_of_every_pair(kind, medium):
    m = trained(kind, medium)
    probes = make_stats(medium, "probe_")
    probes.append(GMMStats(*probes[0].shape))  # an empty probe scores 0
    models = _models(m, medium)
    expected = np.array([[m.score(model, [p]) for p in probes] for model in models])
    matrix = m.score_matrix(models, probes)
    assert matrix.shape == (len(models), len(probes))
    assert_parity(matrix, expected, tol=1e-10)
    assert (matrix[:, -1] == 0).all()
    # the other model forms: Z (M, CD) for ISV, (Y, Z) for JFA
    if kind == "isv":
        other = m.score_matrix(np.vstack(models), probes)
    else:
        Y, Z = np.array([y for y, _ in models]), np.array([z for _, z in models])
        other = m.score_matrix((Y, Z), probes)
    assert_parity(other, expected, tol=1e-10)
    # probe templates (lists of GMMStats) are summed, as score does
    templates = [probes[:2], probes[2:3]]
    expected = m.score(models[0], templates)
    assert_parity(m.score_matrix(models[:1], templates)[0], expected, tol=1e-10)


def test_score_matrix_checks_its_inputs(medium):
    isv, jfa = trained("isv", medium), trained("jfa", medium)
    probes = make_stats(medium, "probe_")
    with pytest.raises(ValueError, match="models must have shape"):
        isv.score_matrix(np.zeros((2, 3)), probes)
    with pytest.raises(TypeError, match="models must be a list of the \\(y, z\\) pairs"):
        jfa.score_matrix([np.zeros(3)], probes)
    with pytest.raises(ValueError, match=r"probes\[1\] has statistics of shape"):
        isv.score_matrix(_models(isv, medium, 1), [probes[0], GMMStats(2, 2)])
    with pytest.raises(TypeError, match="probes must be a non-empty list"):
        isv.score_matrix(_models(isv, medium, 1), [])


def test_constants_are_frozen_and_dropped_when_a_parameter_is_assigned(medium):
    m = trained("isv", medium)
    c = m._constants()
    assert isinstance(c, Constants) and m._constants() is c  # cached
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.U_over_var = None
    m.U = m.U * 2.0
    fresh = m._constants()
    assert fresh is not c
    np.testing.assert_array_equal(fresh.U, m.U)
    np.testing.assert_array_equal(fresh.U_over_var, m.U / m.variance_supervector[:, None])
    m.D = m.D + 1.0
    assert m._constants() is not fresh


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_fit_sets_n_iter_and_converged(kind, medium):
    m = trained(kind, medium)
    assert m.n_iter_ == m.em_iterations
    assert m.converged_ is False  # a fixed number of iterations, as the reference


def test_every_module_of_the_package_is_small():
    root = Path(emkit.__file__).parent
    paths = [*(root / "factor_analysis").glob("*.py"),
             *(root / "_kernels").glob("factor_analysis*.py")]
    sizes = {p.name: len(p.read_text().splitlines()) for p in paths}
    assert max(sizes.values()) <= 450, sizes


def test_the_file_layout_imports_no_estimator():
    tree = ast.parse((Path(emkit.__file__).parent / "io" / "factor_analysis.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    estimators = ("gmm", "factor_analysis")
    assert not any(name.lstrip(".").split(".")[0] in estimators for name in imported), imported
