"""``linear_scoring`` against bob.learn.em 3.3.1, every input form (float64).

Fixtures: ``tests/data/gmm/make_fixtures.py``.  The probes' statistics are the reference's (read
from the fixture), so the scores compare the scoring alone; ``test_probe_statistics`` checks that
emkit computes the same statistics.  Data sets: "blobs" (C=4, D=3) and "d1" (C=3, D=1); four
probes, the last an empty session (T = 0, so frame-length normalisation gives 0).
"""

import re

import numpy as np
import pytest
from _parity import DATA, max_rel_diff
from sklearn.exceptions import NotFittedError

from emkit.gmm import GMMMachine
from emkit.linear_scoring import linear_scoring
from emkit.stats import GMMStats

TOL = 1e-10
DATASETS = ["blobs", "d1"]
OFFSETS = ["none", "scalar", "cd", "pcd"]

DATA_NPZ = np.load(DATA / "gmm" / "datasets.npz")
REF = np.load(DATA / "gmm" / "linear_scoring.npz")


def _ubm(name):
    m = GMMMachine(len(DATA_NPZ[f"{name}__means0"]))
    m.means = DATA_NPZ[f"{name}__means0"].copy()
    m.variances = DATA_NPZ[f"{name}__variances0"].copy()
    m.weights = DATA_NPZ[f"{name}__weights0"].copy()
    return m


def _probes(name):
    out = []
    for i in range(4):
        key = f"{name}__probe{i}"
        s = GMMStats(*REF[f"{key}__sum_px"].shape)
        s.init_fields(float(REF[f"{key}__ll"]), int(REF[f"{key}__t"]), REF[f"{key}__n"].copy(),
                      REF[f"{key}__sum_px"].copy(), REF[f"{key}__sum_pxx"].copy())
        out.append(s)
    return out


def _offset(name, kind):
    value = REF[f"{name}__offset_{kind}"]
    return value.item() if value.ndim == 0 else value.copy()


def _fln(flag):
    return f"fln{int(flag)}"


@pytest.mark.parametrize("fln", [False, True])
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("name", DATASETS)
def test_model_array_with_offsets(name, offset, fln):
    models = REF[f"{name}__models"]
    scores = linear_scoring(models.copy(), _ubm(name), _probes(name), _offset(name, offset), fln)
    expected = REF[f"{name}__array__{offset}__{_fln(fln)}"]
    assert scores.shape == (3, 4) == expected.shape
    assert scores.dtype == np.float64
    assert max_rel_diff(scores, expected) <= TOL
    if fln:
        assert np.all(scores[:, 3] == 0)  # empty probe


@pytest.mark.parametrize("fln", [False, True])
@pytest.mark.parametrize("name", DATASETS)
def test_offsets_as_list_of_arrays(name, fln):
    offsets = list(_offset(name, "pcd"))
    scores = linear_scoring(REF[f"{name}__models"], _ubm(name), _probes(name), offsets, fln)
    assert max_rel_diff(scores, REF[f"{name}__array__plist__{_fln(fln)}"]) <= TOL


@pytest.mark.parametrize("fln", [False, True])
@pytest.mark.parametrize("name", DATASETS)
def test_flat_supervector_offsets_equal_the_per_gaussian_form(name, fln):
    """(P, C*D) offsets, as documented by the reference (which could not take them, quirk 27)."""
    pcd = _offset(name, "pcd")
    P, C, D = pcd.shape
    assert bool(REF[f"{name}__flat_offsets_fail_in_reference"])
    flat = pcd.reshape(P, C * D)
    scores = linear_scoring(REF[f"{name}__models"], _ubm(name), _probes(name), flat, fln)
    assert max_rel_diff(scores, REF[f"{name}__array__pcd__{_fln(fln)}"]) <= TOL


@pytest.mark.parametrize("fln", [False, True])
@pytest.mark.parametrize("name", DATASETS)
def test_model_and_stats_forms(name, fln):
    ubm, probes, models = _ubm(name), _probes(name), REF[f"{name}__models"]
    f = _fln(fln)
    machines = []
    for mu in models:
        mm = GMMMachine(len(mu))
        mm.means = mu.copy()
        mm.variances = DATA_NPZ[f"{name}__variances0"].copy()
        machines.append(mm)
    cases = {
        "machines": linear_scoring(machines, ubm, probes, 0, fln),
        "list": linear_scoring([m.copy() for m in models], ubm, probes, 0, fln),
        "single_model": linear_scoring(models[0].copy(), ubm, probes, 0, fln),
        "single_stats": linear_scoring(models, ubm, probes[0], 0, fln),
        "single_both": linear_scoring(models[1], ubm, probes[2], _offset(name, "cd"), fln),
    }
    shapes = {"machines": (3, 4), "list": (3, 4), "single_model": (1, 4), "single_stats": (3, 1),
              "single_both": (1, 1)}
    for form, scores in cases.items():
        expected = REF[f"{name}__{form}__{f}"]
        assert scores.shape == shapes[form] == expected.shape, form
        assert max_rel_diff(scores, expected) <= TOL, form
    # keyword spelling of the reference
    kw = linear_scoring(models_means=models, ubm=ubm, test_stats=probes, test_channel_offsets=0,
                        frame_length_normalization=fln)
    assert max_rel_diff(kw, REF[f"{name}__array__none__{f}"]) <= TOL


@pytest.mark.parametrize("fln", [False, True])
@pytest.mark.parametrize("name", DATASETS)
def test_map_machine_as_ubm_uses_its_prior(name, fln):
    ubm = _ubm(name)
    adapted = GMMMachine(len(ubm.means), trainer="map", ubm=ubm)
    adapted.means = ubm.means + 1.0  # must not be used
    offsets = _offset(name, "pcd")
    scores = linear_scoring(REF[f"{name}__models"], adapted, _probes(name), offsets, fln)
    assert max_rel_diff(scores, REF[f"{name}__map_ubm__{_fln(fln)}"]) <= TOL


@pytest.mark.parametrize("name", DATASETS)
def test_probe_statistics(name):
    """emkit's per-session statistics of the probes equal the reference's."""
    Xp = DATA_NPZ[f"{name}__X_map"]
    stats = _ubm(name).transform([Xp[:30], Xp[30:85], Xp[85:97], Xp[:0]])
    for got, ref in zip(stats, _probes(name)):
        assert got.t == ref.t
        assert max_rel_diff(got.log_likelihood, ref.log_likelihood) <= TOL
        assert max_rel_diff(got.n, ref.n) <= TOL
        assert max_rel_diff(got.sum_px, ref.sum_px) <= TOL


def test_inputs_are_not_mutated():
    name = "blobs"
    models = REF[f"{name}__models"].copy()
    probes = _probes(name)
    offsets = _offset(name, "pcd")
    before = (models.copy(), [p.sum_px.copy() for p in probes], offsets.copy())
    linear_scoring(models, _ubm(name), probes, offsets, True)
    np.testing.assert_array_equal(models, before[0])
    for p, s in zip(probes, before[1]):
        np.testing.assert_array_equal(p.sum_px, s)
    np.testing.assert_array_equal(offsets, before[2])


def test_bad_shapes_name_the_argument():
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    models = REF[f"{name}__models"]
    with pytest.raises(ValueError, match="models_means"):
        linear_scoring(models[0, 0], ubm, probes)
    with pytest.raises(ValueError, match="test_channel_offsets"):
        linear_scoring(models, ubm, probes, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="models_means"):
        linear_scoring(models[:, :, :2], ubm, probes)


def test_bad_probe_statistics_name_the_probe():
    """Probes are stacked by GMMStats.stack: NaN statistics or a stray object are refused, naming
    ``test_stats[i]``, instead of NaN scores or an AttributeError."""
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    models = REF[f"{name}__models"]
    bad = probes[1].copy()
    bad.sum_px = bad.sum_px.copy()
    bad.sum_px[0, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape("NaN or infinity: test_stats[1].sum_px")):
        linear_scoring(models, ubm, [probes[0], bad])
    with pytest.raises(TypeError, match=re.escape("test_stats[1] must be a GMMStats")):
        linear_scoring(models, ubm, [probes[0], np.zeros(3)])
    wrong = GMMStats(2, 2)
    with pytest.raises(ValueError, match=re.escape("test_stats[0] has statistics of shape")):
        linear_scoring(models, ubm, [wrong])
    with pytest.raises(ValueError, match="test_stats is empty"):
        linear_scoring(models, ubm, [])


def test_non_finite_arguments_and_frame_counts_are_refused():
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    models = np.array(REF[f"{name}__models"], dtype=np.float64)
    bad = models.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=re.escape("models_means contains NaN (first at index (0, 1, 2))")):
        linear_scoring(bad, ubm, probes)
    bad[0, 1, 2] = np.inf
    with pytest.raises(ValueError, match=re.escape("models_means contains infinity (first at index (0, 1, 2))")):
        linear_scoring(bad, ubm, probes)
    C, D = ubm.means.shape
    offsets = np.zeros((len(probes), C * D))
    offsets[1, 2] = np.nan
    with pytest.raises(ValueError, match=re.escape("test_channel_offsets contains NaN (first at index (1, 2))")):
        linear_scoring(models, ubm, probes, offsets)
    for t, message in ((np.nan, "NaN or infinity: test_stats[1].t"),
                       (-20, "negative frame count: test_stats[1].t = -20.0")):
        p = [s.copy() for s in probes]
        p[1].t = t
        with pytest.raises(ValueError, match=re.escape(message)):
            linear_scoring(models, ubm, p, frame_length_normalization=True)


def test_arguments_of_the_wrong_kind_name_themselves():
    # they raised AttributeError ('NoneType' has no 'trainer'), numpy's "inhomogeneous shape", or
    # read the string 'no' as True
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    models = np.array(REF[f"{name}__models"], dtype=np.float64)
    with pytest.raises(TypeError, match="^ubm must be a GMMMachine; got NoneType$"):
        linear_scoring(models, None, probes)
    with pytest.raises(TypeError, match="^frame_length_normalization must be True or False; got str: 'no'$"):
        linear_scoring(models, ubm, probes, frame_length_normalization="no")
    with pytest.raises(ValueError, match="^models_means must be GMMMachines or .* all of one shape$"):
        linear_scoring([models[0], models[0][:1]], ubm, probes)


def test_a_ubm_with_a_zero_variance_is_refused():
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    zero = GMMMachine(ubm.n_gaussians)
    zero.variance_thresholds = 0.0
    zero.means, zero.variances, zero.weights = ubm.means, np.where(np.arange(ubm.means.size).reshape(
        ubm.means.shape) == 4, 0.0, ubm.variances), ubm.weights
    with pytest.raises(ValueError, match=re.escape("ubm.variances must be > 0 (linear scoring divides by them); "
                                                   "got 0.0")):
        linear_scoring(np.array(REF[f"{name}__models"], dtype=np.float64), zero, probes)


def test_untrained_machines_and_mixed_model_lists_name_the_argument():
    # they raised 'GMMMachine means were never set.' (which one?) and, for a GMMMachine followed
    # by an array, AttributeError: 'numpy.ndarray' object has no attribute 'means'
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    trained = GMMMachine(ubm.n_gaussians)
    trained.means, trained.variances = ubm.means + 1.0, ubm.variances
    with pytest.raises(NotFittedError, match=r"^models_means\[1\] is a GMMMachine without means"):
        linear_scoring([trained, GMMMachine(ubm.n_gaussians)], ubm, probes)
    with pytest.raises(TypeError, match=r"^models_means\[1\] must be a GMMMachine as the others are; "
                                        r"got ndarray$"):
        linear_scoring([trained, trained.means], ubm, probes)
    with pytest.raises(NotFittedError, match=r"^ubm is a GMMMachine without means"):
        linear_scoring([trained], GMMMachine(ubm.n_gaussians), probes)
    np.testing.assert_array_equal(linear_scoring([trained], ubm, probes),
                                  linear_scoring(trained.means[None], ubm, probes))


def test_models_in_a_numpy_object_array_score_as_the_list():
    # the reference read models_means[0] and iterated: an object array of GMMMachines worked
    # there; emkit refused it ("models_means must be GMMMachines or ... arrays of numbers")
    name = "blobs"
    ubm, probes = _ubm(name), _probes(name)
    models = []
    for offset in (0.5, -1.0):
        m = GMMMachine(ubm.n_gaussians)
        m.means, m.variances = ubm.means + offset, ubm.variances
        models.append(m)
    machines = np.empty(2, dtype=object)
    machines[:] = models
    means = np.empty(2, dtype=object)
    means[:] = [m.means for m in models]
    expected = linear_scoring(models, ubm, probes)
    np.testing.assert_array_equal(linear_scoring(machines, ubm, probes), expected)
    np.testing.assert_array_equal(linear_scoring(means, ubm, probes), expected)
