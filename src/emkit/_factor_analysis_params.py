"""The parameters U, V, D of ISV/JFA: read-only storage, the reference's initial values (drawn on
first use), fitted-state checks, clone and pickling.

A mixin of :class:`emkit._factor_analysis_base.FactorAnalysisBase`.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ._validation import check_positive_int, check_random_state


class ParametersMixin:
    """U, V, D and what depends on them only (see the module docstring)."""

    # -- parameters ----------------------------------------------------------------------------
    # U, V and D are stored as read-only float64 arrays (assign a new array to change them), so
    # that the constants derived from them can be cached between enrol/score calls.
    def _get(self, name):
        state = self.__dict__
        value = state.get("_" + name)
        if value is None or name in state.get("_defaults", ()):
            if name in self._param_names() and self._has_trained_ubm():
                self._draw_missing()  # as the reference's constructor does with a trained UBM
                return state["_" + name]
            if value is None:
                raise NotFittedError(
                    f"{type(self).__name__} has no {name} yet: call fit (or assign {name}, or give "
                    "a trained ubm) first"
                )
        return value

    def _store(self, name, value, copy=True):
        arr = np.array(value, dtype=np.float64) if copy else np.asarray(value, dtype=np.float64)
        arr.flags.writeable = False
        self.__dict__["_" + name] = arr
        defaults = self.__dict__.get("_defaults")
        if defaults:
            defaults.pop(name, None)  # assigned or trained: no longer an initial value

    @property
    def U(self) -> np.ndarray:
        """Session variability subspace, (CD, r_U) (read-only; assign a new array to change it)."""
        return self._get("U")

    @U.setter
    def U(self, value):
        self._store("U", value)

    @property
    def V(self) -> np.ndarray:
        """Class variability subspace, (CD, r_V) (JFA)."""
        return self._get("V")

    @V.setter
    def V(self, value):
        self._store("V", value)

    @property
    def D(self) -> np.ndarray:
        """Diagonal of the class offset matrix, (CD,)."""
        return self._get("D")

    @D.setter
    def D(self, value):
        self._store("D", value)

    def _param_names(self):
        return ("U", "V", "D") if self._has_V else ("U", "D")

    def __sklearn_is_fitted__(self) -> bool:
        """True when every parameter was trained, assigned or loaded (initial values don't count)."""
        defaults = self.__dict__.get("_defaults") or ()
        return all(
            self.__dict__.get("_" + k) is not None and k not in defaults
            for k in self._param_names()
        )

    def __sklearn_clone__(self):
        # the trained UBM is an input, not a hyper-parameter: keep a copy of it (sklearn's default
        # clone would hand back an untrained GMMMachine, and the clone could not be fitted)
        params = self.get_params(deep=False)
        ubm = params.pop("ubm")
        others = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(ubm=copy.deepcopy(ubm), **others)

    def _scoring_constants(self, action: str):
        """The derived constants of a fitted machine (raises if it is not fitted)."""
        c = self._cached_constants()
        if c is None:
            self._check_fitted(action)
            c = self._derived()
        return c

    def _check_fitted(self, action: str):
        missing = [k for k in self._param_names() if self.__dict__.get("_" + k) is None]
        if (missing or self.__dict__.get("_defaults")) and self._has_trained_ubm():
            self._draw_missing()  # initial values, as the reference's constructor sets them
            missing = []
        if missing:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted ({', '.join(missing)} not set): call "
                f"fit (or assign {', '.join(missing)}, or give a trained ubm) before {action}"
            )
        self._trained_ubm(action)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        defaults = dict(self.__dict__.get("_defaults") or {})
        for k in ("U", "V", "D"):
            if self.__dict__.get("_" + k) is not None:
                self._store(k, self.__dict__["_" + k], copy=False)
        if defaults:  # the key holds object ids: those of the unpickled objects now
            self.__dict__["_defaults"] = dict.fromkeys(defaults, self._default_key())

    def _validate_hyperparameters(self):
        check_positive_int(self.r_U, "r_U")
        if self._has_V:
            check_positive_int(self.r_V, "r_V")
        check_positive_int(self.em_iterations, "em_iterations", minimum=0)
        check_positive_int(self.enroll_iterations, "enroll_iterations")
        rf = self.relevance_factor
        if isinstance(rf, bool) or not isinstance(rf, numbers.Real) or not rf > 0:
            raise ValueError(f"relevance_factor must be a positive number; got {rf!r}")

    def _draw_subspaces(self):
        if self.random_state is None:  # numpy's global generator, as the reference
            rng = np.random.mtrand._rand
        else:
            rng = check_random_state(self.random_state)
        CD = self.supervector_dimension
        U = rng.normal(0.0, 1.0, size=(CD, self.r_U))
        V = rng.normal(0.0, 1.0, size=(CD, self.r_V)) if self._has_V else None
        return U, V

    def _initial_D(self):
        return np.sqrt(self.variance_supervector / self.relevance_factor)

    def _has_trained_ubm(self) -> bool:
        return self.ubm is not None and getattr(self.ubm, "_means", None) is not None

    def _default_key(self):
        """What the initial values depend on: they are drawn again when it changes."""
        rs, ubm = self.random_state, self.ubm
        seed = rs if rs is None or isinstance(rs, numbers.Integral) else id(rs)
        return (self.r_U, self.r_V, self.relevance_factor, seed, id(ubm),
                id(getattr(ubm, "_means", None)), id(getattr(ubm, "_variances", None)))

    def create_UVD(self):
        """(Re)draw U and V from ``random_state``; D = ``sqrt(variance_supervector / relevance_factor)``."""
        self._validate_hyperparameters()
        U, V = self._draw_subspaces()
        self._store("U", U, copy=False)
        if self._has_V:
            self._store("V", V, copy=False)
        self._store("D", self._initial_D(), copy=False)

    def _draw_missing(self):
        """Set the parameters that are not set to the reference's initial values: U (then V) drawn
        from ``random_state``, ``D = sqrt(variance_supervector / relevance_factor)``.

        The reference sets them in its constructor when the UBM is trained; emkit on first use
        (attribute access, enrolment, scoring, ``fit``).  Values set this way are remembered as
        initial values and drawn again if the hyper-parameters or the UBM change before ``fit``.
        """
        self._validate_hyperparameters()
        state, key = self.__dict__, self._default_key()
        defaults = state.setdefault("_defaults", {})
        for name in [k for k, v in defaults.items() if v != key]:
            state["_" + name] = None  # stale initial value
            del defaults[name]
        names = ("U", "V") if self._has_V else ("U",)
        drawn = []
        if any(state.get("_" + k) is None for k in names):
            U, V = self._draw_subspaces()  # always U first: V gets the reference's numbers
            for name, value in (("U", U), ("V", V)):
                if name in names and state.get("_" + name) is None:
                    self._store(name, value, copy=False)
                    drawn.append(name)
        if state.get("_D") is None:
            self._store("D", self._initial_D(), copy=False)
            drawn.append("D")
        defaults.update(dict.fromkeys(drawn, key))

    def _create_missing(self):
        """Initialise only the parameters that are not set, and check the shapes of the others:
        the start of training, after which they are the machine's own (not initial values)."""
        self._draw_missing()
        self.__dict__["_defaults"] = {}
        CD = self.supervector_dimension
        expected = {"U": (CD, self.r_U), "V": (CD, self.r_V), "D": (CD,)}
        for name in self._param_names():
            value = self.__dict__["_" + name]
            if value.shape != expected[name]:
                raise ValueError(
                    f"{name} must have shape {expected[name]} (supervector dimension C*D = {CD}, "
                    f"r_U = {self.r_U}, r_V = {self.r_V}); got {value.shape}"
                )
            if not np.isfinite(value).all():
                raise ValueError(f"{name} contains NaN or infinity")

    def _compute_uprod(self):
        """``U_c^T Sigma_c^-1 U_c`` for every Gaussian, (C, r_U, r_U)."""
        return self._derived()["uprod"]

    def _compute_vprod(self):
        """``V_c^T Sigma_c^-1 V_c`` for every Gaussian, (C, r_V, r_V)."""
        c = self._derived()
        if "vprod" not in c:
            self._get("V")
        return c["vprod"]

    def _set_param(self, name, new) -> float:
        """Store a new parameter value; return its relative change (logged by the EM driver)."""
        old = self.__dict__["_" + name]
        self._store(name, new, copy=False)
        scale = np.linalg.norm(old)
        return float(np.linalg.norm(new - old) / scale) if scale > 0 else float(np.linalg.norm(new))
