"""The i-vector back-end: an extractor, whitening, length normalisation, LDA, WCCN and PLDA."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..io._registry import register
from ..plda import PLDA
from ..wccn import WCCN
from ..whitening import SingularError, Whitening
from . import _transforms
from ._common import length_norm


@dataclass
class IVectorBackend:
    """An i-vector extractor and what follows it.

    Cosine space: ``lnorm(wccn(lnorm(whiten(w))))``; PLDA space: ``lnorm(whiten(w))``, or with
    an LDA ``lnorm(lda(lnorm(whiten(w))))``, where ``lnorm`` scales to unit norm.

    Parameters
    ----------
    ivector : IVectorMachine
        The trained extractor, i-vectors of dimension R.
    whitening : Whitening or None
        Fitted by :meth:`fit`; None leaves the step out.
    wccn : WCCN or None
        Fitted by :meth:`fit` with labels; None leaves the step out.
    plda : PLDA or None
        Fitted by :meth:`fit` with labels; None: PLDA scoring unavailable.
    plda_model : str, default "two-covariance"
        The :class:`~emkit.PLDA` model that :meth:`fit` trains.
    plda_dim_f : int or None, default None
        That PLDA's ``dim_f``.
    lda_dim : int or None, default None
        The dimension of the :class:`~emkit.lda.LDA` that :meth:`fit` trains with labels (None:
        no LDA).
    lda : LDA or None
        Fitted by :meth:`fit`; None leaves the step out.
    """

    ivector: object
    whitening: object = None
    wccn: object = None
    plda: object = None
    plda_model: str = "two-covariance"
    plda_dim_f: int | None = None
    lda_dim: int | None = None
    lda: object = None

    @classmethod
    def with_dims(cls, ivector, *, lda_dim=None, plda_dim=None) -> "IVectorBackend":
        """The back-end of ``train-ivector`` and of recipes, not fitted.

        Parameters
        ----------
        ivector : IVectorMachine
            The trained extractor.
        lda_dim : int or None, keyword-only
            The LDA's dimension (None: no LDA).
        plda_dim : int or None, keyword-only
            None: a two-covariance PLDA (a full-rank between-class covariance: no rank to set);
            else a simplified PLDA whose speaker subspace F has this rank.

        Returns
        -------
        IVectorBackend
        """
        model = "two-covariance" if plda_dim is None else "simplified"
        return cls(ivector, plda_model=model, plda_dim_f=plda_dim, lda_dim=lda_dim)

    @staticmethod
    def min_utterances(dim: int, n_speakers: int | None = None) -> int:
        """The fewest training utterances :meth:`fit` needs for i-vectors of some dimension.

        Parameters
        ----------
        dim : int
            The i-vectors' dimension.
        n_speakers : int or None, default None
            The speakers of the labels; None: no labels.

        Returns
        -------
        int
            ``dim + 1`` for the whitening (a covariance of N - 1 degrees of freedom); with
            labels ``dim + n_speakers`` for LDA, WCCN and PLDA (a within-class scatter of
            N - n_speakers degrees of freedom, in ``dim`` dimensions: LDA's input is the
            whitened i-vectors).
        """
        return dim + 1 if n_speakers is None else dim + max(int(n_speakers), 1)

    @classmethod
    def too_few_utterances(cls, dim: int, n_utterances: int, n_speakers: int | None = None, *,
                           steps=("WCCN", "PLDA"), name: str = "the dimension") -> str | None:
        """Why some utterances cannot train the back-end (:meth:`min_utterances`).

        Parameters
        ----------
        dim : int
            The i-vectors' dimension.
        n_utterances : int
            The training utterances.
        n_speakers : int or None, default None
            Their speakers; None: no labels.
        steps : sequence of str, keyword-only, default ("WCCN", "PLDA")
            The within-speaker steps trained, in order, as the message names them.
        name : str, keyword-only, default "the dimension"
            What the message calls ``dim`` (an option's name...).

        Returns
        -------
        str or None
            The reason, with the number needed; None when they can.
        """
        need = cls.min_utterances(dim, n_speakers)
        if n_utterances >= need:
            return None
        if n_speakers is None:
            return (f"the whitening of the i-vectors needs more training utterances than {name} "
                    f"(at least {need})")
        steps = list(steps)
        names = ", ".join(steps[:-1]) + " and " * (len(steps) > 1) + steps[-1]
        return (f"{names} need{'s' * (len(steps) == 1)} at least {name} + the number of "
                f"speakers = {dim} + {n_speakers} = {need} training utterances")

    @property
    def ubm(self):
        """The extractor's UBM."""
        return self.ivector.ubm

    def fit(self, train_stats, labels=None, *, plda: bool = True, checkpoint=None):
        """Fit whitening (and, with labels, LDA, WCCN and PLDA) on the i-vectors of
        ``train_stats``.

        Parameters
        ----------
        train_stats : list of GMMStats
            The training utterances' statistics, from the extractor's UBM.
        labels : array-like of shape (n_utterances,), optional
            Their speakers; None (default): whitening only.
        plda : bool, keyword-only, default True
            Train the PLDA (with labels).
        checkpoint : str, path-like or None, keyword-only
            A file that receives the fitted steps, from which a later fit of the same
            extractor, statistics, labels and settings takes them instead of fitting again
            (the same steps, bit for bit).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Too few utterances (:meth:`too_few_utterances`), or a singular covariance or
            within-speaker covariance of the i-vectors (repeated utterances...).
        emkit.CheckpointMismatchError
            ``checkpoint`` holds another run's steps.
        """
        if checkpoint is None:
            return self._fit(train_stats, labels, plda)
        from .._checkpoint import Checkpoint

        run = Checkpoint(checkpoint, IVectorBackendTraining(self, labels is not None and plda),
                         train_stats, labels)
        saved = run.load_result(_STEP_CLASSES)
        if saved is None:
            self._fit(train_stats, labels, plda)
            run.save_result({name: getattr(self, name) for name in _STEP_CLASSES})
        else:
            self._restore(saved, checkpoint, labels is not None, plda)
            logging.getLogger("emkit").info("IVectorBackend: taken from checkpoint %s (trained "
                                            "already)", checkpoint)
        return self

    def _restore(self, steps: dict, path, labelled: bool, plda: bool) -> None:
        """The steps a checkpoint of this very run holds (their sizes checked)."""
        from ..io.errors import InvalidFileError

        need = ["whitening"] + ["lda"] * (labelled and self.lda_dim is not None) \
            + ["wccn"] * labelled + ["plda"] * (labelled and plda)
        R = int(self.ivector.dim_t)
        K = self.lda_dim if "lda" in need else R
        sizes = {"whitening": (R, R), "lda": (R, K), "wccn": (K, K)}
        wrong = [name for name in need if name not in steps or name in sizes and
                 np.shape(steps[name].weights) != sizes[name]]
        if "plda" in need and "plda" not in wrong and steps["plda"].n_features_in_ != K:
            wrong.append("plda")
        if wrong or set(steps) - set(need):
            raise InvalidFileError(f"{path}: the back-end it holds is not the one of this run "
                                   f"({', '.join(wrong) or 'other steps'}); delete it to train "
                                   "the back-end again")
        self.whitening, self.lda = steps["whitening"], steps.get("lda")
        if labelled:
            self.wccn = steps["wccn"]
            if plda:
                self.plda = steps["plda"]

    def _fit(self, train_stats, labels, plda):
        ivectors = self.ivector.transform(train_stats)
        labels = None if labels is None else np.asarray(labels)
        n, dim = ivectors.shape
        steps = ["LDA"] * (self.lda_dim is not None) + ["WCCN"] + ["PLDA"] * plda
        problem = self.too_few_utterances(dim, n, None if labels is None else
                                          len(np.unique(labels)), steps=steps)
        if problem:
            raise ValueError(f"{n} training utterances are too few for i-vectors of dimension "
                             f"{dim}: {problem}")
        self.whitening = _singular_as(Whitening().fit, ivectors, what="covariance")
        self.lda = None
        space = self.plda_space(ivectors, from_ivectors=True)
        if labels is not None and self.lda_dim is not None:
            from ..lda import LDA

            self.lda = LDA(self.lda_dim).fit(space, labels)
            space = length_norm(self.lda.transform(space))
        if labels is not None:
            self.wccn = _singular_as(WCCN().fit, space, labels, what="within-speaker covariance")
            if plda:
                self.plda = PLDA(self.plda_model, dim_f=self.plda_dim_f).fit(space, labels)
        return self

    def plda_space(self, X, *, from_ivectors=False) -> np.ndarray:
        """The vectors PLDA scores: ``lnorm(whiten(w))``, then ``lnorm(lda(.))`` with an LDA.

        Parameters
        ----------
        X : list of GMMStats, or array-like of shape (N, R)
            The utterances' statistics (from the extractor's UBM), or their i-vectors with
            ``from_ivectors``.
        from_ivectors : bool, keyword-only, default False
            ``X`` holds i-vectors, not statistics.

        Returns
        -------
        ndarray of shape (N, K)
            Unit-norm rows; K is the LDA's dimension, else R.
        """
        w = X if from_ivectors else self.ivector.transform(X)
        if self.whitening is not None:
            w = self.whitening.transform(w)
        w = length_norm(w)
        return w if self.lda is None else length_norm(self.lda.transform(w))

    def cosine_space(self, X, *, from_ivectors=False) -> np.ndarray:
        """The vectors cosine scoring compares: :meth:`plda_space`, then ``lnorm(wccn(.))``
        with a WCCN.

        Parameters
        ----------
        X : list of GMMStats, or array-like of shape (N, R)
            The utterances' statistics (from the extractor's UBM), or their i-vectors with
            ``from_ivectors``.
        from_ivectors : bool, keyword-only, default False
            ``X`` holds i-vectors, not statistics.

        Returns
        -------
        ndarray of shape (N, K)
            Unit-norm rows; K is the LDA's dimension, else R.
        """
        v = self.plda_space(X, from_ivectors=from_ivectors)
        if self.wccn is not None:
            v = length_norm(self.wccn.transform(v))
        return v

    def save(self, hdf5):
        """Write the back-end, extractor included, in emkit's layout ``IVectorBackend`` (see
        :mod:`emkit.io.systems`).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group.

        Raises
        ------
        ValueError
            A back-end emkit would refuse to load (parts of disagreeing sizes); nothing is
            written.
        """
        from ..io._registry import save

        save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5) -> "IVectorBackend":
        """Read a back-end written by :meth:`save`.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path or an open group.

        Returns
        -------
        IVectorBackend

        Raises
        ------
        emkit.io.InvalidFileError
            Not an ``IVectorBackend`` file, or parts of disagreeing sizes.
        """
        from ..io.systems import read_ivector_backend

        return read_ivector_backend(hdf5, cls)

    @classmethod
    def _from_arrays(cls, ivector, *, whitening=None, lda=None, wccn=None, plda=None,
                     plda_model="two-covariance", plda_dim_f=None):
        """The back-end of a file: ``whitening``/``wccn`` dicts of ``weights``,
        ``input_subtract``, ``input_divide``; ``lda`` a dict of ``weights``, ``input_subtract``,
        ``eigenvalues``; ``plda`` a PLDA (each None when the file has none); the PLDA a
        :meth:`fit` trains."""
        backend = cls(ivector, plda=plda, plda_model=plda_model, plda_dim_f=plda_dim_f)
        if whitening is not None:
            backend.whitening = _transforms._whitening_from_arrays(**whitening)
        if lda is not None:
            backend.lda = _transforms._lda_from_arrays(**lda)
            backend.lda_dim = backend.lda.n_components
        if wccn is not None:
            backend.wccn = _transforms._wccn_from_arrays(**wccn)
        return backend


#: the fitted steps of a back-end, as a checkpoint holds them (name -> class)
_STEP_CLASSES = {"whitening": "Whitening", "lda": "LDA", "wccn": "WCCN", "plda": "PLDA"}


class IVectorBackendTraining:
    """What identifies a back-end's training run in its checkpoint: the extractor (its settings,
    UBM, T and sigma), the settings of the steps and whether a PLDA is trained."""

    def __init__(self, backend: IVectorBackend, plda: bool):
        ivector = backend.ivector
        self._params = {"ivector": ivector, "T": (np.asarray(ivector.T), np.asarray(ivector.sigma)),
                        "lda_dim": backend.lda_dim, "plda_model": backend.plda_model,
                        "plda_dim_f": backend.plda_dim_f, "plda": bool(plda)}

    def get_params(self, deep: bool = False) -> dict:
        return dict(self._params)


def _singular_as(fit, *args, what: str):
    """``fit(*args)``; a singular estimate (Whitening's and WCCN's error, which suggests their
    ``pinv``, a choice this back-end does not offer) as an error about the training data."""
    try:
        return fit(*args)
    except SingularError:
        raise ValueError(f"the {what} of the training i-vectors is singular (e.g. repeated "
                         "utterances): train on more distinct utterances or with a smaller i-vector "
                         "dimension") from None


register(IVectorBackend, "IVectorBackend", write="emkit.io.systems:write_ivector_backend",
         read="emkit.io.systems:read_ivector_backend")
