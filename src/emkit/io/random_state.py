"""The ``random_state`` hyper-parameter in a file, kept as pickle (and scikit-learn's ``clone``,
which deep-copies it) keeps it.

* an integer: dataset ``random_state`` (int64), any value the constructor took (-1 included: the
  estimator refuses it when it draws, as before saving);
* None: nothing, except in GMM files, whose ``random_state`` is -1 for None (a GMMMachine takes no
  negative seed);
* a numpy ``RandomState`` or ``Generator``: attribute ``random_state_generator``, the JSON
  object ``{"class": "RandomState" | "Generator", "state": <its bit generator's state>}`` (arrays
  as ``{"dtype": "uint32" | "uint64", "values": [...]}``).  The reloaded estimator holds a new
  generator in the saved state: it draws the numbers the saved one would have drawn next.

The attribute is untrusted input: the generator's name, the arrays' types and sizes are checked,
and numpy refuses a state of the wrong structure; any problem is an ``InvalidFileError`` naming
the file and the attribute.
"""

from __future__ import annotations

import json
import numbers

import numpy as np

from .errors import InvalidFileError
from .h5 import child, filename, read_attr, read_scalar
from .._describe import describe

#: nothing here is public API: the helpers of emkit.io's model layouts (internal; their
#: un-underscored names stay importable)
__all__ = []

GENERATOR_ATTR = "random_state_generator"
#: Bit generators whose state a file may hold (numpy's; RandomState is MT19937's)
BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
_ARRAY_TYPES = ("uint32", "uint64")
#: Longest array of a bit generator's state (MT19937's key: 624 values)
MAX_STATE_VALUES = 1024
#: Absent from a file (the reader's default applies)
MISSING = object()


def _encoded(value, depth=0):
    if isinstance(value, dict) and depth < 3:
        return {str(k): _encoded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.name, "values": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_random_state(group, value, *, none_as_minus_one: bool = False) -> None:
    """Store ``value`` (None, an int, a RandomState or a Generator) in the open group ``group``."""
    if value is None:
        if none_as_minus_one:
            group["random_state"] = np.int64(-1)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not np.iinfo(np.int64).min <= value <= np.iinfo(np.int64).max:
            raise ValueError(f"random_state = {describe(value)} cannot be saved: an integer "
                             "seed must fit in int64")
        group["random_state"] = np.int64(value)
    elif isinstance(value, (np.random.RandomState, np.random.Generator)):
        if isinstance(value, np.random.RandomState):
            kind, state = "RandomState", value.get_state(legacy=False)
        else:
            kind, state = "Generator", value.bit_generator.state
        group.attrs[GENERATOR_ATTR] = json.dumps({"class": kind, "state": _encoded(state)})


def read_random_state(group, *, minus_one_is_none: bool = False):
    """The ``random_state`` stored in ``group``, or :data:`MISSING`."""
    has_seed = child(group, "random_state", required=False) is not None
    has_generator = GENERATOR_ATTR in group.attrs
    if has_seed and has_generator:
        raise InvalidFileError(f"{filename(group)}: {group.name!r} holds both a dataset "
                               f"'random_state' and an attribute {GENERATOR_ATTR!r} (one at most)")
    if has_seed:
        seed = int(read_scalar(group, "random_state", "int"))
        return None if minus_one_is_none and seed < 0 else seed
    if has_generator:
        return _generator(group, read_attr(group, GENERATOR_ATTR, "json"))
    return MISSING


def _decoded(group, value, depth=0):
    if isinstance(value, dict) and set(value) == {"dtype", "values"}:
        values = value["values"]
        if value["dtype"] not in _ARRAY_TYPES or not isinstance(values, list) or not (
                len(values) <= MAX_STATE_VALUES and all(type(v) is int for v in values)):
            _refuse(group, f"arrays must be lists of at most {MAX_STATE_VALUES} integers of type "
                           f"{' or '.join(_ARRAY_TYPES)}")
        return np.array(values, dtype=value["dtype"])
    if isinstance(value, dict) and depth < 2:
        return {k: _decoded(group, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (dict, list)):
        _refuse(group, "is not the state of a numpy bit generator")
    return value


def _generator(group, spec: dict):
    kind, state = spec.get("class"), spec.get("state")
    if kind not in ("RandomState", "Generator") or not isinstance(state, dict):
        _refuse(group, "must name the class 'RandomState' or 'Generator' and hold its 'state'")
    name = state.get("bit_generator")
    allowed = ("MT19937",) if kind == "RandomState" else BIT_GENERATORS
    if name not in allowed:
        _refuse(group, f"must hold the state of a {' or '.join(allowed)} bit generator")
    state = _decoded(group, state)
    try:
        if kind == "RandomState":
            generator = np.random.RandomState()
            generator.set_state(state)
            return generator
        bit_generator = getattr(np.random, name)()
        bit_generator.state = state
        return np.random.Generator(bit_generator)
    except (ValueError, TypeError, KeyError, OverflowError, IndexError):
        _refuse(group, f"does not hold a valid {name} state")


def _refuse(group, problem: str):
    where = f"{group.name.rstrip('/')}/{GENERATOR_ATTR}"
    raise InvalidFileError(f"{filename(group)}: attribute {where!r} {problem}")
