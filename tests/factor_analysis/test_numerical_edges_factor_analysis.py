"""Numerical edges of ISV and JFA training against bob.learn.em 3.3.1 (numbers made by
tests/data/edges/make_fixtures.py): a session without frames, duplicated sessions, a class with
one session, counts at 1e-300, 1e-3 and 1e300, float32 statistics, and r_U = 5 on 6 sessions of a
6-dimensional supervector.  Where the reference gives finite numbers emkit agrees within 1e-10
of each array's scale; these are guards (they pass on the code they were written against)."""

import numpy as np
import pytest
from _parity import DATA, max_rel_diff
from edge_cases import (C, D, FA_CASES, edge_statistics, edge_stats, edge_ubm, fa_case,
                        fa_initial_values)

from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.gmm import GMMMachine
from emkit.stats import GMMStats

REFERENCE = np.load(DATA / "edges" / "factor_analysis.npz")
TOL = 1e-10


def _ubm():
    return edge_ubm(GMMMachine)


def _stats(arrays, dtype=np.float64):
    return edge_stats(GMMStats, arrays, dtype)


def _machine(kind):
    init = fa_initial_values()
    if kind == "jfa":
        machine = JFAMachine(2, 2, em_iterations=3, relevance_factor=4.0, ubm=_ubm())
        machine.U, machine.V, machine.D = init["U0"], init["V0"], init["D0"]
        return machine
    machine = ISVMachine(5 if kind == "isv5" else 2, em_iterations=3, relevance_factor=4.0, ubm=_ubm())
    machine.U, machine.D = init["U5" if kind == "isv5" else "U0"], init["D0"]
    return machine


@pytest.mark.parametrize("kind", ["isv", "jfa", "isv5"])
@pytest.mark.parametrize("case", FA_CASES)
def test_edge_case_trains_and_scores_as_the_reference(case, kind):
    prefix = f"{case}_{kind}_"
    arrays, labels, dtype = fa_case(case)
    if prefix + "error" in REFERENCE:  # the reference's 'Singular matrix': an error here, naming
        # the cause (before: only NaN or unoccupied Gaussians, neither of which these data have)
        with pytest.raises(FloatingPointError, match="^subspace update: an accumulator A1 is not "
                                                     "positive definite .* or counts so large"):
            _machine(kind).fit(_stats(arrays, dtype), labels)
        return
    machine = _machine(kind).fit(_stats(arrays, dtype), labels)
    for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
        assert max_rel_diff(getattr(machine, name), REFERENCE[prefix + name]) <= TOL, name
    score = machine.score(machine.enroll(_stats(edge_statistics(2, 7))), _stats(edge_statistics(2, 8)))
    assert max_rel_diff([score], [REFERENCE[prefix + "score"]]) <= TOL


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_a_probe_or_an_enrolment_without_frames_scores_zero(kind):
    """No frames, no evidence: the linear score of a zero-count probe, and of any probe against a
    model enrolled from a zero-count session, is exactly 0 (as in the reference)."""
    arrays, labels, _ = fa_case("zero_frame_session")
    machine = _machine(kind).fit(_stats(arrays), labels)
    empty = _stats((np.zeros((1, C)), np.zeros((1, C, D)), np.zeros((1, C, D))))
    model = machine.enroll(_stats(edge_statistics(2, 7)))
    assert machine.score(model, empty) == 0.0
    assert machine.score(machine.enroll(empty), _stats(edge_statistics(2, 8))) == 0.0


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_a_gaussian_no_session_occupies_keeps_its_subspace_rows(kind):
    """The reference raises 'Singular matrix' there; emkit trains the occupied Gaussians and
    leaves the rows of U of the unoccupied one as they were (nothing to learn them from)."""
    (n, f, ff), labels, _ = fa_case("plain")
    n, f, ff = n.copy(), f.copy(), ff.copy()
    n[:, 1], f[:, 1], ff[:, 1] = 0.0, 0.0, 0.0
    machine = _machine(kind).fit(_stats((n, f, ff)), labels)
    rows = slice(D, 2 * D)  # Gaussian 1's rows of the supervector
    np.testing.assert_array_equal(machine.U[rows], fa_initial_values()["U0"][rows])
    assert np.isfinite(machine.U).all() and np.isfinite(machine.D).all()


def test_an_unknown_edge_case_name_is_refused():
    """(tests/support) a misspelt case name gave the plain data, so its test tested nothing."""
    from edge_cases import iv_case

    for make in (fa_case, iv_case):
        with pytest.raises(ValueError, match="unknown edge case 'zero_frame_sessions'"):
            make("zero_frame_sessions")
        assert make("plain")[0][0].shape[0] in (6, 8)
