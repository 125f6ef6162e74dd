"""How the command line stops on Ctrl-C (SIGINT) and on a batch scheduler's SIGTERM: one line,
temporary files removed, exit status 130 or 143, and no hang while Python exits.

Once the command has ended, nothing is left to stop: the exit status is the command's (0 after
a success, whose outputs are complete), whenever a signal comes while Python exits
(:func:`after_command`)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys

import click

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, the shell's convention for Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: a batch scheduler's (SLURM, SGE) kill


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops as Ctrl-C does: temporary files
    removed, dask workers closed, one line on stderr."""


def terminate(signum, frame):
    raise Terminated


def send_again(signum: int) -> None:
    """Deliver ``signum`` to the main thread again a moment from now: a KeyboardInterrupt or
    Terminated raised in a weakref callback, a gc callback or ``__del__`` is ignored by Python
    ("Exception ignored in ..."), and the work would go on."""
    import threading
    import time

    def soon():  # not now: still in there
        time.sleep(0.05)
        if hasattr(signal, "pthread_kill"):  # a signal: it ends a wait of the main thread
            signal.pthread_kill(threading.main_thread().ident, signum)
        else:  # pragma: no cover - Windows
            import _thread

            _thread.interrupt_main(signum)

    threading.Thread(target=soon, daemon=True).start()


def signal_of(exc_type) -> int:
    """The signal behind a KeyboardInterrupt class: SIGTERM for :class:`Terminated`."""
    return signal.SIGTERM if issubclass(exc_type, Terminated) else signal.SIGINT


def unraisable_hook(hook, unraisable):
    """``sys.unraisablehook`` of the command line: an interrupt Python ignored is sent again."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        send_again(signal_of(unraisable.exc_type))
    else:
        hook(unraisable)


def interrupted_by(exc):
    """The KeyboardInterrupt (or Terminated) behind ``exc``, if one caused it (an import that
    failed as the signal arrived reports "ImportError: initialization failed")."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def stop(exc, prog_name=None, newline: bool = True):
    """Exit after Ctrl-C (130) or SIGTERM (143), saying which (after the ``^C`` a terminal shows:
    ``newline``)."""
    terminated = isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated) \
        or isinstance(exc.__context__, Terminated)
    click.echo(f"{chr(10) if newline else ''}{prog_name or 'emkit'}: "
               f"{'terminated' if terminated else 'interrupted'}", err=True)
    sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def ignore_further_interrupts():
    """Ignore Ctrl-C from now on: pressed again while Python exits, it would print a traceback
    or kill the process (Python restores SIGINT's default action as it finalises)."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def exit_now(code: int) -> None:
    """End the process after an interrupt, once its files are cleaned up and its line printed:
    Python's own exit waits for every worker thread, and one left waiting on a lock the
    interrupt cut short would hang it for ever (with the signals ignored)."""
    with contextlib.suppress(Exception):
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


#: [the exit status of the command], once it has ended (empty while it runs)
_ended_with: list = []


def after_command(code: int) -> None:
    """The command has ended with exit status ``code`` (success or error; not an interrupt):
    SIGINT and SIGTERM from now on end the process at once with ``code``, streams flushed.
    Python restores their default action late in its exit, after the atexit callbacks, and
    from there they would kill the process (status -15 or -2, a success reported as a kill):
    :func:`ignore_once_ended` ignores them from there."""
    if _ended_with:
        return
    _ended_with.append(code)

    def handler(signum, frame):
        exit_now(code)

    with contextlib.suppress(ValueError):  # not the main thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) not in (signal.SIG_IGN, None):
                signal.signal(signum, handler)


def ignore_once_ended() -> None:
    """An atexit callback (registered as the command starts, so run after those registered
    during it): once the command has ended, ignore SIGINT and SIGTERM for the rest of the exit."""
    if _ended_with:
        ignore_further_interrupts()
