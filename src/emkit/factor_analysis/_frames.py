"""The reference's ``*_using_array`` methods of ISV and JFA: training, enrolment and scoring from
frames, through the UBM's statistics (a mixin of :class:`FactorAnalysisBase`)."""

from __future__ import annotations

import logging

import numpy as np

from .._backend import bag_from_parts, is_dask_collection
from .._describe import describe
from .._fitted import fitted_value
from .._validation import check_frames

logger = logging.getLogger("emkit")


def has_trained_ubm(ubm) -> bool:
    """Whether ``ubm`` is a GMM with means (fitted, assigned or loaded)."""
    return ubm is not None and fitted_value(ubm, "means") is not None


class FrameMethods:
    """``initialize_using_array``, ``fit_using_array``, ``enroll_using_array`` and
    ``score_using_array`` of :class:`FactorAnalysisBase`."""

    def initialize_using_array(self, X):
        """Train the UBM on the frames ``X`` when it is None (from ``ubm_kwargs``) or untrained.

        A trained UBM is left as it is.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Frames, passed to ``GMMMachine.fit``.

        Raises
        ------
        TypeError
            ``ubm`` is None and ``ubm_kwargs`` is not a dict.
        """
        from ..gmm import GMMMachine

        if self.ubm is None:
            if not isinstance(self.ubm_kwargs, dict):  # a TypeError, as the reference's **None
                raise TypeError(
                    "ubm_kwargs must be a dict of GMMMachine arguments (e.g. {'n_gaussians': 8}) "
                    f"when ubm is None; got {describe(self.ubm_kwargs)}")
            logger.info("Creating a new GMMMachine and training it.")
            self.ubm = GMMMachine(**self.ubm_kwargs)
            self.ubm.fit(X)
        elif not has_trained_ubm(self.ubm):
            logger.info("UBM means are None, training the UBM.")
            self.ubm.fit(X)

    def fit_using_array(self, X, y):
        """Train the UBM if needed, compute one GMMStats per session of ``X`` and ``fit`` them.

        Parameters
        ----------
        X : array-like of shape (n_sessions, D) or (n_sessions, n_frames, D), or list of arrays
            A 2-D array is one frame per session (as in the reference), a 3-D array one session
            per element, and a list (or numpy object array) of (n_frames_i, D) arrays sessions of
            different lengths (the reference refused them).  A dask array is kept lazy: each
            chunk's statistics are computed on the workers (the reference split it per class).
        y : array-like of shape (n_sessions,)
            One label per session (any hashable values; a dask array is computed).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``X`` and ``y`` hold different numbers of sessions, ``X`` is empty or not frames.
        """
        if is_dask_collection(y):
            y = y.compute()
        if isinstance(y, np.ndarray):
            y = y.ravel() if y.ndim > 1 else y
        sessions, frames = frame_sessions(X)
        n_sessions = sessions.shape[0] if hasattr(sessions, "shape") else len(sessions)
        if n_sessions != len(y):
            raise ValueError(
                f"X and y have inconsistent numbers of sessions: {n_sessions} in X, {len(y)} in y"
            )
        self.initialize_using_array(frames)
        if is_dask_collection(sessions):
            parts = [(self.ubm, b) for b in sessions.to_delayed().ravel()]
            stats = bag_from_parts(_transform_block, parts)
        else:
            stats = self.ubm.transform(sessions)
        return self.fit(stats, y)

    def enroll_using_array(self, X):
        """Enrol a client from frames: ``enroll`` of their statistics under the trained UBM.

        Parameters
        ----------
        X : array-like of shape (N, D), or list of arrays or 3-D array of shape (n_sessions, N, D)
            One session's frames, or several sessions of the client.

        Returns
        -------
        ndarray of shape (1, CD), or tuple
            What ``enroll`` returns: ISV's z, as in the reference, or JFA's ``(y, z)`` pair of
            arrays of shape (r_V,) and (CD,).

        Raises
        ------
        ValueError
            ``ubm`` is None or not trained (``fit_using_array`` trains it).
        """
        ubm = self._trained_ubm("enroll_using_array")
        if isinstance(X, (list, tuple)) or np.ndim(X) == 3:
            return self.enroll([ubm.acc_stats(x) for x in X])
        return self.enroll([ubm.acc_stats(X)])

    def score_using_array(self, model, data):
        """Score a probe given as frames against an enrolled model.

        Parameters
        ----------
        model : ndarray of shape (1, CD) or (CD,), or tuple
            What ``enroll`` returned: ISV's z, or JFA's ``(y, z)`` pair.
        data : array-like of shape (N, D), or list of arrays of shape (N_i, D)
            The probe's frames: one session, or several forming one probe.

        Returns
        -------
        numpy.float64
            The score of ``score(model, statistics of data)``.

        Raises
        ------
        ValueError
            ``ubm`` is None or not trained (``fit_using_array`` trains it).
        """
        ubm = self._trained_ubm("score_using_array")
        if isinstance(data, np.ndarray) and data.ndim == 2:
            return self.score(model, [ubm.acc_stats(data)])
        return self.score(model, [ubm.acc_stats(d) for d in data])


def _transform_block(ubm, block):
    return ubm.transform(np.asarray(block))


def frame_sessions(X, name="X"):
    """``(sessions, frames)`` of frames given to ``fit_using_array``: one item per session, and all
    frames as one (N, D) array.

    A 2-D array is one frame per session (the reference's convention), a 3-D array or a list (or
    numpy object array) of 2-D arrays one session per element; dask arrays are kept lazy.
    """
    if is_dask_collection(X):
        if X.ndim not in (2, 3):
            raise ValueError(f"{name} must be a 2-D or 3-D dask array; got {X.ndim}-D")
        X = X.rechunk({i: -1 for i in range(1, X.ndim)})
        return X, (X if X.ndim == 2 else X.reshape(-1, X.shape[-1]))
    if isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype == object):
        X = list(X)  # (a numpy object array of sessions: the reference's ubm.transform iterated it)
        if not X:
            raise ValueError(f"{name} is empty: expected at least one session")
        sessions = [check_frames(x, f"{name}[{i}]", allow_empty=True) for i, x in enumerate(X)]
        return sessions, np.concatenate(sessions, axis=0)
    X = np.asarray(X)
    if X.ndim == 3:
        return X, check_frames(X.reshape(-1, X.shape[-1]), name)
    if X.ndim == 2:
        return X, check_frames(X, name)
    raise ValueError(
        f"{name} must be frames: a 2-D or 3-D array or a list of 2-D arrays; got shape {X.shape}"
    )
