"""i-vectors (Dehak et al., 2011): ``IVectorMachine`` and helpers, as ``bob.learn.em.ivector``.

The machine learns the total variability matrix ``T`` (C, D, R) and the residual diagonal
covariance ``sigma`` (C, D) from per-utterance :class:`~emkit.stats.GMMStats` computed against a
UBM, and maps each utterance to its i-vector ``w`` (R,), the posterior mean of the latent factor
in ``mean supervector = m + T w``.  Module-level :func:`e_step`, :func:`m_step`,
:class:`IVectorStats` and the ``compute_*`` helpers mirror the reference's.

Layout, by stage: :mod:`._stats` (the additive accumulators), :mod:`._helpers` (the reference's
one-utterance helpers), :mod:`._batching` (input checks, batch sizes, the statistics stacked by
``GMMStats.stack`` and centred), :mod:`._training` (E-step and M-step, on threads or dask
partitions), :mod:`._machine` (the estimator: validation, the EM loop through ``resumable_em``,
projection; it registers the HDF5 layout of :mod:`emkit.io.ivector`).

How it is computed (:mod:`emkit._kernels.ivector`): utterances are processed in batches of
bounded size (``batch_size``; by default the accumulators plus a batch's temporaries take at most
1.5x the accumulators + 256 MB, per thread when each thread has its own accumulators); the
posterior precisions of a batch come from one matrix product over Gaussians (on their packed
symmetric halves); each is factorised and inverted by LAPACK on one buffer per thread, and
``E[w w']``, packed, is summed into the packed second-order accumulator by one matrix product
(the M-step reads the packed triangles; ``IVectorStats.nij_sigma_wij2`` expands them on first
access).  The accumulators are additive, so a list of statistics is one task and a
``dask.bag`` of them is one task per partition, summed in a fixed order.

Statistics far from the origin: the E-step centres them on the UBM means, the second-order
ones (``S - 2 F m + n m**2``, whose terms are each about ``n m**2``) in compensated arithmetic
(:func:`emkit._kernels.compensated.centred_second_moments`), so that emkit adds no error to what the
GMMStats hold.  What they hold is limited: far from the origin (``|m| >> sigma``) ``sum_pxx``
keeps about ``16 - log10(m**2 / sigma**2)`` digits of the variances (none at 1e8).

Training objective and convergence: each E-step also computes the log-likelihood of the
statistics under the current model (Kenny et al., 2005)::

    log p_s = - sum_c n_sc (D log 2 pi + log|sigma_c|) / 2 - sum_c tr(sigma_c^-1 Snorm_sc) / 2
              + b_s' w_s / 2 - log|P_s| / 2

(``Snorm`` the second-order statistics centred on the UBM means, ``P_s`` the posterior precision,
``b_s`` its linear term, ``w_s`` the i-vector): the density of the utterance's frames given their
alignments, with w integrated out.  EM never decreases it.  ``convergence_threshold`` stops training when the
relative change of its average per utterance between two iterations is at most the threshold
(the reference ignored the parameter).

LDA, PLDA and length normalisation are not part of the reference.  emkit has
:class:`emkit.lda.LDA`, :class:`emkit.plda.PLDA`, and :class:`emkit.experiment.IVectorBackend`,
the back-end ``emkit train-ivector`` trains, which length-normalises the i-vectors itself; it has
no length-normalisation class: in a pipeline, scikit-learn's ``Normalizer`` does it.  The
transforms are scikit-learn estimators, so they chain in a pipeline on the i-vectors, e.g.
whitening, length normalisation, LDA then WCCN::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    from emkit.lda import LDA
    from emkit.wccn import WCCN
    from emkit.whitening import Whitening

    ivectors = machine.transform(train_stats)            # (S, R) ndarray
    backend = make_pipeline(Whitening(), Normalizer(),    # Normalizer(): unit L2 norm per row
                            LDA(150), WCCN())
    backend.fit(ivectors, speaker_labels)
    projected = backend.transform(machine.transform(test_stats))
"""

from __future__ import annotations

from ..gmm import GMMMachine, GMMStats  # importable from here, as from the references
from ._helpers import (compute_id_tt_sigma_inv_t, compute_tct_sigmac_inv, compute_tct_sigmac_inv_tc,
                       compute_tt_sigma_inv_fnorm)
from ._machine import IVectorMachine
from ._stats import IVectorStats
from ._training import e_step, m_step

__all__ = [
    "IVectorMachine",
    "IVectorStats",
    "e_step",
    "m_step",
    "compute_tct_sigmac_inv",
    "compute_tct_sigmac_inv_tc",
    "compute_id_tt_sigma_inv_t",
    "compute_tt_sigma_inv_fnorm",
    # imported by the reference's module (code may import them from here)
    "GMMMachine",
    "GMMStats",
]
