"""The ``emkit`` command group: error handling, exit codes and the options shared by commands."""

from __future__ import annotations

import logging
import os
import re
import sys

import click

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

HELP = """\
emkit: GMM-UBM, ISV, JFA and i-vector speaker verification.

\b
A typical run on your own data:
  emkit train-ubm  train.scp -n 64 -o ubm.h5
  emkit train-isv  train.scp --ubm ubm.h5 --labels utt2spk -o isv.h5   (optional)
  emkit enroll     enroll.scp -m ubm.h5 -e spk2utt -o models.h5        (or -m isv.h5)
  emkit score      test.scp --models models.h5 -t trials -o scores.txt
  emkit evaluate   scores.txt --det det.png

\b
Features: .npy (one utterance), .npz, .h5/.hdf5, Kaldi .ark (binary or text,
compressed matrices included) and .scp; several files may be given.  Text
files: utt2spk ("utterance-id speaker-id"), enrolment lists ("model-id
utterance-id ..."), trials ("model-id probe-id [target|nontarget]"), scores
("model-id probe-id score [target|nontarget]").

\b
Exit status:
  0  success
  1  runtime failure: an input that exists but cannot be used (wrong format,
     wrong feature dimension, unknown model or utterance, empty list), an
     output that cannot be written, or a training failure
  2  usage error: unknown command or option, missing or invalid argument,
     an input path that does not exist
Errors are reported as one line on stderr; no partial output file is left.

Run "emkit demo" for a complete experiment on embedded data.
"""


def _one_line(text) -> str:
    return " ".join(str(text).split())


class EmkitGroup(click.Group):
    """A group whose errors are one line on stderr, with exit status 1 (runtime) or 2 (usage)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        debug = "--debug" in (sys.argv[1:] if args is None else list(args))
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
                click.echo(exc.ctx.get_help())  # "emkit" alone: the help, as click does
                sys.exit(EXIT_USAGE)
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "emkit")
            click.echo(f"{where}: usage error: {_one_line(exc.format_message())} "
                       f"(see '{where} --help')", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            message = _one_line(exc.format_message())
            click.echo(f"{prog_name or 'emkit'}: error: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("emkit: aborted", err=True)
            sys.exit(EXIT_FAILURE)
        except Exception as exc:  # any failure of the work itself
            if debug:
                raise
            command = getattr(exc, "_emkit_command", None) or prog_name or "emkit"
            message = _one_line(exc)
            if not isinstance(exc, (ValueError, OSError)) or not message:
                message = f"{type(exc).__name__}: {message}"
            click.echo(f"{command}: error: {message}", err=True)
            sys.exit(EXIT_FAILURE)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def invoke(self, ctx):
        try:
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
              help="Log every training iteration (INFO level) on stderr.")
@click.option("--debug", is_flag=True, help="Show the full Python traceback of a failure.")
@click.version_option(package_name="emkit", prog_name="emkit")
@click.pass_context
def cli(ctx, verbose, debug):
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("emkit: %(message)s"))
        logger = logging.getLogger("emkit")
        logger.addHandler(handler)
        previous = logger.level
        logger.setLevel(logging.INFO)

        def restore():
            logger.removeHandler(handler)
            logger.setLevel(previous)

        ctx.call_on_close(restore)


def main(args=None):
    """Entry point of the ``emkit`` console script."""
    cli.main(args=args, prog_name="emkit")


# ---------------------------------------------------------------------------------------------
# parameter types and shared options
# ---------------------------------------------------------------------------------------------


class InputFile(click.ParamType):
    """An existing file; Kaldi ``ark:``/``scp:`` prefixes (``ark,s,cs:...``) are allowed."""

    name = "FILE"

    def convert(self, value, param, ctx):
        text = os.fspath(value)
        path = re.sub(r"^(ark|scp)(,[a-z]+)*:", "", text)
        if not os.path.exists(path):
            self.fail(f"file {path!r} does not exist", param, ctx)
        if os.path.isdir(path):
            self.fail(f"{path!r} is a directory, not a file", param, ctx)
        return text


def _resolve_progress(ctx, param, value):
    return sys.stderr.isatty() if value is None else value


def progress_option(f):
    return click.option("--progress/--no-progress", default=None, callback=_resolve_progress,
                        help="Progress bars on stderr for steps that last more than a second "
                             "[default: on when stderr is a terminal].")(f)


def feature_arguments(f):
    f = click.option("--feature-list", type=InputFile(), default=None,
                     help="A text file naming feature files, one per line (in addition to "
                          "FEATURES).")(f)
    return click.argument("features", nargs=-1, type=InputFile())(f)


def seed_option(f):
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Seed of the random initialisation; the same seed gives the same "
                             "model.")(f)


def feature_paths(features, feature_list) -> list:
    """FEATURES plus the files named in --feature-list; a usage error when there are none."""
    paths = list(features)
    if feature_list:
        base = re.sub(r"^(ark|scp)(,[a-z]+)*:", "", feature_list)
        with open(base, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                name = line.strip()
                if not name or name.startswith("#"):
                    continue
                if not os.path.exists(re.sub(r"^(ark|scp)(,[a-z]+)*:", "", name)):
                    raise FileNotFoundError(f"{feature_list} line {number}: no such feature file "
                                            f"{name!r}")
                paths.append(name)
    if not paths:
        raise click.UsageError("no feature file given: name them as arguments or with "
                               "--feature-list")
    return paths
