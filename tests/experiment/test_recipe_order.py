"""``emkit run`` takes a data set's utterances in the order of their ids, as the train-*
commands do: the order of the lines of its feats.scp changes no model, and the order of the
lines of the normalisation cohort's utt2spk no normalised score."""

import numpy as np
import pytest
from feature_files import write_ark, write_scp

from emkit.recipe import run_recipe

_REST = """\
[data.test]
features = ["test.npz"]
[ubm]
data = "train"
gaussians = 3
iterations = 3
kmeans_iterations = 3
[systems.gmm]
kind = "gmm-map"
[systems.isv]
kind = "isv"
rank_u = 1
iterations = 2
[conditions.test]
data = "test"
enroll = "enroll"
trials = "trials"
"""
RECIPE = """\
[data.train]
features = ["feats.scp"]
utt2spk = "utt2spk"
""" + _REST
COHORT_RECIPE = """\
[data.train]
features = ["train.npz"]
utt2spk = "train.utt2spk"
[data.cohort]
features = ["cohort.npz"]
utt2spk = "cohort.utt2spk"
""" + _REST + """\
[norm]
method = "METHOD"
cohort = "cohort"
"""


def _project(folder, ark, offsets: dict, ids):
    """A recipe on the utterances of ``ark``, its feats.scp listing them in the order ``ids``."""
    folder.mkdir()
    write_scp(folder / "feats.scp", ark, {u: offsets[u] for u in ids})
    (folder / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in ids))
    rng = np.random.default_rng(1)
    np.savez(folder / "test.npz", **{f"s{s}-t": rng.normal(s, 1.0, (30, 3)) for s in range(3)})
    (folder / "enroll").write_text("m0 s0-t\n")
    (folder / "trials").write_text("m0 s0-t target\nm0 s1-t nontarget\nm0 s2-t nontarget\n")
    (folder / "recipe.toml").write_text(RECIPE)
    run_recipe(folder / "recipe.toml")
    return folder / "work"


def test_the_order_of_the_feature_lines_changes_no_model(tmp_path):
    # the UBM step took the frames in the scp's order: k-means samples frames by index, so the
    # same utterances listed in another order trained another UBM (and every model after it);
    # the systems' step took the utterances in that order too: another rounding of its sums
    rng = np.random.default_rng(0)
    features = {f"s{s}-{k}": rng.normal(s, 1.0 + k / 4, (30 + 5 * k + s, 3))
                for s in range(4) for k in range(3)}
    offsets = write_ark(tmp_path / "feats.ark", features)
    ids = sorted(features)
    shuffled = ids[1::2] + ids[::2][::-1]
    in_order = _project(tmp_path / "sorted", tmp_path / "feats.ark", offsets, ids)
    reordered = _project(tmp_path / "shuffled", tmp_path / "feats.ark", offsets, shuffled)
    assert (reordered / "ubm.h5").read_bytes() == (in_order / "ubm.h5").read_bytes()
    # the systems' training too (the statistics, then the sums of every EM pass, in one order)
    machine = "systems/isv/machine.h5"
    assert (reordered / machine).read_bytes() == (in_order / machine).read_bytes()
    for scores in ("systems/isv/test.raw.txt", "systems/gmm/test.raw.txt"):
        assert (reordered / scores).read_text() == (in_order / scores).read_text()


def test_a_sorted_scp_trains_the_ubm_as_the_library_does_in_its_order(tmp_path):
    # taking the utterances in id order changes nothing for an scp already sorted (Kaldi's are)
    from emkit import GMMMachine
    from emkit.experiment import train_ubm
    from emkit.features import read_feature_sources

    rng = np.random.default_rng(2)
    features = {f"s{s}-{k}": rng.normal(s, 1.0, (30 + k, 3)) for s in range(4) for k in range(3)}
    offsets = write_ark(tmp_path / "feats.ark", features)
    work = _project(tmp_path / "p", tmp_path / "feats.ark", offsets, sorted(features))
    in_file_order = read_feature_sources([str(tmp_path / "p" / "feats.scp")])
    frames = np.concatenate(list(in_file_order.values()))
    direct = train_ubm(frames, 3, max_iterations=3, kmeans_iterations=3, seed=0)
    recipe_ubm = GMMMachine.from_hdf5(work / "ubm.h5")
    for name in ("means", "variances", "weights"):
        np.testing.assert_array_equal(getattr(recipe_ubm, name), getattr(direct, name))


def _cohort_project(folder, method: str, cohort_ids):
    """A recipe whose cohort's utt2spk lists its utterances in the order ``cohort_ids``."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = {f"s{s}-{k}": rng.normal(s, 1.0 + k / 4, (25 + 3 * k, 3))
             for s in range(3) for k in range(2)}
    np.savez(folder / "train.npz", **train)
    (folder / "train.utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in sorted(train)))
    cohort = {u: rng.normal(int(u[1]) / 2, 1.3, (20 + int(u[-1]), 3)) for u in sorted(cohort_ids)}
    np.savez(folder / "cohort.npz", **cohort)
    (folder / "cohort.utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in cohort_ids))
    np.savez(folder / "test.npz", **{f"s{s}-t": rng.normal(s, 1.0, (30, 3)) for s in range(3)})
    (folder / "enroll").write_text("m0 s0-t\nm1 s1-t\n")
    (folder / "trials").write_text("m0 s0-t target\nm0 s1-t nontarget\nm0 s2-t nontarget\n"
                                   "m1 s1-t target\nm1 s2-t nontarget\n")
    (folder / "recipe.toml").write_text(COHORT_RECIPE.replace("METHOD", method))
    run_recipe(folder / "recipe.toml")
    return folder / "work" / "systems"


@pytest.mark.parametrize("method", ["zt", "s"])
def test_the_order_of_the_cohort_lines_changes_no_normalised_score(tmp_path, method):
    # the cohort's speakers became T-cohort models, and its utterances Z-cohort probes, in the
    # utt2spk's line order: the cohort means and deviations were summed in that order, and a
    # speaker's utterances enrolled in it, so reordered lines gave scores that differed by rounding
    ids = [f"c{c}-{k}" for c in range(5) for k in range(3)]
    shuffled = ids[1::2] + ids[::2][::-1]
    in_order = _cohort_project(tmp_path / "sorted", method, ids)
    reordered = _cohort_project(tmp_path / "shuffled", method, shuffled)
    for system in ("gmm", "isv"):
        norm = f"{system}/test.norm.txt"
        assert (reordered / norm).read_text() == (in_order / norm).read_text()
        assert (reordered / f"{system}/test.raw.txt").read_text() == \
            (in_order / f"{system}/test.raw.txt").read_text()
