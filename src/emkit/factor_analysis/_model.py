"""``FactorAnalysisBase``: the model state shared by ISV and JFA.

Hyper-parameters, the UBM, the fitted parameters U, V, D (read-only :class:`FittedArray`), the
reference's initial values (drawn on first use), the derived :class:`Constants`, cloning,
pickling and persistence.  Training (:mod:`._training`), enrolment and scoring (:mod:`._scoring`)
and the reference's step API (:mod:`._steps`, :mod:`._latent_steps`) are functions of a
machine's parameters and constants; :class:`~emkit.factor_analysis.ISVMachine` and
:class:`~emkit.factor_analysis.JFAMachine` put them together.  The ``*_using_array`` methods,
from frames, are the mixin :class:`._frames.FrameMethods`.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from .._fitted import FittedArray, clear_derived, derived, fitted_value, peek_derived, set_fitted
from .._fitted import FitSummary, PicklesFitted
from .._validation import (check_checkpoint, check_positive_int, check_random_state,
                           is_finite_number)
from . import _latent_steps, _steps
from ._constants import Constants, build, check_shapes
from ._frames import FrameMethods, has_trained_ubm
from ._labels import warn_of_few_sessions_per_class
from ._training import prepare_training_set, session_threads
from .._describe import describe


class FactorAnalysisBase(FrameMethods, FitSummary, PicklesFitted, BaseEstimator):
    """Shared state of :class:`ISVMachine` and :class:`JFAMachine`.

    Parameters
    ----------
    r_U : int
        Rank of the session subspace U (>= 1).
    r_V : int or None
        Rank of the class subspace V (JFA); None for ISV.
    relevance_factor : float
        D starts at ``sqrt(variance_supervector / relevance_factor)``.
    em_iterations : int
        EM iterations (ISV), or iterations of each of the V, U and D phases (JFA).
    random_state : int, None, numpy RandomState or Generator
        Draws the initial U (then V) from N(0, 1), as ``np.random.RandomState(seed).normal`` does
        (the reference's numbers), without touching numpy's global generator (None: from numpy's
        global generator, as the reference).
    enroll_iterations : int
        Iterations of the latent-variable updates in ``enroll`` (>= 1).
    ubm : GMMMachine or None
        The UBM; trained by ``fit_using_array`` when it is untrained (or None, from ``ubm_kwargs``).
    ubm_kwargs : dict or None
        Arguments of the ``GMMMachine`` created when ``ubm`` is None.
    checkpoint : path or None
        Resumable training (see :class:`emkit.GMMMachine`): U (ISV), or U, V, D and the training
        phase (JFA), saved after every iteration.

    Attributes
    ----------
    U : ndarray (CD, r_U), V : ndarray (CD, r_V) (JFA), D : ndarray (CD,)
        Set by ``fit``; before it, with a trained ``ubm``, the reference's initial values (drawn
        on first use; user-assigned ones are kept).
    classes_ : ndarray (K,)
        The class labels seen by the last ``fit``, in the order of the class indices.
    n_iter_ : int, converged_ : bool
        EM iterations run by the last ``fit`` (JFA: of its last phase) and whether a convergence
        test stopped it (never: both classes run ``em_iterations``, as the reference).
    """

    _has_V = False

    U = FittedArray("Session variability subspace, (CD, r_U) (read-only; assign a new array).")
    V = FittedArray("Class variability subspace, (CD, r_V) (JFA).")
    D = FittedArray("Diagonal of the class offset matrix, (CD,).")
    _FIT_SUMMARY = ("n_iter_", "converged_", "classes_")  # (what a file keeps of the last fit)

    def __init__(self, r_U, r_V=None, relevance_factor=4.0, em_iterations=10, random_state=0,
                 enroll_iterations=1, ubm=None, ubm_kwargs=None, checkpoint=None):
        self.r_U = r_U
        self.r_V = r_V
        self.relevance_factor = relevance_factor
        self.em_iterations = em_iterations
        self.random_state = random_state
        self.enroll_iterations = enroll_iterations
        self.ubm = ubm
        self.ubm_kwargs = ubm_kwargs
        self.checkpoint = checkpoint

    # -- the UBM ---------------------------------------------------------------------------------
    def _trained_ubm(self, action: str = "this operation"):
        from ..gmm import GMMMachine

        if self.ubm is not None and not isinstance(self.ubm, GMMMachine):
            raise TypeError(f"ubm must be a GMMMachine or None; got {type(self.ubm).__name__}")
        if self.ubm is None:
            raise ValueError(
                f"ubm is None: {action} needs a trained GMMMachine as ubm "
                "(fit_using_array trains one from frames)"
            )
        if not has_trained_ubm(self.ubm):
            raise ValueError(
                f"ubm is not trained: {action} needs its means and variances "
                "(fit_using_array trains it from frames)"
            )
        return self.ubm

    def _shape(self, action="this operation") -> tuple:
        """(C, D) of the trained UBM."""
        return tuple(self._trained_ubm(action).means.shape)

    @property
    def feature_dimension(self) -> int:
        """D, the dimension of the features."""
        return self._trained_ubm().means.shape[1]

    @property
    def supervector_dimension(self) -> int:
        """C * D."""
        return self._trained_ubm().n_gaussians * self.feature_dimension

    @property
    def mean_supervector(self) -> np.ndarray:
        """The UBM means flattened, (CD,)."""
        return np.asarray(self._trained_ubm().means, dtype=np.float64).flatten()

    @property
    def variance_supervector(self) -> np.ndarray:
        """The UBM variances flattened, (CD,)."""
        return np.asarray(self._trained_ubm().variances, dtype=np.float64).flatten()

    # -- parameters and their initial values ----------------------------------------------------
    @classmethod
    def _parameter_names(cls) -> tuple:
        return ("U", "V", "D") if cls._has_V else ("U", "D")

    def _missing_parameter(self, name):
        """U, V or D not fitted nor assigned: the reference's initial value with a trained UBM."""
        if name in self._parameter_names() and has_trained_ubm(self.ubm):
            return self._initial_values()[name]
        raise NotFittedError(
            f"{type(self).__name__} has no {name} yet: call fit (or assign {name}, or give a "
            "trained ubm) first"
        )

    def _default_key(self):
        """What the initial values depend on: they are drawn again when it changes."""
        rs, ubm = self.random_state, self.ubm
        seed = rs if rs is None or isinstance(rs, numbers.Integral) else id(rs)
        return (self.r_U, self.r_V, self.relevance_factor, seed, id(ubm),
                id(fitted_value(ubm, "means")), id(fitted_value(ubm, "variances")))

    def _initial_values(self) -> dict:
        """The reference's initial U (then V) drawn from ``random_state`` and
        ``D = sqrt(variance_supervector / relevance_factor)``, drawn once per :meth:`_default_key`
        (the reference sets them in its constructor; emkit on first use)."""
        key = self._default_key()
        initial = self.__dict__.get("_initial")
        if initial is None or initial[0] != key:
            self._validate_hyperparameters()
            values = dict(zip(("U", "V"), self._draw_subspaces()))
            values["D"] = np.sqrt(self.variance_supervector / self.relevance_factor)
            for value in values.values():
                if value is not None:
                    value.flags.writeable = False
            initial = self.__dict__["_initial"] = (key, values)
        return initial[1]

    def _draw_subspaces(self):
        if self.random_state is None:  # numpy's global generator, as the reference
            rng = np.random.mtrand._rand
        else:
            rng = check_random_state(self.random_state)
        CD = self.supervector_dimension
        # always U first: V gets the reference's numbers
        # standard_normal gives normal(0.0, 1.0)'s numbers (0 + 1 * x), a quarter faster
        U = rng.standard_normal(size=(CD, self.r_U))
        V = rng.standard_normal(size=(CD, self.r_V)) if self._has_V else None
        return U, V

    def create_UVD(self):
        """(Re)draw U and V from ``random_state``; D = ``sqrt(variance_supervector / relevance_factor)``."""
        self._validate_hyperparameters()
        self.__dict__.pop("_initial", None)
        for name, value in self._initial_values().items():
            if value is not None:
                set_fitted(self, name, value, copy=False)
        self.__dict__.pop("_initial", None)

    def _create_missing(self):
        """The start of training: the parameters not set take their initial values (then the
        machine's own); check the shapes of all of them."""
        self._validate_hyperparameters()
        CD = self.supervector_dimension
        expected = {"U": (CD, self.r_U), "V": (CD, self.r_V), "D": (CD,)}
        for name in self._parameter_names():
            if fitted_value(self, name) is None:
                set_fitted(self, name, self._initial_values()[name], copy=False)
            value = fitted_value(self, name)
            if value.shape != expected[name]:
                raise ValueError(
                    f"{name} must have shape {expected[name]} (supervector dimension C*D = {CD}, "
                    f"r_U = {self.r_U}, r_V = {self.r_V}); got {value.shape}, from an earlier fit "
                    f"or assignment (fit continues from the current {name}, as the reference): "
                    f"to start afresh with another ubm or rank, fit sklearn.base.clone(machine) "
                    f"or assign {name} = None first"
                )
            if not np.isfinite(value).all():
                raise ValueError(f"{name} contains NaN or infinity")
        self.__dict__.pop("_initial", None)

    def _set_param(self, name, new) -> float:
        """Store a new parameter value (an array of the caller's); return its relative change."""
        old = fitted_value(self, name)
        set_fitted(self, name, new, copy=False)
        scale = np.linalg.norm(old)
        return float(np.linalg.norm(new - old) / scale) if scale > 0 else float(np.linalg.norm(new))

    def _store(self, name, value) -> np.ndarray:
        """Store a new parameter value (an array of the caller's) and return it (read-only)."""
        set_fitted(self, name, value, copy=False)
        return fitted_value(self, name)

    def _validate_hyperparameters(self):
        check_positive_int(self.r_U, "r_U")
        if self._has_V:
            check_positive_int(self.r_V, "r_V")
        check_positive_int(self.em_iterations, "em_iterations", minimum=0)
        check_positive_int(self.enroll_iterations, "enroll_iterations")
        rf = self.relevance_factor
        if not (is_finite_number(rf) and rf > 0):  # (inf made D = 0: every model the UBM)
            raise ValueError(f"relevance_factor must be a finite number > 0; got {describe(rf)}")
        check_checkpoint(self.checkpoint)

    def __sklearn_is_fitted__(self) -> bool:
        """True when every parameter was trained, assigned or loaded (initial values don't count)."""
        return all(fitted_value(self, k) is not None for k in self._parameter_names())

    def _check_fitted(self, action: str):
        missing = [k for k in self._parameter_names() if fitted_value(self, k) is None]
        if missing and not has_trained_ubm(self.ubm):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted ({', '.join(missing)} not set): call "
                f"fit (or assign {', '.join(missing)}, or give a trained ubm) before {action}"
            )
        self._trained_ubm(action)

    def _training_set(self, X, y):
        """The start of ``fit``: validate, stack the training set, initialise what is missing."""
        self._validate_hyperparameters()
        data = prepare_training_set(X, y, self._shape("fit"), session_threads())
        warn_of_few_sessions_per_class(data.counts, type(self).__name__)
        self._create_missing()
        self.classes_ = data.classes
        return data

    # -- the reference's step API (compatibility only; ``fit`` does not use it) --------------------
    estimate_number_of_classes = _steps.estimate_number_of_classes
    initialize = _steps.initialize
    initialize_XYZ = _steps.initialize_XYZ
    compute_latent_x = _latent_steps.compute_latent_x
    compute_accumulators_U = _latent_steps.compute_accumulators_U
    update_U = _latent_steps.update_U
    update_z = _latent_steps.update_z
    compute_accumulators_D = _latent_steps.compute_accumulators_D
    update_y = _latent_steps.update_y
    compute_accumulators_V = _latent_steps.compute_accumulators_V
    estimate_x = _steps.estimate_x
    estimate_ux = _steps.estimate_ux
    _compute_uprod = _steps._compute_uprod
    _compute_vprod = _steps._compute_vprod

    # -- derived constants -------------------------------------------------------------------
    def _constants(self, action: str | None = None) -> Constants:
        """The :class:`Constants` of the current parameters and UBM (checks that the machine is
        fitted, naming ``action``, when they have to be built)."""
        c = peek_derived(self, "constants")
        unfitted = not self.__sklearn_is_fitted__()  # initial values: they depend on the key
        if c is not None and c.is_current(self.ubm, self._default_key() if unfitted else None):
            return c
        if action is not None:
            self._check_fitted(action)
        ubm = self._trained_ubm()
        U, V, D = self.U, (self.V if self._has_V else None), self.D
        check_shapes(type(self).__name__, U, V, D, int(np.size(ubm.means)))
        clear_derived(self)
        previous = self.__dict__.get("_previous_constants")  # its products of an unchanged U or V
        c = derived(self, "constants", lambda: build(U, V, D, ubm, self._default_key(), previous))
        self.__dict__["_previous_constants"] = c
        return c

    # -- sklearn -----------------------------------------------------------------------------
    def __sklearn_clone__(self):
        # the trained UBM is an input, not a hyper-parameter: keep a copy of it (sklearn's default
        # clone would hand back an untrained GMMMachine, and the clone could not be fitted)
        params = self.get_params(deep=False)
        ubm = params.pop("ubm")
        others = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(ubm=copy.deepcopy(ubm), **others)

    def __getstate__(self):
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_previous_constants"}

    def __setstate__(self, state):
        super().__setstate__(state)
        initial = self.__dict__.get("_initial")
        if initial is not None:  # the key holds object ids: those of the unpickled objects now
            for value in initial[1].values():
                if value is not None:
                    value.flags.writeable = False
            self.__dict__["_initial"] = (self._default_key(), initial[1])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = True
        return tags

    # -- persistence: plain data in, plain data out --------------------------------------------
    def _persistent_state(self) -> dict:
        """What a file holds: ``params`` (hyper-parameters), ``arrays`` (the fitted U/V/D that are
        set) and the trained ``ubm`` (or None)."""
        params = self.get_params(deep=False)
        params.pop("checkpoint")
        ubm = params.pop("ubm")
        arrays = {k: fitted_value(self, k) for k in self._parameter_names()}
        return dict(params=params, arrays={k: v for k, v in arrays.items() if v is not None},
                    ubm=ubm if has_trained_ubm(ubm) else None)

    @classmethod
    def _from_persistent_state(cls, params: dict, arrays: dict, ubm):
        """A machine of the hyper-parameters ``params``, fitted arrays and UBM read from a file."""
        machine = cls(ubm=ubm, **params)
        for key, value in arrays.items():
            set_fitted(machine, key, value, copy=False)  # (the reader's checked float64 arrays)
        return machine

    def save(self, hdf5):
        """Write the hyper-parameters, the fitted U, V, D and the UBM to HDF5 (emkit's layout).

        bob.learn.em 3.3.1 could not save ISV or JFA machines.

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (written atomically) or an open, writable group (see :func:`emkit.io.save`).
        """
        from ..io._registry import save

        save(self, hdf5)

    @classmethod
    def from_hdf5(cls, hdf5):
        """Read a machine written by :meth:`save` (not in bob.learn.em 3.3.1).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group
            A path (opened read-only and closed) or an open group.

        Returns
        -------
        ISVMachine or JFAMachine
            Of the class the file holds (``cls`` or a subclass).

        Raises
        ------
        FileNotFoundError
            No such file.
        InvalidFileError
            Another model's file (a JFA file read as ISV...), a damaged or hostile one; the
            message names the file and the dataset.
        """
        from ..io._registry import load

        return load(hdf5, expected=cls)

    def load(self, hdf5):
        """Replace the state of ``self`` by the machine stored in ``hdf5`` (see :meth:`from_hdf5`).

        Parameters
        ----------
        hdf5 : str, path-like or h5py.Group

        Raises
        ------
        FileNotFoundError, InvalidFileError
            As :meth:`from_hdf5`; ``self`` is then left as it was.
        """
        loaded = self.from_hdf5(hdf5)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)
