"""Statistics of the numerical edge cases (tests/*/test_numerical_edges_*.py): plain numpy, so
that tests/data/edges/make_fixtures.py gives the reference the same arrays."""

from __future__ import annotations

import numpy as np

C, D = 3, 2


def edge_ubm_arrays():
    """``(means, variances, weights)`` of the UBM of the edge cases: C = 3 Gaussians in D = 2."""
    rng = np.random.default_rng(5)
    return rng.normal(0, 1.5, (C, D)), rng.uniform(0.5, 2, (C, D)), np.array([0.3, 0.3, 0.4])


def edge_statistics(n_sessions: int, seed: int, unit: float = 1.0):
    """``(n, sum_px, sum_pxx)`` of ``n_sessions`` sessions near the UBM, counts multiplied by
    ``unit`` (so 1e300 gives statistics whose sums reach about 5e301)."""
    means, variances, _ = edge_ubm_arrays()
    rng = np.random.default_rng(seed)
    n = rng.gamma(2, 10, (n_sessions, C))
    mu = means + rng.normal(0, 0.5, (n_sessions, 1, D))
    sum_pxx = n[..., None] * (mu**2 + variances * rng.uniform(0.7, 1.3, (n_sessions, 1, D)))
    return n * unit, n[..., None] * mu * unit, sum_pxx * unit


#: factor-analysis edge cases (fa_case): 6 sessions of 3 classes, changed as each name says
FA_CASES = ("zero_frame_session", "duplicated_sessions", "one_session_class", "counts_1e-300",
            "counts_1e300", "counts_1e-3", "float32")


def fa_initial_values():
    """Initial U (CD, 2), V (CD, 2), D (CD,) and a U of rank 5 (CD, 5), CD = 6."""
    rng = np.random.default_rng(6)
    return {"U0": rng.normal(size=(C * D, 2)), "V0": rng.normal(size=(C * D, 2)),
            "D0": rng.uniform(0.2, 1.0, C * D), "U5": rng.normal(size=(C * D, 5))}


def _check_case(name: str, cases: tuple) -> None:
    """A misspelt case would silently give the plain data ("plain": those on purpose)."""
    if name != "plain" and name not in cases:
        raise ValueError(f"unknown edge case {name!r}; known: 'plain', {', '.join(cases)}")


def fa_case(name: str):
    """``((n, sum_px, sum_pxx), labels, dtype)`` of the factor-analysis edge case ``name`` (one of
    FA_CASES, or "plain": the data unchanged)."""
    _check_case(name, FA_CASES)
    n, f, ff = edge_statistics(6, 0)
    labels = np.array([0, 0, 1, 1, 2, 2])
    dtype = np.float32 if name == "float32" else np.float64
    if name == "zero_frame_session":
        n, f, ff = (a.copy() for a in (n, f, ff))
        n[3], f[3], ff[3] = 0.0, 0.0, 0.0
    elif name == "duplicated_sessions":
        n, f, ff = (np.concatenate([a[:2]] * 3) for a in (n, f, ff))
    elif name == "one_session_class":
        n, f, ff, labels = n[:5], f[:5], ff[:5], labels[:5]
    elif name.startswith("counts_"):
        unit = float(name.split("_")[1])
        n, f, ff = n * unit, f * unit, ff * unit
    return (n, f, ff), labels, dtype


#: i-vector edge cases (iv_case): 8 sessions, changed as each name says
IV_CASES = ("zero_frame_session", "unoccupied_gaussian", "duplicated_sessions", "identical_sessions",
            "two_sessions", "counts_1e-300", "counts_1e-3", "float32")


def iv_case(name: str):
    """``((n, sum_px, sum_pxx), dtype)`` of the i-vector edge case ``name`` (one of IV_CASES, or
    "plain": the data unchanged)."""
    _check_case(name, IV_CASES)
    n, f, ff = (a.copy() for a in edge_statistics(8, 0))
    dtype = np.float32 if name == "float32" else np.float64
    if name == "zero_frame_session":
        n[3], f[3], ff[3] = 0.0, 0.0, 0.0
    elif name == "unoccupied_gaussian":
        n[:, 1], f[:, 1], ff[:, 1] = 0.0, 0.0, 0.0
    elif name == "duplicated_sessions":
        n, f, ff = (np.concatenate([a[:2]] * 4) for a in (n, f, ff))
    elif name == "identical_sessions":
        n, f, ff = (np.concatenate([a[:1]] * 8) for a in (n, f, ff))
    elif name == "two_sessions":
        n, f, ff = n[:2], f[:2], ff[:2]
    elif name.startswith("counts_"):
        unit = float(name.split("_")[1])
        n, f, ff = n * unit, f * unit, ff * unit
    return (n, f, ff), dtype


def edge_ubm(gmm_class):
    """A ``gmm_class`` (emkit's or the reference's GMMMachine) holding :func:`edge_ubm_arrays`."""
    ubm = gmm_class(C)
    ubm.means, ubm.variances, ubm.weights = edge_ubm_arrays()
    return ubm


def edge_stats(stats_class, arrays, dtype=np.float64) -> list:
    """One ``stats_class`` (a GMMStats) per session of ``arrays`` (``n, sum_px, sum_pxx`` as
    :func:`edge_statistics` gives them), its arrays cast to ``dtype``."""
    out = []
    for n, sum_px, sum_pxx in zip(*arrays):
        s = stats_class(C, D)
        s.init_fields(0.0, 1, n.astype(dtype), sum_px.astype(dtype), sum_pxx.astype(dtype))
        out.append(s)
    return out
