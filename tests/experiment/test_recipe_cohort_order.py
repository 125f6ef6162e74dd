"""``emkit run`` takes the cohort of score normalisation in the order of its utterance ids: the
order of the lines of the cohort's utt2spk changes no normalised score."""

import numpy as np
import pytest

from emkit.recipe import run_recipe

RECIPE = """\
[data.train]
features = ["train.npz"]
utt2spk = "train.utt2spk"
[data.cohort]
features = ["cohort.npz"]
utt2spk = "cohort.utt2spk"
[data.test]
features = ["test.npz"]
[ubm]
data = "train"
gaussians = 3
iterations = 2
kmeans_iterations = 2
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
[norm]
method = "METHOD"
cohort = "cohort"
"""


def _project(folder, method: str, cohort_ids):
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
    (folder / "recipe.toml").write_text(RECIPE.replace("METHOD", method))
    run_recipe(folder / "recipe.toml")
    return folder / "work" / "systems"


@pytest.mark.parametrize("method", ["zt", "s"])
def test_the_order_of_the_cohort_lines_changes_no_normalised_score(tmp_path, method):
    # the cohort's speakers became T-cohort models, and its utterances Z-cohort probes, in the
    # utt2spk's line order: the cohort means and deviations were summed in that order, and a
    # speaker's utterances enrolled in it, so reordered lines gave scores that differed by rounding
    ids = [f"c{c}-{k}" for c in range(5) for k in range(3)]
    shuffled = ids[1::2] + ids[::2][::-1]
    in_order = _project(tmp_path / "sorted", method, ids)
    reordered = _project(tmp_path / "shuffled", method, shuffled)
    for system in ("gmm", "isv"):
        norm = f"{system}/test.norm.txt"
        assert (reordered / norm).read_text() == (in_order / norm).read_text()
        assert (reordered / f"{system}/test.raw.txt").read_text() == \
            (in_order / f"{system}/test.raw.txt").read_text()
