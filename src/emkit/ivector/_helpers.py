"""The reference's helpers of one utterance (``bob.learn.em.ivector``'s ``compute_*``)."""

from __future__ import annotations

import numpy as np

from ..stats import GMMStats

def compute_tct_sigmac_inv(T: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``T_c' sigma_c^-1`` for each Gaussian.

    Parameters
    ----------
    T : ndarray of shape (C, D, R)
        The total variability matrix, per Gaussian.
    sigma : ndarray of shape (C, D)
        The residual variances.

    Returns
    -------
    ndarray of shape (C, R, D)
    """
    return np.asarray(T).transpose(0, 2, 1) / np.asarray(sigma)[:, None, :]


def compute_tct_sigmac_inv_tc(T: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``T_c' sigma_c^-1 T_c`` for each Gaussian.

    Parameters
    ----------
    T : ndarray of shape (C, D, R)
        The total variability matrix, per Gaussian.
    sigma : ndarray of shape (C, D)
        The residual variances.

    Returns
    -------
    ndarray of shape (C, R, R)
    """
    return compute_tct_sigmac_inv(T, sigma) @ np.asarray(T)


def compute_id_tt_sigma_inv_t(stats: GMMStats, T: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Posterior precision ``I + sum_c n_c T_c' sigma_c^-1 T_c`` of one utterance.

    Parameters
    ----------
    stats : GMMStats
    T : ndarray of shape (C, D, R)
        The total variability matrix, per Gaussian.
    sigma : ndarray of shape (C, D)
        The residual variances.

    Returns
    -------
    ndarray of shape (R, R)
    """
    C, D, R = np.shape(T)
    tst = compute_tct_sigmac_inv_tc(T, sigma).reshape(C, R * R)
    return np.eye(R) + (np.asarray(stats.n, dtype=np.float64) @ tst).reshape(R, R)


def compute_tt_sigma_inv_fnorm(ubm_means: np.ndarray, stats: GMMStats, T: np.ndarray,
                               sigma: np.ndarray) -> np.ndarray:
    """``sum_c T_c' sigma_c^-1 (F_c - n_c m_c)`` of one utterance.

    Parameters
    ----------
    ubm_means : ndarray of shape (C, D)
    stats : GMMStats
    T : ndarray of shape (C, D, R)
        The total variability matrix, per Gaussian.
    sigma : ndarray of shape (C, D)
        The residual variances.

    Returns
    -------
    ndarray of shape (R,)
    """
    n = np.asarray(stats.n, dtype=np.float64)
    fnorm = np.asarray(stats.sum_px, dtype=np.float64) - n[:, None] * ubm_means
    t_sigma_inv = np.asarray(T) / np.asarray(sigma)[:, :, None]
    return fnorm.reshape(-1) @ t_sigma_inv.reshape(fnorm.size, -1)
