"""The ``emkit`` command group: error handling, exit codes and the options shared by commands."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import re
import signal
import stat
import sys
import warnings

import click

from .. import __version__
from ._bool_flags import FlagValueCommand, flag_given, flag_value_args
from ._log_lines import LineHandler, one_line
from ._numbers import INT, FiniteFloatRange, IntRange
from ._signals import (EXIT_INTERRUPTED, EXIT_TERMINATED, after_command, exit_now,
                       ignore_further_interrupts, ignore_once_ended, interrupted_by, stop,
                       terminate, unraisable_hook)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
HELP = """\
emkit: GMM-UBM, ISV, JFA and i-vector speaker verification.

\b
A typical run on your own data:
  emkit features   data/train -o train.ark     (audio: a Kaldi data directory
                                               or WAV/FLAC files; emkit[audio])
  emkit train-ubm  train.scp -n 64 -o ubm.h5
  emkit train-isv  train.scp --ubm ubm.h5 --labels utt2spk -o isv.h5   (optional)
  emkit enroll     enroll.scp -m ubm.h5 -e spk2utt -o models.h5        (or -m isv.h5)
  emkit score      test.scp --models models.h5 -t trials -o scores.txt
                   [--norm s --cohort cohort.lst]            (score normalisation)
  emkit evaluate   scores.txt --det det.png [--calibration cal.json] [--by-model]
Train commands resume with --checkpoint PATH and run on dask with --workers N
or --scheduler ADDRESS.  "emkit -v COMMAND" logs progress on stderr (each EM
iteration, counts done of all with the time left, a summary of each step).

\b
Features: .npy (one utterance, whose id is the file's stem: spk1_u3.npy is
utterance spk1_u3), .npz, .h5/.hdf5, Kaldi .ark (binary or text, compressed
matrices included) and .scp (relative paths in it are taken from the current
directory, as Kaldi does, else from the scp's folder); several files may be
given, and a directory stands for its .npy, .npz, .h5, .hdf5, .hdf and .ark
files (sorted by name; not recursive; hidden files skipped).  Text files:
utt2spk ("utterance-id speaker-id"), enrolment lists ("model-id utterance-id
..."), trials ("model-id probe-id [target|nontarget]", each model-probe pair
once), scores ("model-id probe-id score [target|nontarget]").

\b
Outputs: written atomically (a temporary file renamed when complete): a
write that fails (a full disk, Ctrl-C) leaves the previous file as it was.  An
output that is one of the command's inputs is refused (usage error), and so
is an existing output without write permission (runtime failure): remove it
or make it writable (chmod u+w) first.

\b
Exit status:
  0  success
  1  runtime failure: an input that exists but cannot be used (wrong format,
     wrong feature dimension, unknown model or utterance, empty list), an
     output that cannot be written, or a training failure
  2  usage error: unknown command or option, an option that does not apply
     to the given machine, missing or invalid argument, an input path that
     does not exist (as an argument or in --feature-list), an output path
     that is also an input
  130 interrupted (Ctrl-C)
  143 terminated (SIGTERM, as batch schedulers send)
Errors are reported as one line on stderr; no partial output file is left.
A Ctrl-C or SIGTERM that comes once the command has ended (its outputs
complete, or its error reported), while emkit exits, changes nothing: the
status is the command's (0 after a success).

Run "emkit demo" for a complete experiment on embedded data (a recipe: see
"emkit demo --help").
"""


#: ``ctx.meta`` key of the handler that prints a command's warnings (:func:`_warnings_as_lines`)
WARNING_LINES = "emkit.warning_lines"


@contextlib.contextmanager
def _warnings_as_lines():
    """While a command runs, Python warnings go through the 'emkit' logger, whose warnings are
    one line on stderr (not Python's "file:line: Category: message" and source line) printed by
    the handler it yields."""
    logger = logging.getLogger("emkit")
    handler = LineHandler(sys.stderr)
    handler.setLevel(logging.WARNING)

    def show(message, category, filename, lineno, file=None, line=None):
        logger.warning("%s", message)

    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            # dask's advice about the size of the graphs emkit builds: nothing for the user to do
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            yield handler
    finally:
        logger.removeHandler(handler)


class EmkitGroup(click.Group):
    """A group whose errors are one line on stderr, with exit status 1 (runtime) or 2 (usage);
    its boolean flags and its commands' take ``=true``/``=false`` (:mod:`._bool_flags`)."""

    command_class = FlagValueCommand

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        debug = flag_given(sys.argv[1:] if args is None else list(args), "--debug")
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
                click.echo(exc.ctx.get_help())  # "emkit" alone: the help, as click does
                sys.exit(EXIT_USAGE)
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "emkit")
            message = one_line(exc.format_message())
            if re.search(r"No such option:? '?(-v|--verbose|--debug)\b", message):
                message += " (-v/--verbose and --debug go before the command: 'emkit -v train-ubm ...')"
            elif re.search(r"'--verbose' requires an argument", message):  # emkit features'
                message += (" (Kaldi's --verbose=N; emkit's own -v/--verbose goes before the "
                            "command: 'emkit -v features ...')")
            click.echo(f"{where}: usage error: {message} (see '{where} --help')", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            message = one_line(exc.format_message())
            click.echo(f"{prog_name or 'emkit'}: error: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # click's wrapping of Ctrl-C
                stop(exc, prog_name, newline=False)
            click.echo("emkit: aborted", err=True)
            sys.exit(EXIT_FAILURE)
        except KeyboardInterrupt as exc:
            stop(exc, prog_name)
        except Exception as exc:  # any failure of the work itself
            if interrupted_by(exc) is not None:
                stop(interrupted_by(exc), prog_name)
            if debug:
                raise
            command = getattr(exc, "_emkit_command", None) or prog_name or "emkit"
            message = one_line(exc)
            if type(exc).__name__ == "CheckpointMismatchError":  # the options, not the parameters
                from ._train_options import checkpoint_mismatch_message

                message = one_line(checkpoint_mismatch_message(exc))
            ours = type(exc).__module__.split(".")[0] == "emkit"  # SystemUnavailable ...
            if not (ours or isinstance(exc, (ValueError, OSError, ArithmeticError))) \
                    or not message:
                message = f"{type(exc).__name__}: {message}"
            click.echo(f"{command}: error: {message}", err=True)
            sys.exit(EXIT_FAILURE)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, flag_value_args(self, ctx, list(args),
                                                       options_end_at_argument=True))

    def invoke(self, ctx):
        try:
            with _warnings_as_lines() as ctx.meta[WARNING_LINES]:
                return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            # name the subcommand in the error line ("emkit score: error: ...")
            exc._emkit_command = f"{ctx.command_path} {ctx.invoked_subcommand or ''}".strip()
            raise


@click.group(name="emkit", cls=EmkitGroup, help=HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True,
              help="Log progress on stderr (INFO level): each training iteration (its value, "
                   "change, time and the time left at most), and at most every 30 s how far "
                   "reading, features, statistics, each iteration's E-step and scoring are, "
                   "then what each step did.")
@click.option("--debug", is_flag=True, help="Show the full Python traceback of a failure.")
@click.version_option(__version__, prog_name="emkit")  # not importlib.metadata: a faster start
@click.pass_context
def cli(ctx, verbose, debug):
    if verbose:
        log_information(ctx)


def log_information(ctx: click.Context) -> None:
    """Log emkit's information (INFO level) on stderr until ``ctx`` closes: ``emkit -v``; once
    per command line (``emkit -v features --verbose=1`` logs each line once)."""
    if ctx.meta.get("emkit.log_information"):
        return
    ctx.meta["emkit.log_information"] = True
    handler = LineHandler(sys.stderr)
    handler.addFilter(lambda record: record.levelno < logging.WARNING)  # printed already
    logger = logging.getLogger("emkit")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)

    def restore():
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)


def main(args=None):
    """Entry point of the ``emkit`` console script (Ctrl-C: status 130, SIGTERM: 143, no
    traceback, nothing half-written left).  It ends the process: once the command has ended,
    Ctrl-C and SIGTERM exit at once with the command's status (run commands inside a program
    with ``cli.main(..., standalone_mode=False)`` or click's ``CliRunner``).

    Parameters
    ----------
    args : list of str or None, default None
        The command line's arguments after ``emkit`` (None: ``sys.argv[1:]``).
    """
    import atexit

    sys.unraisablehook = functools.partial(unraisable_hook, sys.unraisablehook)
    atexit.register(ignore_once_ended)  # run after the callbacks registered during the command
    try:
        with contextlib.suppress(ValueError):  # not the main thread: leave the signals alone
            if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
                signal.signal(signal.SIGINT, signal.default_int_handler)
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, terminate)
        try:
            cli.main(args=args, prog_name="emkit")
        except KeyboardInterrupt as exc:  # outside click's own handling (e.g. while it exits)
            ignore_further_interrupts()
            stop(exc)
    except SystemExit as exc:
        if exc.code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            ignore_further_interrupts()
            exit_now(exc.code)
        after_command(EXIT_OK if exc.code is None else exc.code if isinstance(exc.code, int)
                      else EXIT_FAILURE)  # (Python's own reading of a SystemExit)
        raise


class lazy_module:  # noqa: N801  (used like a module)
    """A module imported on first attribute access (keeps ``emkit --help`` fast)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


# ---------------------------------------------------------------------------------------------
# parameter types and shared options
# ---------------------------------------------------------------------------------------------


_KALDI_PREFIX = r"^(ark|scp)(,[a-z]+)*:"


def strip_prefix(text) -> str:
    """The file of a Kaldi ``ark:``/``scp:`` specifier (``ark,s,cs:PATH`` -> ``PATH``)."""
    return re.sub(_KALDI_PREFIX, "", os.fspath(text))


class InputFile(click.ParamType):
    """An existing file (a directory too when ``dir_okay``); Kaldi ``ark:``/``scp:`` prefixes
    (``ark,s,cs:...``) are allowed."""

    name = "FILE"

    def __init__(self, dir_okay: bool = False):
        self.dir_okay = dir_okay
        if dir_okay:
            self.name = "PATH"

    def convert(self, value, param, ctx):
        text = os.fspath(value)
        path = strip_prefix(text)
        if not os.path.exists(path):
            self.fail(f"file {path!r} does not exist", param, ctx)
        if os.path.isdir(path) and not self.dir_okay:
            self.fail(f"{path!r} is a directory, not a file", param, ctx)
        return text


def read_only_mode(path) -> int | None:
    """The mode of ``path`` when it is an existing file without any ``w`` bit, else None (the
    bits, not ``os.access``, which says yes to root: the atomic rename would ignore them)."""
    if not os.path.isfile(path):
        return None
    mode = os.stat(path).st_mode
    return None if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) else stat.S_IMODE(mode)


def check_outputs(outputs: dict, inputs: dict, *, maybe_read_only=()) -> None:
    """Refuse outputs that are inputs (usage error) or read-only (runtime failure).

    ``outputs``: {option: path or None}; ``inputs``: {option or argument: path, list or None}.
    An output "is" an input when both name the same file (``os.path.samefile``: symlinks,
    hard links and relative paths included).  An existing output without write permission
    (no ``w`` bit in its mode) is not replaced, since the atomic rename would ignore the mode;
    but for the options of ``maybe_read_only``, files that may only be read (the caller
    decides when it would write them: :func:`read_only_mode`).
    """
    from ..io.atomic import overwritten_input
    from ..io.features import script_file_targets
    from ..io.lists import check_writable

    given = [(option, os.fspath(p)) for option, paths in inputs.items() if paths
             for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    named = [(option, strip_prefix(p)) for option, p in given]
    named += [(f"{option} (in {strip_prefix(path)})", archive) for option, path in given
              for archive in script_file_targets(path)]
    hit = overwritten_input([(o, os.fspath(p)) for o, p in outputs.items() if p is not None], named)
    if hit is not None:
        option, out, where, path = hit
        same = "" if out == path else f" ({path!r})"
        raise click.UsageError(f"{option} {out!r} is the input {where}{same}: refusing to "
                               "overwrite an input; choose another output file")
    for option, out in outputs.items():
        if out is None:
            continue
        if not os.fspath(out):
            raise click.UsageError(f"{option} is an empty path: give a file name")
        try:
            check_writable(out)
        except OSError as exc:
            raise type(exc)(f"{option}: {exc}") from None
        mode = None if option in maybe_read_only else read_only_mode(out)
        if mode is not None:
            raise PermissionError(f"cannot write {out!r}: it exists and is read-only (mode "
                                  f"{mode:04o}); remove it or make it writable (chmod u+w)")


def _resolve_progress(ctx, param, value):
    return sys.stderr.isatty() if value is None else value


def progress_option(f):
    return click.option("--progress/--no-progress", default=None, callback=_resolve_progress,
                        help="Progress bars on stderr for steps that last more than a second "
                             "[default: on when stderr is a terminal].")(f)


def gselect_options(f):
    """``--gselect K`` and ``--min-posterior P``: the statistics computed from the UBM in the
    command use Gaussian selection (``emkit.config_context(gselect_top_k=K, ...)``)."""

    @functools.wraps(f)
    def with_selection(*args, gselect=None, min_posterior=0.0, **kwargs):
        if min_posterior and gselect is None:
            raise click.UsageError("--min-posterior needs --gselect")
        if gselect is None:
            return f(*args, **kwargs)
        from .._config import config_context

        with config_context(gselect_top_k=gselect, gselect_min_posterior=min_posterior):
            try:
                return f(*args, **kwargs)
            except ValueError as exc:  # K above the UBM's Gaussians: found when it is loaded
                if str(exc).startswith("gselect_top_k "):
                    raise click.BadParameter(str(exc)[len("gselect_top_k "):],
                                             param_hint="'--gselect'") from None
                raise

    with_selection = click.option(
        "--min-posterior", type=FiniteFloatRange(0.0, 1.0, max_open=True), default=0.0,
        show_default=True,
        help="With --gselect: posteriors below this are dropped and the rest renormalised "
             "(Kaldi's --min-post).")(with_selection)
    return click.option(
        "--gselect", type=IntRange(min=1), default=None, metavar="K",
        help="Gaussian selection in the statistics of the utterances: only the K best Gaussians "
             "of each frame get posteriors (Kaldi's gselect; at most the UBM's Gaussians).  Use "
             "the same selection to train, enrol and score (the models file records enroll's; "
             "score warns when it differs).  Default: exact statistics.")(
        with_selection)


FEATURES_HELP = """

    FEATURES: feature files or directories.  A .npy file is one utterance whose id is the
    file's stem (spk1_u3.npy is utterance spk1_u3); .npz, .h5/.hdf5, Kaldi .ark and .scp files
    hold named utterances.  A directory stands for its .npy, .npz, .h5, .hdf5, .hdf and .ark
    files, sorted by name (not recursive: subdirectories are not read; hidden files skipped)."""


def feature_arguments(f):
    f.__doc__ = (f.__doc__ or "").rstrip() + FEATURES_HELP
    f = click.option("--feature-list", type=InputFile(), default=None,
                     help="A text file naming feature files (or directories), one per line (in "
                          "addition to FEATURES).")(f)
    return click.argument("features", nargs=-1, type=InputFile(dir_okay=True))(f)


def seed_option(f):
    return click.option("--seed", type=INT, default=0, show_default=True,
                        help="Seed of the random initialisation; the same seed gives the same "
                             "model.")(f)


def feature_paths(features, feature_list) -> list:
    """FEATURES plus the files named in --feature-list, directories replaced by their feature
    files (sorted, not recursive); a usage error when there are none or one does not exist."""
    from ..io.features import list_feature_directory
    from ..io.lists import MAX_LINE
    from ..io.untrusted import is_comment, show_key, text_lines

    paths = list(features)
    if feature_list:
        for number, line in text_lines(strip_prefix(feature_list), MAX_LINE, "feature list"):
            name = line.strip()
            if not name or is_comment(name.split()[0], f"{feature_list} line {number}",
                                       "a file name"):
                continue
            if not os.path.exists(strip_prefix(name)):
                raise click.BadParameter(f"{feature_list} line {number}: file {show_key(name)} "
                                         "does not exist", param_hint="'--feature-list'")
            paths.append(name)
    if not paths:
        raise click.UsageError("no feature file given: name them as arguments or with "
                               "--feature-list")
    out = []
    for path in paths:
        out.extend(list_feature_directory(path) if os.path.isdir(strip_prefix(path)) else [path])
    return out
