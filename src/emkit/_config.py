"""Process-wide settings: ``emkit.set_config(progress=True)`` shows progress bars on training,
``emkit.set_config(device="cuda")`` selects where the namespace-generic kernels run.

Settings are process-wide, ``config_context`` blocks included: emkit's worker threads and dask's
threaded scheduler run the work of the thread that started it, and read the settings in force
(unlike scikit-learn's per-thread configuration).  Blocks open in several threads at once stack:
each one's settings hold until it closes, whatever the order the blocks close in, and closing the
last one restores the settings ``set_config`` made.

Other processes (dask.distributed workers, the feature extraction's loky workers) have their own
settings, which the caller's do not change.  So that a setting made where the work is started
holds wherever it runs, the settings that change what the work computes or how much memory a
chunk takes are read there and sent with the work: ``gselect_top_k`` and
``gselect_min_posterior`` (statistics, ``fit``), ``block_rows`` of the CPU kernels (taken when a
dask graph is built, so a graph computed after the block ends still uses it), and the ``dask_*``
and ``spill_directory`` settings (decided by ``fit`` in the calling process).  ``device``,
``array_library`` and ``device_cache`` are the settings of the process where a chunk runs (a
worker uses its own GPU or none): set them on the workers with
``client.run(emkit.set_config, device="cuda")``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import threading

from ._describe import describe

#: what ``set_config`` set (the defaults at first)
_BASE = {"progress": False, "block_rows": None, "device": "cpu", "array_library": None,
         "device_cache": None, "gselect_top_k": None, "gselect_min_posterior": 0.0,
         "dask_cache": "auto", "dask_cache_fraction": 0.25, "spill_directory": None,
         "dask_worker_heap": True}
#: the settings of the ``config_context`` blocks open, in the order they were entered
_LAYERS: list = []
_LOCK = threading.Lock()
#: the settings in force: ``_BASE`` with the open blocks' settings on top (replaced, never changed
#: in place: read it as ``_config._CONFIG``, not imported by name)
_CONFIG = dict(_BASE)


def _refresh() -> None:
    global _CONFIG
    merged = dict(_BASE)
    for _, layer in _LAYERS:
        merged.update(layer)
    _CONFIG = merged

#: Accepted values of ``dask_cache``.
DASK_CACHE_MODES = ("auto", "memory", "disk", "off")

#: Accepted values of ``array_library`` (``None``: whichever of them is installed, torch first).
ARRAY_LIBRARIES = (None, "torch", "cupy")


class _Keep:
    """The default of the ``set_config`` options whose ``None`` is a real value: leave the setting
    as it is (a private object, so that no value a user passes, such as a directory named
    ``keep``, can be taken for it)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unchanged>"

    def __reduce__(self):
        return (_Keep, ())


#: ``set_config``'s "leave as is" default for the options that may be set to None
_KEEP = _Keep()


def get_config() -> dict:
    """A copy of the current settings.

    Returns
    -------
    dict
        ``{option: value}``, the options of :func:`set_config` (changing it changes nothing).
    """
    return dict(_CONFIG)


def _check_device(device) -> str:
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ('cpu', 'cuda', 'cuda:N' or 'auto'); got "
                        f"{type(device).__name__}")
    name = device.strip().lower()
    if name in ("cpu", "cuda", "auto"):
        return name
    if name.startswith("cuda:") and name[5:].isdigit():
        return name
    raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' (N a device index) or 'auto'; "
                     f"got {describe(device)}")


def set_config(progress: bool | None = None, block_rows: int | None = None,
               device: str | None = None, array_library: str | None = _KEEP,
               device_cache: bool | None = _KEEP, gselect_top_k: int | None = _KEEP,
               gselect_min_posterior: float | None = None, dask_cache: str | None = None,
               dask_cache_fraction: float | None = None,
               spill_directory: str | os.PathLike | None = _KEEP,
               dask_worker_heap: bool | None = None) -> None:
    """Change settings.  An option left out is left as it is (the defaults ``None`` and
    ``<unchanged>`` say so).

    The settings are process-wide: every thread reads them, dask's threaded scheduler included
    (not per thread, as scikit-learn's are).  A dask.distributed worker process has its own:
    ``gselect_top_k``, ``gselect_min_posterior``, ``block_rows`` (on the CPU) and the ``dask_*``
    and ``spill_directory`` settings are taken here and sent with the work, while ``device``,
    ``array_library`` and ``device_cache`` are each worker's own (set them there with
    ``client.run(emkit.set_config, ...)``).  See :mod:`emkit._config`.

    Numbers may be Python or numpy scalars (a boolean is not taken for a number), switches
    True/False (numpy's too); a value of another type or out of range raises a TypeError or
    ValueError naming the option, and changes nothing.

    Parameters
    ----------
    progress : bool
        Show a tqdm progress bar over EM iterations (logging at INFO level reports them anyway).
    block_rows : int
        Rows per block in the E-step kernels (memory is about ``block_rows * (C + 2D) * 8`` bytes
        per thread).  ``None`` leaves the setting as it is; while it is unset (the default) the
        GMM E-step sizes its blocks from C and this machine's L2 cache (512-4096 rows).
    device : str
        Where the namespace-generic kernels run: ``"cpu"`` (default, numpy), ``"cuda"`` or
        ``"cuda:N"`` (a CUDA device through PyTorch or CuPy; an error naming what was found when
        none is usable) or ``"auto"`` (CUDA when usable, else CPU).  See docs/gpu.md.
    array_library : {"torch", "cupy", None}
        The library that holds device arrays; ``None`` takes the first installed of PyTorch and
        CuPy that can use the device.  Only meaningful with a CUDA device.
    device_cache : {None, True, False}
        Training data on a CUDA device: ``None`` (default) copies them to the device once when
        they take at most half of its free memory and streams them block by block otherwise;
        ``True`` always copies once, ``False`` always streams.
    gselect_top_k : int or None
        Gaussian selection (Kaldi's gselect) in the GMM statistics (``GMMMachine.acc_stats``,
        ``transform`` and the E-step of ``fit``): only the ``gselect_top_k`` best Gaussians of each
        frame, found by a float32 pass, get posteriors.  ``None`` (default): exact statistics.
        Faster for large UBMs (C=2048, k=20: see benchmarks/gselect.py); an approximation.
    gselect_min_posterior : float in [0, 1)
        With ``gselect_top_k``: posteriors below this are dropped and the rest renormalised (as
        Kaldi's ``--min-post``; 0.025 in its i-vector recipes).  Default 0.
    dask_cache : {"auto", "memory", "disk", "off"}
        Training inputs that are dask collections are computed once per ``fit``
        (:mod:`emkit._backend._cache`): a bag of statistics (i-vector, ISV, JFA) is kept on the
        workers (``"memory"``) or written to per-worker HDF5 files under ``spill_directory`` and
        read back at every pass (``"disk"``; removed at the end of ``fit``); a dask array of
        frames (GMM, k-means) is persisted on the workers (``"memory"``) or read from its source
        at every pass (``"disk"``: it is on disk already).  ``"auto"`` (default) keeps in memory
        what is estimated to take at most ``dask_cache_fraction`` of the cluster's memory, and
        spills (streams) the rest; ``"off"`` recomputes the input at every pass (as before).
        Memory of a worker in ``"disk"`` mode, above what it held before ``fit``: the input
        partition it computes and writes (one at a time per thread), then for i-vector training
        one E-step batch centred (``(C + C*D) * 8`` bytes per utterance, ``batch_size``
        utterances), that batch's E-step temporaries and an 8 MB block of statistics being
        read, whatever its share of the statistics (measured, 2 single-threaded workers, C=256,
        D=60, default batches of 408: 103 MB with 189 MB of statistics per worker, 103 MB with
        378 MB; benchmarks/spill_memory.py); for ISV/JFA training one block of sessions sorted
        by class (``n`` and ``F``: ``(C + C*D) * 8`` bytes per session, at most
        ``8_000_000 // (C*D)`` sessions: 64 MB of ``F``), its E-step temporaries, the
        accumulators of a partition (``C*D*r`` for U, the sums of its classes) and an 8 MB block
        of statistics being read, whatever its share of the statistics (measured as above, rank
        10, 40 classes, blocks of 400 sessions: 102-104 MB for ISV and JFA with 189 MB of
        statistics per worker and with 378 MB, input partitions of 100 utterances both times;
        150-196 MB with 378 MB in input partitions of 200; was 391-403 MB and 848 MB, 2.1-2.2x).
        (A bag of ``(label, GMMStats)`` pairs fitted with ``y=None`` is spilled pickled: each
        worker reads its partition whole once to cut it into blocks.)
    dask_cache_fraction : float in (0, 1]
        The fraction of the workers' summed memory limit (of this machine's memory without a
        ``distributed`` client; workers without a limit share their host's memory equally) that
        ``"auto"`` lets cached inputs take; default 0.25.
    spill_directory : str, os.PathLike or None
        Where ``"disk"`` writes its files (one uniquely named directory per ``fit``, a
        subdirectory per worker); ``None``: the temporary directory of each worker
        (``tempfile.gettempdir()``).  Every worker must be able to read what the others wrote
        (one host, or a shared file system).
    dask_worker_heap : bool
        While a ``fit`` trains on dask.distributed workers started by dask's nanny (which sets
        ``MALLOC_TRIM_THRESHOLD_``), keep their freed memory for reuse instead of returning it to
        the system after every temporary array (default True; restored when ``fit`` ends, see
        :mod:`emkit._backend._worker_heap`).
    """
    changes = _changes(locals())
    with _LOCK:
        _BASE.update(changes)
        _refresh()


def _changes(settings: dict) -> dict:
    """The settings that ``set_config(**settings)`` changes, checked (an error changes nothing)."""
    (progress, block_rows, device, array_library, device_cache, gselect_top_k, gselect_min_posterior,
     dask_cache, dask_cache_fraction, spill_directory, dask_worker_heap) = (settings[k] for k in _ARGUMENTS)
    if block_rows is not None:  # checked, never coerced (int(2.7) was 2, int("64") 64)
        _number(block_rows, "block_rows", "a positive integer", integral=True)
        if block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer; got {describe(block_rows)}")
    if dask_cache is not None and not (isinstance(dask_cache, str)
                                       and dask_cache in DASK_CACHE_MODES):
        raise ValueError(f"dask_cache must be one of {DASK_CACHE_MODES}; "
                         f"got {describe(dask_cache)}")
    if dask_cache_fraction is not None:
        _number(dask_cache_fraction, "dask_cache_fraction", "a number in (0, 1]")
        if not 0 < dask_cache_fraction <= 1:  # (NaN too)
            raise ValueError(f"dask_cache_fraction must be a number in (0, 1]; got "
                             f"{describe(dask_cache_fraction)}")
    if dask_worker_heap is not None:
        dask_worker_heap = _flag(dask_worker_heap, "dask_worker_heap")
    if progress is not None:
        progress = _flag(progress, "progress")
    if _given(spill_directory):
        spill_directory = _directory(spill_directory, "spill_directory")
    if _given(device_cache):
        if not _is_bool(device_cache):  # (1.0 == True: ``in (None, True, False)`` took it)
            raise ValueError(f"device_cache must be None, True or False; "
                             f"got {describe(device_cache)}")
        device_cache = bool(device_cache)
    if _given(array_library) and not (isinstance(array_library, str)
                                      and array_library in ARRAY_LIBRARIES):
        raise ValueError(f"array_library must be 'torch', 'cupy' or None; "
                         f"got {describe(array_library)}")
    new_device = _CONFIG["device"] if device is None else _check_device(device)
    new_library = _CONFIG["array_library"] if array_library is _KEEP else array_library
    if new_device != "cpu" and (device is not None or array_library is not _KEEP):
        from ._backend._device import resolve_device

        resolve_device(new_device, new_library)  # fail now, with what was found, not mid-fit
    top_k, min_post = _check_gselect(gselect_top_k, gselect_min_posterior)
    changes = {}
    if progress is not None:
        changes["progress"] = progress
    if block_rows is not None:
        changes["block_rows"] = int(block_rows)
    if device is not None:
        changes["device"] = new_device
    if array_library is not _KEEP:
        changes["array_library"] = new_library
    if device_cache is not _KEEP:
        changes["device_cache"] = device_cache
    if gselect_top_k is not _KEEP:
        changes["gselect_top_k"] = top_k
    if min_post is not None:
        changes["gselect_min_posterior"] = min_post
    if dask_cache is not None:
        changes["dask_cache"] = dask_cache
    if dask_cache_fraction is not None:
        changes["dask_cache_fraction"] = float(dask_cache_fraction)
    if dask_worker_heap is not None:
        changes["dask_worker_heap"] = dask_worker_heap
    if spill_directory is not _KEEP:
        changes["spill_directory"] = spill_directory
    return changes


def _given(value) -> bool:
    """Whether a setting that may be None is set to something that needs checking: neither None
    nor left as it is."""
    return value is not None and value is not _KEEP


def _is_bool(value) -> bool:
    """True for Python's and numpy's booleans (without importing numpy)."""
    kind = type(value)
    return kind is bool or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


def _number(value, name: str, expected: str, integral: bool = False) -> None:
    """Raise a TypeError naming ``name`` unless ``value`` is a real number (an integer when
    ``integral``), numpy scalars included; booleans are refused (True is not the number 1 here)."""
    if _is_bool(value) or not isinstance(value, numbers.Integral if integral else numbers.Real):
        kind = "bool" if _is_bool(value) else type(value).__name__  # numpy 1 names it bool_
        raise TypeError(f"{name} must be {expected}; got {kind}: {describe(value)}")


def _flag(value, name: str) -> bool:
    """``value`` as a bool: True or False (numpy's too, and the integers 0 and 1)."""
    if _is_bool(value) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {type(value).__name__}: {describe(value)}")


def _directory(value, name: str) -> str:
    """A directory path given as str or os.PathLike, as a str."""
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a directory path (str or os.PathLike) or None; got "
                        f"{type(value).__name__}: {describe(value)}")
    if not path:
        raise ValueError(f"{name} is an empty path: give a directory, or None for the workers' "
                         "temporary directory")
    return path


def _check_gselect(top_k, min_posterior):
    """The Gaussian-selection settings checked (the upper bound of top_k, C, is checked at use)."""
    if _given(top_k):
        expected = "None or a positive integer (Gaussians kept per frame)"
        _number(top_k, "gselect_top_k", expected, integral=True)
        if top_k < 1:
            raise ValueError(f"gselect_top_k must be {expected}; got {describe(top_k)}")
        top_k = int(top_k)
    if min_posterior is not None:
        _number(min_posterior, "gselect_min_posterior", "a float in [0, 1)")
        if not 0.0 <= min_posterior < 1.0:  # (NaN too)
            raise ValueError(f"gselect_min_posterior must be a float in [0, 1); got "
                             f"{describe(min_posterior)}")
        min_posterior = float(min_posterior)
    return top_k, min_posterior


_ARGUMENTS = ("progress", "block_rows", "device", "array_library", "device_cache", "gselect_top_k",
              "gselect_min_posterior", "dask_cache", "dask_cache_fraction", "spill_directory",
              "dask_worker_heap")


@contextlib.contextmanager
def config_context(**settings):
    """Temporarily change settings: ``with emkit.config_context(progress=True): ...``.

    Process-wide while the block runs: other threads see its settings too (not per thread, as
    scikit-learn's ``config_context`` is); blocks open in several threads stack, each one's
    settings holding until it closes.  Restored when it ends, also on an error.  Work sent to
    dask.distributed worker processes carries the settings of :func:`set_config` listed as sent
    there; the others are each worker's own.  ``set_config`` inside a block changes the settings
    that hold after every block has closed (an option the block sets keeps the block's value
    until then).

    Parameters
    ----------
    **settings
        Keyword arguments of :func:`set_config` (another name is a ``TypeError``).

    Yields
    ------
    None
    """
    import inspect

    try:
        bound = inspect.signature(set_config).bind(**settings)
    except TypeError as exc:
        raise TypeError(f"config_context() {exc}") from None
    bound.apply_defaults()
    changes = _changes(bound.arguments)
    token = object()
    with _LOCK:
        _LAYERS.append((token, changes))
        _refresh()
    try:
        yield
    finally:
        with _LOCK:
            _LAYERS[:] = [entry for entry in _LAYERS if entry[0] is not token]
            _refresh()
