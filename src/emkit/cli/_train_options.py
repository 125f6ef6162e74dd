"""Options of the train-* commands for long jobs: ``--checkpoint`` (resume an interrupted run),
``--scheduler``/``--workers`` (run the EM passes on dask.distributed)."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import re
import signal
import sys
import threading
import time

import click

from ._app import lazy_module
from ._numbers import IntRange
from ._signals import send_again, signal_of

#: rows of frames per dask chunk and utterances per bag partition: fixed, so that a checkpoint
#: of a cluster run resumes whatever the number of workers
CHUNK_ROWS, PARTITION_SIZE = 65536, 64
#: how long to try to reach a --scheduler before giving up
CONNECT_TIMEOUT = "10s"
#: --workers starts worker processes (False: threads in this process, for quick tests)
WORKER_PROCESSES = True
#: seconds the client and the local cluster have to close after Ctrl-C before the worker
#: processes are killed
CLOSE_TIMEOUT = 5

_ADDRESS = re.compile(r"^([a-z]+://)?[^\s:/]+(:\d{1,5})?$")


def train_options(state: str, note: str = "", *, frames: bool = False):
    """--checkpoint (the command saves ``state``; ``note``: what else it says), --scheduler and
    --workers; ``frames``: the command trains on frames (train-ubm: no labels, and the workers
    compute the statistics)."""
    where = ("The features are read here and travel to the workers, which compute the statistics."
             if frames else "Features are read and statistics computed here; the data travel to "
                            "the workers.")
    same = "same data and options" if frames else "same data, labels and options"
    kept = ("" if frames else
            "The statistics of the utterances can be kept next to it (STEM.stats.EXT: ckpt.h5 "
            "keeps ckpt.stats.h5), so that a resumed run reads them instead of computing them "
            "again (they are computed again when the features, the UBM or --gselect change); "
            "they take U (16 C D + 8 C + 16) bytes for U utterances, C Gaussians and D features "
            "(198 GB at U=100,000, C=2048, D=60): see --keep-statistics.  ")

    def decorate(f):
        if not frames:
            f = click.option("--keep-statistics/--no-keep-statistics", default=None,
                             help="With --checkpoint: keep the statistics of the utterances next "
                                  "to it whatever their size, or never (neither written nor "
                                  "read) [default: kept when they take at most half of the free "
                                  "space of the checkpoint's folder, else a warning; read when "
                                  "an earlier run kept them].")(f)
        f = click.option("--workers", type=IntRange(min=1), default=None, metavar="N",
                         help="Run the EM passes on a local dask.distributed cluster of N "
                              "single-threaded worker processes (not with --scheduler).")(f)
        f = click.option("--scheduler", metavar="ADDRESS", default=None,
                         help="Run the EM passes on an existing dask.distributed scheduler, e.g. "
                              f"tcp://10.0.0.1:8786 (not with --workers).  {where}")(f)
        return click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                            help=f"Save the training state ({state}) to this HDF5 file after "
                                 f"every EM iteration and resume from it when it exists ({same}: "
                                 "another run's checkpoint is an "
                                 f"error; delete it to start afresh).  {note}{kept}A run on a "
                                 "cluster (--scheduler, --workers) resumes on a cluster only.")(f)
    return decorate


#: The estimators' parameters a checkpoint compares, as the train-* commands' options name them.
OPTION_OF_PARAMETER = {
    "n_gaussians": "-n/--gaussians", "n_clusters": "-n/--gaussians", "max_fitting_steps": "--iterations",
    "em_iterations": "--iterations", "max_iterations": "--iterations", "max_iter": "--kmeans-iterations",
    "k_means_trainer": "--kmeans-iterations", "initial Gaussians": "the k-means start",
    "convergence_threshold": "--threshold", "random_state": "--seed", "compute_dtype": "--compute-dtype",
    "r_U": "--rank-u", "r_V": "--rank-v", "dim_t": "--dim", "relevance_factor": "--relevance-factor",
    "ubm": "--ubm", "lda_dim": "--lda-dim", "plda_dim_f": "--plda-dim", "plda_model": "--plda-dim",
    "plda": "--plda/--no-plda", "ivector": "the extractor", "T": "the extractor's T",
}


def checkpoint_mismatch_message(exc) -> str:
    """A CheckpointMismatchError's message in the command line's terms: options, FEATURES and
    --labels, not parameters and ``X``/``y``."""
    differences = []
    for text in exc.differences:
        if text.startswith("the parameters differ (") and text.endswith(")"):
            names = text[len("the parameters differ ("):-1].split(", ")
            if "random_state" in names:  # the k-means start has the seed too: not --kmeans-iterations
                names = [n for n in names if n != "k_means_trainer"]
            shown = dict.fromkeys(OPTION_OF_PARAMETER.get(n, n) for n in names)  # once each, in order
            text = f"the options differ ({', '.join(shown)})"
        text = text.replace("the training data X differ", "the features differ (FEATURES, or the "
                            "UBM and --gselect that make their statistics)")
        differences.append(text.replace("the labels y differ", "the labels differ (--labels)"))
    others = [p for p in _checkpoint_family(exc.path) if p != exc.path and os.path.exists(p)]
    delete = "the file" if not others else f"it and {', '.join(repr(p) for p in others)} (the same run's)"
    root, ext = os.path.splitext(exc.path)
    if root.endswith(".backend") and os.path.exists(root[: -len(".backend")] + ext):
        delete += " (the back-end alone is trained again)"
    return (f"checkpoint {exc.path!r} belongs to another training run: {'; '.join(differences)}. "
            f"To start afresh, delete {delete} or pass another --checkpoint")


def _checkpoint_family(path) -> list:
    """The checkpoint files of one run: ``STEM.h5`` and its k-means part ``STEM.kmeans.h5``
    (train-ubm) or its back-end part ``STEM.backend.h5`` (train-ivector), whichever ``path``
    is.  A back-end part alone: deleting it is enough to train the back-end again."""
    root, ext = os.path.splitext(path)
    if root.endswith(".backend"):
        return [path]
    if root.endswith(".kmeans"):
        return [root[: -len(".kmeans")] + ext, path]
    return [path, kmeans_checkpoint(path), backend_checkpoint(path)]


def check_train_options(checkpoint, scheduler, workers, output, keep_statistics=None) -> None:
    """Usage errors: --scheduler with --workers, a malformed address, checkpoint = output,
    --keep-statistics without --checkpoint."""
    if keep_statistics and checkpoint is None:
        raise click.UsageError("--keep-statistics needs --checkpoint: the statistics are kept "
                               "next to the checkpoint")
    if scheduler is not None and workers is not None:
        raise click.UsageError("--scheduler and --workers are mutually exclusive: connect to an "
                               "existing scheduler or start a local cluster, not both")
    if scheduler is not None and not _ADDRESS.match(scheduler):
        raise click.BadParameter(f"{scheduler!r} is not a scheduler address (expected "
                                 "[PROTOCOL://]HOST[:PORT], e.g. tcp://10.0.0.1:8786)",
                                 param_hint="'--scheduler'")
    if checkpoint is not None:
        same = os.path.abspath(checkpoint) == os.path.abspath(output)
        with contextlib.suppress(OSError):
            same = same or os.path.samefile(checkpoint, output)
        if same:
            raise click.UsageError(f"--checkpoint {checkpoint!r} is the output: choose another "
                                   "file for the checkpoint")
        if os.path.isdir(checkpoint):
            raise click.BadParameter(f"{checkpoint!r} is a directory, not a file",
                                     param_hint="'--checkpoint'")


def check_ivector_dims(labels, dim, plda, lda_dim, plda_dim) -> None:
    """Usage errors of train-ivector's --lda-dim and --plda-dim."""
    if lda_dim is not None and labels is None:
        raise click.UsageError("--lda-dim needs --labels: LDA is trained on the speakers of the "
                               "training utterances")
    if lda_dim is not None and lda_dim > dim:
        raise click.BadParameter(f"{lda_dim} is more than the i-vector dimension --dim {dim}",
                                 param_hint="'--lda-dim'")
    if plda_dim is not None and (labels is None or not plda):
        raise click.UsageError("--plda-dim does not apply: no PLDA is trained "
                               + ("without --labels" if labels is None else "with --no-plda"))
    limit, name = (lda_dim, "--lda-dim") if lda_dim is not None else (dim, "--dim")
    if plda_dim is not None and plda_dim > limit:
        raise click.BadParameter(f"{plda_dim} is more than the PLDA's input dimension "
                                 f"({name} {limit})", param_hint="'--plda-dim'")


def check_ivector_counts(dim, n_utterances, n_speakers, steps) -> None:
    """--dim against the training data, before T is trained: the whitening needs more utterances
    than --dim and, with ``n_speakers`` (--labels), the within-speaker ``steps`` (a list of LDA,
    WCCN, PLDA) --dim + that many (:meth:`emkit.experiment.IVectorBackend.min_utterances`)."""
    problem = lazy_module("emkit.experiment").IVectorBackend.too_few_utterances(
        dim, n_utterances, n_speakers, steps=steps, name="--dim")
    if problem:
        raise lazy_module("emkit.features").FeatureError(
            f"--dim {dim}: {problem}; got {n_utterances}: give a smaller --dim or more utterances")


def kmeans_checkpoint(path):
    """The k-means checkpoint of train-ubm's ``--checkpoint PATH``: ``STEM.kmeans.EXT``."""
    return _part(path, "kmeans")


def backend_checkpoint(path):
    """The back-end checkpoint of train-ivector's ``--checkpoint PATH``: ``STEM.backend.EXT``."""
    return _part(path, "backend")


def stats_checkpoint(path):
    """Where train-isv/jfa/ivector's ``--checkpoint PATH`` keeps the utterances' statistics:
    ``STEM.stats.EXT``."""
    return _part(path, "stats")


def _part(path, name: str):
    if path is None:
        return None
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.{name}{ext or '.h5'}"


@contextlib.contextmanager
def cluster(scheduler, workers):
    """A dask.distributed Client on ``scheduler`` or on a LocalCluster of ``workers`` processes
    (None when neither is given), closed on exit.

    Ctrl-C (SIGINT, which a terminal sends to the whole process group) is for this process's
    main thread only (see _Interrupts): the cluster's threads and worker processes block it (a
    worker interrupted on its own dies mid-task and leaves the client waiting for ever).  The
    KeyboardInterrupt closes the cluster quietly, CLOSE_TIMEOUT seconds at most, kills the worker
    processes left and goes on up (exit status 130)."""
    if scheduler is None and workers is None:
        yield None
        return
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise lazy_module("emkit.experiment").SystemUnavailable(
            f"--scheduler and --workers need dask.distributed ({exc})") from None
    import multiprocessing

    children_before = set(multiprocessing.active_children())
    client = local = None
    interrupts = _Interrupts()
    unraisablehook = sys.unraisablehook
    sys.unraisablehook = functools.partial(interrupts.unraisable, unraisablehook)
    try:
        with _sigint_handler(interrupts):
            try:
                with _sigint_blocked_in_new_threads():
                    if scheduler is not None:
                        client = _connect(distributed, scheduler)
                    else:
                        with dask.config.set({"distributed.worker.daemon": False}):
                            # the dashboard on a free port: dask's default 8787 is often held
                            # by another cluster; no logs (tracebacks of a worker that heard
                            # the scheduler close, say): a failure reaches the client
                            local = distributed.LocalCluster(
                                n_workers=workers, threads_per_worker=1,
                                processes=WORKER_PROCESSES, dashboard_address=":0",
                                silence_logs=logging.CRITICAL)
                        client = distributed.Client(local)
                interrupts.starting = False
                if interrupts.held:
                    raise KeyboardInterrupt
                if local is not None:
                    logging.getLogger("emkit").info("dask dashboard of the %d local "
                                                    "worker(s): %s", workers,
                                                    client.dashboard_link)
                else:
                    _log_scheduler(client, scheduler)
                yield client
            except KeyboardInterrupt:
                interrupts.closing = True
                interrupts.silence_logs()
                _close_interrupted([client, local], children_before)
                client = local = None
                raise
    finally:
        sys.unraisablehook = unraisablehook
        interrupts.restore_logs()
        for part in (client, local):
            if part is not None:
                part.close()


class _Interrupts:
    """The SIGINT handler of a cluster's life.  While it starts, Ctrl-C is held back (raised
    once it has started).  Then it raises KeyboardInterrupt, but not in a gc callback or a
    ``__del__`` method, which it would break and where Python ignores it ("Exception ignored in
    ..."): from there, it is sent again a moment later.  While the cluster closes, Ctrl-C again
    is ignored: a cluster left half closed would start its workers again, and Python would wait
    for them as it exits.  Logging is off from the interrupt on: distributed and asyncio report
    the work cut short (on the cluster's thread too)."""

    def __init__(self):
        self.starting, self.held, self.closing = True, False, False
        self.logs = None

    def __call__(self, signum, frame):
        if self.starting:
            self.held = True
        elif not self.closing:
            unsafe = {getattr(getattr(c, "__func__", c), "__code__", None) for c in gc.callbacks}
            unsafe.add(self.unraisable.__code__)
            while frame is not None:
                if frame.f_code in unsafe or frame.f_code.co_name == "__del__":
                    return self.again()
                frame = frame.f_back
            self.silence_logs()
            raise KeyboardInterrupt

    def silence_logs(self):
        if self.logs is None:
            self.logs = logging.root.manager.disable
            logging.disable(logging.CRITICAL)

    def restore_logs(self):
        if self.logs is not None:
            logging.disable(self.logs)

    @staticmethod
    def again():
        send_again(signal.SIGINT)

    def unraisable(self, hook, unraisable):
        """A ``sys.unraisablehook``: a KeyboardInterrupt (or SIGTERM's Terminated) that Python
        ignored (raised in a weakref callback, say) is sent again, as the same signal."""
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            send_again(signal_of(unraisable.exc_type))
        else:
            hook(unraisable)


def _log_scheduler(client, scheduler) -> None:
    """Say what the scheduler has (INFO): with no worker, the training waits until one joins."""
    workers = client.scheduler_info().get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    logger = logging.getLogger("emkit")
    logger.info("dask scheduler %s: %d worker(s), %d thread(s); dashboard: %s", scheduler,
                len(workers), threads, client.dashboard_link)
    if not workers:
        logger.warning("the dask scheduler %s has no worker yet: the training waits until one "
                       "joins", scheduler)


def _connect(distributed, scheduler):
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise OSError(f"--scheduler {scheduler}: cannot connect to a dask scheduler there "
                      f"({type(exc).__name__})") from None
    except ValueError as exc:  # not an address: distributed's message names neither the option nor the form
        raise click.BadParameter(f"{scheduler!r} is not a scheduler address ({exc}); expected "
                                 "HOST:PORT or PROTOCOL://HOST:PORT, e.g. tcp://10.0.0.5:8786",
                                 param_hint="'--scheduler'") from None


@contextlib.contextmanager
def _sigint_blocked_in_new_threads():
    """SIGINT blocked in this thread, so in the threads started in the block and in the
    processes those start (signal masks are inherited; Python runs its handlers in the main
    thread whatever thread receives the signal)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    # multiprocessing unblocks SIGINT in the thread that first starts its resource tracker
    with contextlib.suppress(AttributeError):
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextlib.contextmanager
def _sigint_handler(handler):
    """``handler`` for SIGINT in the block, unless SIGINT is ignored or this is not the main
    thread."""
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)  # a SIGINT still pending goes to ``handler``


def _close_interrupted(parts, children_before) -> None:
    """Close the client and the cluster after Ctrl-C, within CLOSE_TIMEOUT, then kill the worker
    processes left."""
    import multiprocessing

    deadline = time.monotonic() + CLOSE_TIMEOUT
    for part in parts:
        if part is not None:
            with contextlib.suppress(Exception):  # broken, or too slow
                part.close(timeout=max(deadline - time.monotonic(), 0.1))
    left = set(multiprocessing.active_children()) - children_before
    for process in left:
        process.kill()
    for process in left:
        process.join(1)
    gc.collect()  # asyncio reports a cut task's exception when the task is collected


def frames_for(client, frames):
    """``frames`` (N, D) as a dask array of CHUNK_ROWS-row chunks on a cluster, else as is.

    The chunks are scattered to the workers (sent once, directly): built with ``from_array``,
    they would travel inside the task graph, through the scheduler."""
    if client is None:
        return frames
    import dask.array as da

    pieces = [frames[i : i + CHUNK_ROWS] for i in range(0, len(frames), CHUNK_ROWS)]
    return da.concatenate([da.from_delayed(future, shape=piece.shape, dtype=frames.dtype)
                           for future, piece in zip(client.scatter(pieces), pieces, strict=True)])


def stats_for(client, stats: list):
    """GMMStats as a dask bag of PARTITION_SIZE-utterance partitions on a cluster, else as is.
    (In the graph: a bag of scattered futures lost them before emkit's cache had read them.)"""
    if client is None:
        return stats
    import dask.bag as db

    return db.from_sequence(stats, partition_size=PARTITION_SIZE)
