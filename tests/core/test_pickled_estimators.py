"""Pickled estimators come back as ``fit`` leaves them: every fitted array read-only float64 (a
writeable one would let a cached derived constant go stale), for every emkit estimator, and the
pickles of earlier emkit (fitted arrays under their public names, writeable) still load."""

import importlib
import inspect
import pickle

import numpy as np
import pytest

from emkit import GMMMachine
from emkit._fitted import fitted_names
from emkit.calibration import LinearCalibration
from emkit.lda import LDA
from fitted_estimators import small_fitted_estimators
from public_modules import public_modules

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted():
    return small_fitted_estimators()


def _public_classes_with_fitted_arrays() -> set:
    """The classes with fitted arrays that emkit's ``__all__`` and its public modules offer
    (``vars(emkit)`` would hold only the lazy names something had already imported)."""
    import emkit

    modules = [importlib.import_module(name) for name in public_modules()]
    offered = [getattr(emkit, name) for name in emkit.__all__]
    offered += [obj for module in modules for obj in vars(module).values()]
    return {obj for obj in offered if inspect.isclass(obj) and obj.__module__.startswith("emkit")
            and fitted_names(obj)}


def test_every_estimator_with_fitted_arrays_is_covered(fitted):
    public = _public_classes_with_fitted_arrays()
    assert {LDA, LinearCalibration, GMMMachine} <= public  # (the walk sees lazy names)
    covered = {type(m) for m in fitted.values()}
    # (a public base class, such as FactorAnalysisBase, is covered by its fitted subclasses)
    assert not [cls for cls in public if not any(issubclass(c, cls) for c in covered)]


def _array_flags(obj, prefix=""):
    """name -> writeable, of the arrays of ``obj`` and of the emkit objects it holds."""
    flags = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            flags[prefix + name] = value.flags.writeable
        elif type(value).__module__.startswith("emkit") and hasattr(value, "__dict__"):
            flags.update(_array_flags(value, f"{prefix}{name}."))
    return flags


def _set_fitted_names(machine):
    """The fitted arrays that ``machine`` holds (ISV has no V, a PLDA of dim_g=0 no G_...)."""
    return [name for name in fitted_names(type(machine)) if vars(machine).get("_" + name) is not None]


KEYS = ["kmeans", "gmm", "isv", "jfa", "ivector", "wccn", "whitening", "lda", "plda", "calibration"]


@pytest.mark.parametrize("key", KEYS)
def test_an_unpickled_estimator_has_the_array_flags_of_the_fitted_one(fitted, key):
    machine = fitted[key]
    back = pickle.loads(pickle.dumps(machine))
    before, after = _array_flags(machine), _array_flags(back)
    assert {name: before[name] for name in after} == after  # (dropped caches are not compared)
    for name in _set_fitted_names(machine):
        value = getattr(back, name)
        assert value.dtype == np.float64 and not value.flags.writeable, name
        np.testing.assert_array_equal(value, getattr(machine, name))
        with pytest.raises(ValueError, match="read-only"):
            value.flat[0] = 1.0


@pytest.mark.parametrize("key", KEYS)
def test_a_pickle_of_earlier_emkit_loads_as_a_fitted_estimator(fitted, key):
    machine = fitted[key]
    state = dict(machine.__getstate__())
    for name in _set_fitted_names(machine):  # the earlier layout: public names, writeable arrays
        state[name] = np.array(state.pop("_" + name))
    old = type(machine).__new__(type(machine))
    old.__dict__.update(state)
    back = pickle.loads(pickle.dumps(old))
    for name in _set_fitted_names(machine):
        value = getattr(back, name)
        assert value.dtype == np.float64 and not value.flags.writeable, name
        assert name not in back.__dict__
