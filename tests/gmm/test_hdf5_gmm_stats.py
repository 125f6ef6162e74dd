"""GMMStats files keep what an M-step needs: the moments about a shift and the arrays' float type."""

import copy

import h5py
import numpy as np
import pytest

from emkit.gmm import GMMMachine, m_step
from emkit.io import InvalidFileError
from emkit.stats import GMMStats

OFFSET = 1e6  # features far from the origin: the raw sums lose the variances' precision


def _machine(trainer="ml", ubm=None):
    rng = np.random.default_rng(3)
    m = GMMMachine(3, trainer=trainer, ubm=ubm, update_means=True, update_variances=True,
                   update_weights=True)
    m.means = OFFSET + rng.standard_normal((3, 2))
    m.variances = 1.0 + rng.random((3, 2))
    m.weights = np.array([0.2, 0.3, 0.5])
    return m


def _frames():
    return OFFSET + np.random.default_rng(4).standard_normal((500, 2))


def _m_step(machine, stats):
    out = copy.deepcopy(machine)
    m_step([stats], out)
    return out


@pytest.mark.parametrize("trainer", ["ml", "map"])
def test_an_m_step_on_loaded_statistics_is_the_one_on_the_statistics_in_memory(tmp_path, trainer):
    ubm = _machine()
    machine = _machine(trainer, ubm if trainer == "map" else None)
    stats = ubm.acc_stats(_frames())
    stats.save(tmp_path / "stats.h5")
    from_file = GMMStats.from_hdf5(tmp_path / "stats.h5")
    loaded_in_place = GMMStats(3, 2)
    loaded_in_place.load(tmp_path / "stats.h5")
    expected = _m_step(machine, stats)
    for loaded in (from_file, loaded_in_place):
        assert loaded == stats
        got = _m_step(machine, loaded)
        np.testing.assert_allclose(got.variances, expected.variances, rtol=1e-12, atol=0)
        np.testing.assert_allclose(got.means, expected.means, rtol=1e-12, atol=0)


def test_statistics_without_moments_about_a_shift_keep_the_reference_layout(tmp_path):
    stats = GMMStats.from_arrays(np.ones(2), np.ones((2, 3)), np.ones((2, 3)))
    stats.save(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "r") as f:
        assert sorted(f) == ["T", "log_likelihood", "n", "n_features", "n_gaussians", "sumPx",
                             "sumPxx"]


def test_the_moments_about_a_shift_go_into_a_nested_group_too(tmp_path):
    ubm = _machine()
    stats = ubm.acc_stats(_frames())
    with h5py.File(tmp_path / "nested.h5", "w") as f:
        stats.save(f.create_group("inner"))
    with h5py.File(tmp_path / "nested.h5", "r") as f:
        assert sorted(f["inner/emkit_shifted"]) == ["shift", "sumPx", "sumPxx"]
        loaded = GMMStats.from_hdf5(f["inner"])
    np.testing.assert_array_equal(loaded.centred_moments()[1], stats.centred_moments()[1])


def test_float32_statistics_come_back_float32(tmp_path):
    rng = np.random.default_rng(0)
    stats = GMMStats(2, 3)
    stats.init_fields(-5.0, 10, rng.random(2).astype(np.float32),
                      rng.random((2, 3)).astype(np.float32), rng.random((2, 3)).astype(np.float32))
    stats.save(tmp_path / "f32.h5")
    with h5py.File(tmp_path / "f32.h5", "r") as f:  # stored as the reference stores them
        assert f["n"].dtype == f["sumPx"].dtype == f["sumPxx"].dtype == np.float32
    loaded = GMMStats.from_hdf5(tmp_path / "f32.h5")
    for field in ("n", "sum_px", "sum_pxx"):
        assert getattr(loaded, field).dtype == np.float32, field
        np.testing.assert_array_equal(getattr(loaded, field), getattr(stats, field))


def _saved_stats(tmp_path):
    path = tmp_path / "stats.h5"
    _machine().acc_stats(_frames()).save(path)
    return path


def test_moments_that_do_not_give_the_raw_sums_are_refused(tmp_path):
    path = _saved_stats(tmp_path)
    with h5py.File(path, "a") as f:
        f["sumPx"][0, 0] += 1.0  # edited by a tool that knows only the reference's datasets
    with pytest.raises(InvalidFileError, match=r"stats\.h5: group '/emkit_shifted' does not "
                                               r"match the statistics.*'sumPx' and 'sumPxx'"):
        GMMStats.from_hdf5(path)


@pytest.mark.parametrize("name, value, problem", [
    ("shift", np.zeros(3), r"'/emkit_shifted/shift' must have shape \(2,\)"),
    ("sumPx", np.full((3, 2), np.nan), "'/emkit_shifted/sumPx' holds NaN"),
    ("sumPxx", -np.ones((3, 2)), "'/emkit_shifted/sumPxx' must hold values >= 0"),
    ("shift", np.array(["a", "b"], dtype=h5py.string_dtype()), "'/emkit_shifted/shift' must hold numbers"),
])
def test_damaged_moments_about_a_shift_are_refused_naming_the_dataset(tmp_path, name, value, problem):
    path = _saved_stats(tmp_path)
    with h5py.File(path, "a") as f:
        del f["emkit_shifted"][name]
        f["emkit_shifted"][name] = value
    with pytest.raises(InvalidFileError, match=problem):
        GMMStats.from_hdf5(path)


def test_first_order_moments_about_a_shift_round_trip(tmp_path):
    # (fits that do not update the variances accumulate no second order about the shift)
    rng = np.random.default_rng(5)
    shift, px = OFFSET + rng.random(2), rng.standard_normal((3, 2))
    stats = GMMStats._from_shifted(-3.0, 7, rng.random(3) + 1, shift, px, None)
    stats.save(tmp_path / "first.h5")
    with h5py.File(tmp_path / "first.h5", "r") as f:
        assert sorted(f["emkit_shifted"]) == ["shift", "sumPx"]
    loaded = GMMStats.from_hdf5(tmp_path / "first.h5")
    assert loaded == stats
    got, want = loaded.centred_moments(second_order=False), stats.centred_moments(second_order=False)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def _with(**fields):
    stats = GMMStats.from_arrays(np.array([2.0, 1.0]), np.ones((2, 3)), np.ones((2, 3)), t=3,
                                 log_likelihood=-4.0)
    for name, value in fields.items():
        setattr(stats, name, value)
    return stats


@pytest.mark.parametrize("stats, problem", [
    (_with(n=np.ones(3)), r"GMMStats\.n must be real numbers of shape \(2,\).*got float64 of shape \(3,\)"),
    (_with(sum_px=np.ones((3, 3))), r"GMMStats\.sum_px must be real numbers of shape \(2, 3\)"),
    (_with(sum_pxx=np.ones(6)), r"GMMStats\.sum_pxx must be real numbers of shape \(2, 3\)"),
    (_with(n=np.array([1.0, np.nan])), r"GMMStats\.n holds NaN or infinity"),
    (_with(sum_px=np.full((2, 3), np.inf)), r"GMMStats\.sum_px holds NaN or infinity"),
    (_with(n=np.array([1.0, -1.0])), r"GMMStats\.n must be >= 0.*got -1\.0"),
    (_with(sum_pxx=-np.ones((2, 3))), r"GMMStats\.sum_pxx must be >= 0"),
    (_with(t=-1), r"GMMStats\.t must be a frame count.*got -1"),
    (_with(t=2.5), r"GMMStats\.t must be a frame count.*got 2\.5"),
    (_with(log_likelihood=np.nan), r"GMMStats\.log_likelihood must be a finite number"),
    (GMMStats(0, 3), r"GMMStats\.n_gaussians must be an integer >= 1.*got 0"),
    (_with(t=2), r"GMMStats\.n must add up to at most t to be saved: the occupancies n add up "
                 r"to 3, more than the T = 2 frames"),
    (_with(n=np.array([3.0, 0.0])), r"GMMStats cannot be saved: Gaussian 1 has sum_px\[1\] not all "
                                    r"0 while its occupancy n\[1\] is 0"),
])
@pytest.mark.parametrize("opened", [False, True])
def test_statistics_the_reader_would_refuse_are_not_saved(tmp_path, stats, problem, opened):
    # such a file could not be loaded again (by emkit; the reference read a truncated t); the
    # reader's checks are made before anything is written, into a path or an open file
    path = tmp_path / "stats.h5"
    with pytest.raises(ValueError, match=problem):
        if opened:
            with h5py.File(path, "w") as f:
                stats.save(f)
        else:
            stats.save(path)
    if opened:
        with h5py.File(path, "r") as f:
            assert list(f) == [] and dict(f.attrs) == {}
    else:
        assert list(tmp_path.iterdir()) == []


def test_statistics_of_every_accepted_form_still_round_trip(tmp_path):
    # integer sums, a numpy integer t and a bob 2.x 1-element log-likelihood are saved as before
    stats = _with(n=np.array([2, 1]), sum_pxx=np.zeros((2, 3), dtype=np.int32), t=np.int64(3),
                  log_likelihood=np.array([-4.0]))
    stats.save(tmp_path / "ok.h5")
    loaded = GMMStats.from_hdf5(tmp_path / "ok.h5")
    np.testing.assert_array_equal(loaded.n, [2.0, 1.0])
    assert loaded.t == 3 and loaded.log_likelihood == -4.0 and not loaded.sum_pxx.any()


def _rewritten(path, **datasets):
    with h5py.File(path, "r+") as f:
        for name, value in datasets.items():
            del f[name]
            f[name] = value
    return path


@pytest.mark.parametrize("T, n", [(1, [2.0, 1.0]), (2, [2.0, 1.0]), (3, [3.0, 1e-2])])
def test_counts_adding_up_to_more_than_the_frames_are_refused(tmp_path, T, n):
    # before: accepted (T = 1 with n adding up to 3 loaded), though each frame's posteriors add
    # up to 1: scores normalised by the frame count (linear_scoring's frame_length_normalization,
    # ISV/JFA scores) came out sum(n)/T times too large
    path = tmp_path / "stats.h5"
    _with().save(path)
    _rewritten(path, T=np.int64(T), n=np.array(n))
    total = f"{sum(n):.6g}"
    with pytest.raises(InvalidFileError, match=rf"^{path}: datasets 'n' and 'T' disagree: the "
                       rf"occupancies n add up to {total}, more than the T = {T} frames"):
        GMMStats.from_hdf5(path)


@pytest.mark.parametrize("T, n", [
    (3, [2.0, 1.0]),             # as written by either library
    (3, [2.0, 1.0 + 1e-4]),      # float rounding (float16 statistics round 5e-4)
    (0, [2.0, 1.0]),             # t never set: init_fields' and from_arrays' default
    (300, [2.0, 1.0]),           # fewer: posteriors scaled or pruned (Kaldi's can be)
    (3, [3.0, 1e-300]),          # MAP statistics: a tiny count
])
def test_counts_up_to_the_frames_are_accepted(tmp_path, T, n):
    path = tmp_path / "stats.h5"
    _with().save(path)
    loaded = GMMStats.from_hdf5(_rewritten(path, T=np.int64(T), n=np.array(n)))
    assert loaded.t == T and np.array_equal(loaded.n, n)


@pytest.mark.parametrize("n, sums, problem", [
    (np.array([3.0, 0.0]), {},
     r"Gaussian 1 has sumPx\[1\] not all 0 while its occupancy n\[1\] is 0"),
    (np.array([3, 0]), {}, r"Gaussian 1 has sumPx\[1\]"),  # integer counts: never rounded to 0
    (np.array([0.0, 3.0]), {"sumPx": np.array([[0.0] * 3, [1.0] * 3])},
     r"Gaussian 0 has sumPxx\[0\] not all 0 while its occupancy n\[0\] is 0"),
])
def test_sums_of_a_gaussian_without_occupancy_are_refused(tmp_path, n, sums, problem):
    # before: accepted, and an M-step on them moved that Gaussian's mean to sumPx / 2.2e-16
    # (4.5e15 for these sums of 1; 2.3e17 measured for real sums of 52), without a word
    path = tmp_path / "stats.h5"
    _with().save(path)
    _rewritten(path, n=n, **sums)
    with pytest.raises(InvalidFileError, match=rf"^{path}: datasets 'n', 'sumPx' and 'sumPxx' "
                       rf"disagree: {problem}"):
        GMMStats.from_hdf5(path)


def test_gaussians_without_occupancy_as_statistics_really_have_them_are_accepted(tmp_path):
    # a guard (accepted before too): a Gaussian no frame reaches (all sums 0) round trips, and a
    # float32 count that rounded to 0 may keep sums that did not (a MAP count of 1e-46 times
    # frames of 1e3 is 1e-43 in float32)
    ubm = _machine()
    ubm.means = np.array([[0.0, 0.0], [1e6, 1e6], [1.0, 1.0]])
    stats = ubm.acc_stats(np.random.default_rng(5).standard_normal((50, 2)))
    assert stats.n[1] == 0 and not stats.sum_px[1].any()
    stats.save(tmp_path / "dead.h5")
    assert GMMStats.from_hdf5(tmp_path / "dead.h5") == stats
    tiny = GMMStats(2, 3)
    tiny.init_fields(0.0, 3, np.array([3.0, 1e-46]).astype(np.float32),
                     np.array([[1.0] * 3, [1e-43] * 3]).astype(np.float32),
                     np.ones((2, 3), dtype=np.float32))
    assert tiny.n[1] == 0 and tiny.sum_px[1].all()
    tiny.save(tmp_path / "tiny.h5")
    assert GMMStats.from_hdf5(tmp_path / "tiny.h5").sum_px.dtype == np.float32
