"""The UBM and the statistics every system starts from."""

from __future__ import annotations

import numpy as np

from ..gmm import GMMMachine
from ..kmeans import KMeansMachine
from ._common import progress_bar


#: The fewest training frames per Gaussian of :func:`train_ubm`'s callers (the CLI, recipes):
#: Kaldi advises tens; fewer leaves Gaussians on single frames, whose zero variances give
#: meaningless scores.
MIN_FRAMES_PER_GAUSSIAN = 10


def too_few_frames(n_frames: int, n_gaussians: int, option: str) -> str:
    """Why some frames cannot train a UBM of some size (at least
    :data:`MIN_FRAMES_PER_GAUSSIAN` frames per Gaussian are needed).

    Parameters
    ----------
    n_frames : int
        Training frames.
    n_gaussians : int
        Gaussians asked for.
    option : str
        How the caller's user sets the number of Gaussians (``-n``), for the advice.

    Returns
    -------
    str
        The reason, with the largest number of Gaussians the frames allow; "" when they can.
    """
    if n_frames >= MIN_FRAMES_PER_GAUSSIAN * n_gaussians:
        return ""
    most = n_frames // MIN_FRAMES_PER_GAUSSIAN
    frames = f"{n_frames} frame{'s' * (n_frames != 1)}"
    return (f"{frames} cannot train {n_gaussians} Gaussian{'s' * (n_gaussians != 1)}: a UBM needs "
            f"at least {MIN_FRAMES_PER_GAUSSIAN} frames per Gaussian; use "
            + (f"{option} {most} or fewer, or " if most else "") + "more data")


def train_ubm(frames, n_gaussians: int, *, max_iterations: int = 25,
              convergence_threshold: float = 1e-5, kmeans_iterations: int = 20,
              seed: int = 0, checkpoint=None, kmeans_checkpoint=None,
              compute_dtype: str = "float64") -> GMMMachine:
    """Train a UBM: k-means, then maximum-likelihood EM of means, variances and weights.

    Parameters
    ----------
    frames : array-like of shape (N, D)
        Training frames (a numpy or dask array).
    n_gaussians : int
        Gaussians of the UBM, C.
    max_iterations : int, keyword-only, default 25
        EM iterations at most.
    convergence_threshold : float, keyword-only, default 1e-5
        EM stops when the relative change of the average log-likelihood is at most this.
    kmeans_iterations : int, keyword-only, default 20
        k-means iterations at most (after a k-means|| initialisation).
    seed : int, keyword-only, default 0
        Random state of k-means and the GMM.
    checkpoint, kmeans_checkpoint : str, path-like or None, keyword-only
        The ``checkpoint=`` files of the GMM and k-means estimators (a rerun resumes from them).
    compute_dtype : str, keyword-only, default "float64"
        Precision of the EM's products (``"float32"``: about twice as fast).

    Returns
    -------
    GMMMachine
        The fitted UBM, set to compute in float64 whatever ``compute_dtype`` (later statistics
        keep float64's numbers).
    """
    kmeans = KMeansMachine(n_gaussians, max_iter=kmeans_iterations, random_state=seed,
                           checkpoint=kmeans_checkpoint)
    ubm = GMMMachine(n_gaussians, trainer="ml", max_fitting_steps=max_iterations,
                     checkpoint=checkpoint,
                     convergence_threshold=convergence_threshold, random_state=seed,
                     k_means_trainer=kmeans, update_means=True, update_variances=True,
                     update_weights=True, compute_dtype=compute_dtype)
    return ubm.fit(frames).set_params(compute_dtype="float64")


def compute_stats(ubm: GMMMachine, utterances, *, progress: bool = False,
                  desc: str = "statistics", top_k=None, min_posterior=None) -> list:
    """The GMM statistics of each utterance, computed 64 utterances at a time.

    Parameters
    ----------
    ubm : GMMMachine
        The fitted UBM, C Gaussians of D features.
    utterances : iterable of array-like of shape (n_frames, D)
        The utterances' frames.
    progress : bool, keyword-only, default False
        Show a progress bar.
    desc : str, keyword-only, default "statistics"
        The progress bar's label.
    top_k, min_posterior : int, float or None, keyword-only
        Gaussian selection (see :meth:`~emkit.GMMMachine.transform`); None: emkit's
        configuration (exact statistics by default).

    Returns
    -------
    list of GMMStats
        One per utterance, in order.
    """
    utterances = list(utterances)
    out = []
    with progress_bar(total=len(utterances), desc=desc, enabled=progress) as bar:
        for start in range(0, len(utterances), 64):
            block = utterances[start:start + 64]
            out.extend(ubm.transform(block, top_k=top_k, min_posterior=min_posterior))
            bar.update(len(block))
    return out


def stats_per_block(ubm: GMMMachine, budget_bytes: float = 256e6) -> int:
    """How many utterances' GMMStats (about ``16 C D`` bytes each) fit in a memory budget.

    Parameters
    ----------
    ubm : GMMMachine
        The fitted UBM, C Gaussians of D features.
    budget_bytes : float, default 256e6
        The memory budget, in bytes.

    Returns
    -------
    int
        At least 1.
    """
    C, D = np.shape(ubm.means)
    return max(1, int(budget_bytes // (8 * (2 * C * D + C))))


def ubm_of(machine) -> GMMMachine:
    """The UBM behind a machine.

    Parameters
    ----------
    machine : GMMMachine or object with a ``ubm``
        A UBM, or an ISV/JFA machine, an i-vector machine, an
        :class:`~emkit.experiment.IVectorBackend` or :class:`~emkit.experiment.EnrolledModels`.

    Returns
    -------
    GMMMachine
        ``machine`` itself when it is a GMMMachine, else its ``ubm``.
    """
    return machine if isinstance(machine, GMMMachine) else machine.ubm
