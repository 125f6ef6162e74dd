"""Choose the hyper-parameters of ``emkit demo`` without looking at its evaluation trials.

The demo trains and enrols on session 0 of the Japanese Vowels data and probes with session 1.
This script never touches session 1: it cross-validates on session 0 alone.  Each speaker's 30
session-0 utterances are cut into 3 consecutive blocks of 10; in fold k, block k of every
speaker is probed (90 probes x 9 models) against models enrolled from, and systems (UBM,
subspaces, i-vector extractor, back-ends) trained on, the other two blocks.  A setting's score is
its EER averaged over the 3 folds; the setting with the lowest mean wins (ties: the smaller,
cheaper model, i.e. the one listed first).

The search goes in stages, each fixing what the next one builds on:

1. the UBM size C and the MAP relevance factor r, by GMM-MAP;
2. with that UBM: ISV (rank of U, relevance factor of D), JFA (ranks of U and V, relevance factor),
   the i-vector dimension R (cosine scoring after WCCN) and the PLDA model (dimension of its
   speaker subspace) on those i-vectors.

Run:  python scripts/select_demo_hyperparameters.py      (about a minute on one core)
It prints the table of every setting tried and the chosen values; those are hard-coded as the
defaults of :class:`emkit.experiment.DemoConfig`.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from emkit import metrics
from emkit.datasets import load_japanese_vowels
from emkit.experiment import IVectorBackend, compute_stats, enroll, score, train_ubm
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.ivector import IVectorMachine

N_FOLDS = 3
SEED = 0
UBM_SIZES = (2, 4, 8, 16, 32, 64)
RELEVANCE = (1.0, 4.0, 16.0, 64.0, 256.0)
ISV_RANKS = (1, 2, 5, 10)
JFA_RANKS = ((1, 2), (1, 8), (2, 4), (2, 8), (5, 8))  # (r_U, r_V); 8 = training speakers - 1
IVECTOR_DIMS = (5, 10, 20, 40)
PLDA = (("two-covariance", None), ("simplified", 2), ("simplified", 4), ("simplified", 8))
FA_ITERATIONS, IVECTOR_ITERATIONS, UBM_ITERATIONS = 10, 10, 50

#: What this script chose (seed 0); hard-coded as the defaults of emkit's DemoConfig.
CHOSEN = dict(n_gaussians=4, relevance_factor=64.0, isv_rank=1, isv_relevance_factor=64.0,
              jfa_rank_u=2, jfa_rank_v=8, jfa_relevance_factor=256.0, ivector_dim=10,
              plda_model="two-covariance", plda_dim_f=None)


def folds():
    """[(train utterance indices, probe utterance indices)] of session 0, one per fold."""
    jv = load_japanese_vowels()
    out = []
    for k in range(N_FOLDS):
        train, probe = [], []
        for s in np.unique(jv.speaker_ids[jv.indices(session=0)]):
            own = jv.indices(session=0, speaker=s)
            block = np.array_split(own, N_FOLDS)
            probe.extend(block[k])
            train.extend(np.concatenate([b for j, b in enumerate(block) if j != k]))
        out.append((np.array(train), np.array(probe)))
    return jv, out


class Fold:
    """The data of one fold and its UBM statistics (cached per UBM size)."""

    def __init__(self, jv, train, probe):
        self.jv, self.train, self.probe = jv, train, probe
        self.labels = jv.speaker_ids[train]
        self.speakers = np.unique(self.labels)
        self.truth = jv.speaker_ids[probe][None, :] == self.speakers[:, None]
        self._cache = {}

    def ubm(self, C):
        if C not in self._cache:
            frames = np.concatenate([self.jv.utterances[i] for i in self.train])
            ubm = train_ubm(frames, C, max_iterations=UBM_ITERATIONS, seed=SEED)
            train = compute_stats(ubm, [self.jv.utterances[i] for i in self.train])
            probe = compute_stats(ubm, [self.jv.utterances[i] for i in self.probe])
            self._cache[C] = (ubm, train, probe)
        return self._cache[C]

    def eer(self, machine, C, **enroll_kwargs):
        ubm, train, probe = self.ubm(C)
        per_model = [[train[k] for k in np.flatnonzero(self.labels == s)] for s in self.speakers]
        models = enroll(machine, list(map(str, self.speakers)), per_model, **enroll_kwargs)
        s = score(models, probe)
        return metrics.eer(s[self.truth], s[~self.truth])


def mean_eer(fold_list, make, C, **enroll_kwargs):
    return float(np.mean([f.eer(make(f, *f.ubm(C)[:2]), C, **enroll_kwargs) for f in fold_list]))


def search(title, fold_list, settings, evaluate):
    """Evaluate every setting (a dict); print them; return the best (first on ties)."""
    print(f"\n{title}")
    best, best_eer = None, np.inf
    for setting in settings:
        e = evaluate(**setting)
        mark = ""
        if e < best_eer - 1e-12:
            best, best_eer, mark = setting, e, "  <- best so far"
        print(f"  {', '.join(f'{k}={v}' for k, v in setting.items()):<48} "
              f"CV EER {100 * e:6.2f} %{mark}", flush=True)
    print(f"  chosen: {best} (CV EER {100 * best_eer:.2f} %)")
    return best, best_eer


def main() -> int:
    start = time.perf_counter()
    jv, split = folds()
    fold_list = [Fold(jv, tr, pr) for tr, pr in split]
    print(f"{N_FOLDS}-fold cross-validation on session 0 only ({len(split[0][0])} training and "
          f"{len(split[0][1])} probe utterances per fold); session 1 is never read")

    gmm, _ = search("1. GMM-MAP: UBM size C and relevance factor r", fold_list,
                    [dict(C=C, r=r) for C, r in itertools.product(UBM_SIZES, RELEVANCE)],
                    lambda C, r: mean_eer(fold_list, lambda f, ubm, train: ubm, C,
                                          relevance_factor=r))
    C = gmm["C"]

    def isv(rank, r):
        return mean_eer(fold_list, lambda f, ubm, train: ISVMachine(
            r_U=rank, em_iterations=FA_ITERATIONS, ubm=ubm, relevance_factor=r,
            random_state=SEED).fit(train, f.labels), C)

    def jfa(ranks, r):
        return mean_eer(fold_list, lambda f, ubm, train: JFAMachine(
            r_U=ranks[0], r_V=ranks[1], em_iterations=FA_ITERATIONS, ubm=ubm, relevance_factor=r,
            random_state=SEED).fit(train, f.labels), C)

    extractors = {}

    def extractor(f, ubm, train, R):
        key = (id(f), R)
        if key not in extractors:
            extractors[key] = IVectorMachine(ubm, dim_t=R, random_state=SEED,
                                             max_iterations=IVECTOR_ITERATIONS).fit(train)
        return extractors[key]

    def ivector(R):
        return mean_eer(fold_list, lambda f, ubm, train: IVectorBackend(
            extractor(f, ubm, train, R)).fit(train, f.labels, plda=False), C, backend="cosine")

    chosen_isv, _ = search(f"2a. ISV on the C = {C} UBM: rank of U and relevance factor",
                           fold_list, [dict(rank=k, r=r) for k in ISV_RANKS for r in RELEVANCE],
                           isv)
    chosen_jfa, _ = search(f"2b. JFA on the C = {C} UBM: ranks (U, V) and relevance factor",
                           fold_list, [dict(ranks=k, r=r) for k in JFA_RANKS for r in RELEVANCE],
                           jfa)
    chosen_iv, _ = search(f"2c. i-vectors (WCCN, cosine) on the C = {C} UBM: dimension R",
                          fold_list, [dict(R=R) for R in IVECTOR_DIMS], ivector)
    R = chosen_iv["R"]

    def plda(model, dim_f):
        return mean_eer(fold_list, lambda f, ubm, train: IVectorBackend(
            extractor(f, ubm, train, R), plda_model=model, plda_dim_f=dim_f).fit(
                train, f.labels), C, backend="plda")

    chosen_plda, _ = search(f"2d. PLDA on the R = {R} i-vectors: model and speaker-subspace "
                            "dimension", fold_list,
                            [dict(model=m, dim_f=d) for m, d in PLDA], plda)
    found = dict(n_gaussians=C, relevance_factor=gmm["r"], isv_rank=chosen_isv["rank"],
                 isv_relevance_factor=chosen_isv["r"], jfa_rank_u=chosen_jfa["ranks"][0],
                 jfa_rank_v=chosen_jfa["ranks"][1], jfa_relevance_factor=chosen_jfa["r"],
                 ivector_dim=R, plda_model=chosen_plda["model"], plda_dim_f=chosen_plda["dim_f"])
    print(f"\nChosen: {', '.join(f'{k}={v!r}' for k, v in found.items())}")
    print(f"({time.perf_counter() - start:.0f} s)")
    if found != CHOSEN:
        print("These differ from CHOSEN, the defaults of emkit.experiment.DemoConfig: update both.")
        return 1
    print("Same as CHOSEN, the defaults of emkit.experiment.DemoConfig.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
