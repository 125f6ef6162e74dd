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
    """Why ``n_frames`` frames cannot train a UBM of ``n_gaussians`` Gaussians ("" when they
    can): ``option`` is how the caller's user sets the number of Gaussians (``-n``)."""
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
    """k-means (k-means|| initialisation, ``seed``), then ML EM of means, variances and weights;
    ``checkpoint``/``kmeans_checkpoint``: the estimators' ``checkpoint=`` files (resume);
    ``compute_dtype``: the precision of the EM's products (``"float32"``: about twice as fast);
    the UBM returned computes in float64 either way (later statistics keep float64's numbers)."""
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
    """One GMMStats per utterance (list of (n_frames, D) arrays), in blocks of 64 utterances.

    ``top_k``/``min_posterior``: Gaussian selection (see :meth:`~emkit.GMMMachine.transform`);
    None: emkit's configuration (exact statistics by default)."""
    utterances = list(utterances)
    out = []
    with progress_bar(total=len(utterances), desc=desc, enabled=progress) as bar:
        for start in range(0, len(utterances), 64):
            block = utterances[start:start + 64]
            out.extend(ubm.transform(block, top_k=top_k, min_posterior=min_posterior))
            bar.update(len(block))
    return out


def stats_per_block(ubm: GMMMachine, budget_bytes: float = 256e6) -> int:
    """How many utterances' GMMStats (about ``16 C D`` bytes each) fit in ``budget_bytes``."""
    C, D = np.shape(ubm.means)
    return max(1, int(budget_bytes // (8 * (2 * C * D + C))))


def ubm_of(machine) -> GMMMachine:
    """The UBM behind ``machine``: a UBM (GMMMachine) itself, else its ``ubm`` (ISV, JFA, an
    :class:`~emkit.experiment.IVectorBackend`, enrolled models)."""
    return machine if isinstance(machine, GMMMachine) else machine.ubm
