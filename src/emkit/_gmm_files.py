"""The HDF5 methods of :class:`emkit.gmm.GMMMachine` (the layouts: :mod:`emkit.io.gmm`)."""

from __future__ import annotations

import numpy as np

from ._fitted import set_fitted
from .io import _registry


class GMMFiles:
    """Mixin of ``GMMMachine``: ``save``, ``from_hdf5``, ``load`` and the constructor the file
    readers build machines with."""

    def save(self, hdf5):
        """Write the machine in bob.learn.em's HDF5 layout (readable by the reference).

        MAP machines also store their UBM and MAP parameters, so that they reload as MAP (the
        reference's reloaded as ML).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group (see :func:`emkit.io.save`).
        """
        _registry.save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5, ubm=None):
        """Read a machine written by emkit, bob.learn.em 3.x or bob 2.x (legacy layout).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
        ubm : GMMMachine, optional
            The prior of a MAP machine whose file does not hold it (the reference's files).

        Returns
        -------
        GMMMachine

        Raises
        ------
        InvalidFileError
            Not a GMM file emkit reads, or a damaged one (naming the file and the dataset).
        """
        from .io.gmm import read_gmm_file

        return read_gmm_file(hdf5, cls, ubm)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5``.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A MAP machine of the reference's files, which hold no UBM, takes ``self.ubm``.
        """
        from .io.gmm import read_gmm_file

        self.__dict__ = dict(read_gmm_file(hdf5, type(self), fallback_ubm=self.ubm).__dict__)

    @classmethod
    def _from_file(cls, params: dict, *, weights, means, variances, variance_thresholds):
        """The machine a file holds: ``params``, then the stored parameters (the thresholds first:
        variances floored at them, not at a new machine's ``mean_var_update_threshold``).  A
        machine with means is fitted: ``n_features_in_`` is their number of columns D.

        The means, variances and a (D,)/(C, D) floor are the reader's checked float64 arrays (or,
        in save's read-back, read-only views of the saved machine's): kept without a copy, they
        are never written to.  Variances below the floor are floored into a new array, as an
        assignment floors them."""
        machine = cls(**params)
        machine.weights = weights  # (C,): copied, not shared with the ``weights`` argument
        set_fitted(machine, "means", means, copy=False)
        set_fitted(machine, "variance_thresholds", variance_thresholds, copy=False)
        if not _all_at_least(variances, machine.variance_thresholds):
            variances = np.maximum(machine.variance_thresholds, variances)
        set_fitted(machine, "variances", variances, copy=False)
        machine.n_features_in_ = int(machine.means.shape[1])
        return machine


def _all_at_least(values, floor, rows: int = 4096) -> bool:
    """Whether ``values`` (C, D) >= ``floor`` (a scalar, (D,) or (C, D)) everywhere, compared
    ``rows`` rows at a time (no temporary of the size of ``values``)."""
    floor = np.broadcast_to(floor, values.shape)
    return all(bool(np.all(values[i:i + rows] >= floor[i:i + rows]))
               for i in range(0, values.shape[0], rows))
