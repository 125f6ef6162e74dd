"""Numerical edges of i-vector training and projection: statistics whose counts are near 1e300
(the reference, bob.learn.em 3.3.1, trains them; numbers from tests/data/edges/make_fixtures.py),
counts near 1e-300, sessions without frames, Gaussians that no session occupies."""

import numpy as np
import pytest
from _parity import DATA, max_rel_diff
from edge_cases import IV_CASES, edge_statistics, edge_stats, edge_ubm, edge_ubm_arrays, iv_case

from emkit._kernels.compensated import centre_in_blocks, centred_second_moments
from emkit.gmm import GMMMachine
from emkit.ivector import IVectorMachine
from emkit.stats import GMMStats

TOL = 1e-10
CASES = np.load(DATA / "edges" / "ivector.npz")

#: bob.learn.em 3.3.1, dim_t=2, 4 iterations, np.random.seed(3), 8 sessions with counts * 1e300
REFERENCE = {
    True: dict(
        T=[2.8072892948893102, -1.6797597916308993, -0.2801952780359632, -1.9844419315829693,
           2.806894172359802, -1.682713242622932, -0.28019843618336837, -1.984313036797198,
           2.80677552099427, -1.6813069425077254, -0.28019526658998367, -1.9842657581981376],
        sigma=[1.131193079782107, 0.6616288794784181, 0.5872305735669509, 2.2729181260618883,
               1.582908907896633, 0.8967922273979835],
        ivector=[0.01904121652474927, -0.21886656187293718]),
    False: dict(
        T=[2.795009962346173, -1.6919146916875174, -0.27884099906814425, -1.985298088252288,
           2.7946284063056135, -1.6947846508315487, -0.27884088482697295, -1.9851632014285567,
           2.7945079733177343, -1.6934084534088438, -0.27883941307079185, -1.9851246355303118],
        sigma=[1.112709808129998, 0.5679127908536677, 0.5731365660907521, 1.998764172597607,
               1.4785536673819815, 0.8517653025047359],
        ivector=[0.0183056888915399, -0.2186554065768542]),
}


def _ubm():
    return edge_ubm(GMMMachine)


def _stats(arrays, dtype=np.float64):
    return edge_stats(GMMStats, arrays, dtype)


@pytest.mark.parametrize("update_sigma", [True, False])
@pytest.mark.parametrize("R", [2, 5])
@pytest.mark.parametrize("case", IV_CASES)
def test_edge_case_trains_and_projects_as_the_reference(case, R, update_sigma):
    """(guard) T, sigma and the i-vectors of two ordinary probes agree with the reference within
    1e-10 of each array's scale (R = 5 is above the rank that 2 or 8 identical sessions support).
    Where the reference's are not finite (a Gaussian no session occupies, with update_sigma: 0/0)
    emkit's are: that Gaussian keeps its sigma (test_ivector.py)."""
    arrays, dtype = iv_case(case)
    machine = IVectorMachine(_ubm(), dim_t=R, max_iterations=4, update_sigma=update_sigma,
                             random_state=3).fit(_stats(arrays, dtype))
    ivectors = machine.transform(_stats(edge_statistics(2, 9)))
    p = f"{case}_R{R}_sigma{int(update_sigma)}_"
    for name, got in (("T", machine.T), ("sigma", machine.sigma), ("ivectors", ivectors)):
        assert np.isfinite(got).all(), name
        if np.isfinite(CASES[p + name]).all():
            assert max_rel_diff(got, CASES[p + name]) <= TOL, name
        else:
            assert case == "unoccupied_gaussian" and update_sigma, name


@pytest.mark.parametrize("update_sigma", [True, False])
def test_counts_near_1e300_train_and_project_as_the_reference_does(update_sigma):
    """Before: Dekker's split of the summed statistics (about 5e301 times 2**27) overflowed, an
    overflow warning, then 'the average log-likelihood per utterance became nan'."""
    machine = IVectorMachine(_ubm(), dim_t=2, max_iterations=4, update_sigma=update_sigma,
                             random_state=3)
    machine.fit(_stats(edge_statistics(8, 0, 1e300)))
    ref = REFERENCE[update_sigma]
    assert max_rel_diff(machine.T.ravel(), ref["T"]) <= TOL
    assert max_rel_diff(machine.sigma.ravel(), ref["sigma"]) <= TOL
    probe = _stats(edge_statistics(1, 10, 1e300))[0]
    assert max_rel_diff(machine.project(probe), ref["ivector"]) <= TOL


def test_centred_second_moments_of_huge_statistics_scale_exactly():
    """A power-of-two unit leaves the centred moments exact multiples: bit for bit the moments of
    the unscaled statistics times the unit, in one batch and in blocks."""
    n, sum_px, sum_pxx = edge_statistics(5, 1)
    means = edge_ubm_arrays()[0]
    unit = 2.0**1000
    expected = centred_second_moments(sum_pxx, sum_px, n, means) * unit
    got = centred_second_moments(sum_pxx * unit, sum_px * unit, n * unit, means)
    np.testing.assert_array_equal(got, expected)
    blocks = lambda: iter([(n[:2] * unit, sum_px[:2] * unit, sum_pxx[:2] * unit),  # noqa: E731
                           (n[2:] * unit, sum_px[2:] * unit, sum_pxx[2:] * unit)])
    np.testing.assert_array_equal(centre_in_blocks(blocks, means)[2], expected)


def test_counts_near_1e300_keep_ordinary_statistics_bit_for_bit():
    """(guard) statistics of ordinary size take the unscaled path: the same floats as before."""
    n, sum_px, sum_pxx = edge_statistics(5, 1)
    means = edge_ubm_arrays()[0]
    got = centred_second_moments(sum_pxx * 2.0**900, sum_px * 2.0**900, n * 2.0**900, means)
    np.testing.assert_array_equal(got, centred_second_moments(sum_pxx, sum_px, n, means) * 2.0**900)


def test_a_precision_lost_to_huge_counts_says_so():
    """T trained on 8 identical sessions has rank 1 in T' Sigma^-1 T; a probe with counts near
    1e300 swamps the prior's identity and the posterior precision is singular in float64 (the
    reference: 'Singular matrix').  Before, the error said only that the counts must be
    non-negative and finite, which they are."""
    arrays, _ = iv_case("identical_sessions")
    machine = IVectorMachine(_ubm(), dim_t=2, max_iterations=4, update_sigma=False,
                             random_state=3).fit(_stats(arrays))
    with pytest.raises(ValueError, match=r"not so large that the prior's identity is lost in "
                                         r"rounding"):
        machine.project(_stats(edge_statistics(1, 10, 1e300))[0])
