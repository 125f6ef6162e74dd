"""Kaldi's way of writing options, on the command line of ``emkit features``.

A Kaldi user writes ``compute-mfcc-feats --sample-frequency=8000 --snip-edges=false
--use_energy=false``: Kaldi's names, ``--name=value`` or ``--name value``, booleans with a value,
``_`` for ``-`` and any case in a name (Kaldi's ``ParseOptions``).  emkit's own spellings
(``--sample-rate``, ``--no-snip-edges``) stay; the Kaldi ones are rewritten to them before click
parses the command line, as :mod:`._kaldi_config` reads the same names in a ``--config`` file:

* a boolean option with a value (``--snip-edges=false``, ``t``/``f``, ``1``/``0``) becomes
  ``--snip-edges``/``--no-snip-edges``, as for every boolean flag of emkit (:mod:`._bool_flags`,
  once the name is click's);
* a name with ``_`` or capitals (``--num_mel_bins=40``) becomes ``--num-mel-bins=40``, for the
  options Kaldi has (emkit's own keep click's exact spelling);
* a Kaldi option emkit has no equivalent of (``--htk-compat=false``) is accepted only with the
  value that does what emkit does, as in a ``--config`` file (checked once ``--type`` is known).

``--sample-frequency`` (Kaldi's name of ``--sample-rate``, a decimal number of Hz as Kaldi reads
it) is an option of its own, so that its errors name it: :func:`merge_sample_frequency`.
"""

from __future__ import annotations

import logging

import click

from ._app import WARNING_LINES, log_information
from ._bool_flags import FlagValueCommand
from ._kaldi_config import FIXED, check_fixed, kaldi_options
from ._numbers import INT, FiniteFloatRange, IntRange

#: ``ctx.meta`` key of the Kaldi options with no emkit equivalent given on the command line
FIXED_GIVEN = "emkit.features.kaldi_fixed"
#: Kaldi's ``--verbose`` at or below which warnings are not printed (Kaldi's KALDI_WARN has
#: severity -1 and prints only when the verbose level is at least that)
QUIET_VERBOSE = -2
#: ``ctx.meta`` key of the arguments as given (``--print-args`` prints them)
COMMAND_LINE = "emkit.features.command_line"


class SampleFrequency(FiniteFloatRange):
    """Kaldi's ``--sample-frequency``: a positive decimal number of Hz that is whole (8000 or
    8000.0), as an int."""

    name = "hz"

    def __init__(self):
        super().__init__(min=0, min_open=True)

    def convert(self, value, param, ctx):
        hz = super().convert(value, param, ctx)
        if not float(hz).is_integer():
            self.fail(f"must be a whole number of Hz (8000 or 8000.0); got {hz}", param, ctx)
        return int(hz)


class Channel(IntRange):
    """``--channel``: -1 (Kaldi's default: mono expected, the first channel of a multi-channel
    file) or a channel number from 0."""

    EXPECTED = ("must be -1 (Kaldi's default: mono expected, the first channel of multi-channel "
                "audio) or a channel number from 0 (0: the first, left)")

    def __init__(self):
        super().__init__(min=-1)

    def convert(self, value, param, ctx):
        channel = INT.convert(value, param, ctx)
        if channel < -1:  # (click's range message would not say what -1 is)
            self.fail(f"{self.EXPECTED}; got {str(value)[:24]!r}", param, ctx)
        return channel


class Verbose(click.types.IntParamType):
    """Kaldi's generic ``--verbose=N``: an integer (ASCII digits)."""

    name = "n"

    def convert(self, value, param, ctx):
        try:
            return INT.convert(value, param, ctx)
        except click.BadParameter as exc:  # "emkit features --verbose a.wav": emkit's -v meant?
            self.fail(f"{exc.message} (Kaldi's --verbose=N; emkit's own -v/--verbose goes before "
                      "the command: 'emkit -v features ...')", param, ctx)


class KaldiStyleCommand(FlagValueCommand):
    """A command whose Kaldi options may be written as Kaldi's programs take them (and whose
    boolean flags take a value, as every emkit command's: :mod:`._bool_flags`)."""

    def parse_args(self, ctx, args):
        ctx.meta[COMMAND_LINE] = list(args)
        return super().parse_args(ctx, kaldi_style_args(self, ctx, list(args)))


def kaldi_generic_options(options: dict) -> bool:
    """Take Kaldi's generic options out of ``options`` and do what they ask: ``--verbose=N``,
    N >= 1, logs emkit's information as ``emkit -v``; N <= -2 hides the command's warnings, as
    Kaldi's programs hide theirs (errors are still printed); -1 and 0 are emkit's default,
    warnings and errors.  ``--print-args`` (given, as Kaldi prints by default) prints the command
    line on stderr.  Returns whether warnings are hidden (the command's own too)."""
    ctx = click.get_current_context()
    verbose, print_args = options.pop("verbose"), options.pop("print_args")
    if verbose is not None and verbose >= 1:
        log_information(ctx)
    quiet = verbose is not None and verbose <= QUIET_VERBOSE
    if quiet and ctx.meta.get(WARNING_LINES) is not None:
        ctx.meta[WARNING_LINES].setLevel(logging.ERROR)  # the handler ends with the command
    if print_args:
        import shlex

        words = [shlex.quote(arg) for arg in ctx.meta.get(COMMAND_LINE, ())]
        click.echo(" ".join([ctx.command_path, *words]), err=True)
    return quiet


def kaldi_style_args(command: click.Command, ctx: click.Context, args: list) -> list:
    """``args`` with Kaldi's spellings of ``command``'s options rewritten to click's (see the
    module); the Kaldi options with no emkit equivalent are taken out, into
    ``ctx.meta[FIXED_GIVEN]`` (``[(name, value or None)]``)."""
    options = kaldi_options(command)
    takes_value = {opt for p in command.params if isinstance(p, click.Option) and not p.is_flag
                   for opt in p.opts + p.secondary_opts}
    fixed, out, i = [], [], 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":  # the rest are arguments
            out += args[i - 1:]
            break
        if arg in takes_value:  # its value is the next argument, whatever it looks like
            out += args[i - 1:i + 1]
            i += 1
            continue
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, equals, value = arg[2:].partition("=")
        kaldi = name.replace("_", "-").lower()
        if kaldi in FIXED:
            if not equals and FIXED[kaldi][0] is not bool and i < len(args):
                value, equals, i = args[i], "=", i + 1
            fixed.append((kaldi, value if equals else None))
            continue
        param = options.get(kaldi)
        if param is None or kaldi == name and not equals:
            out.append(arg)
        elif equals:  # (a boolean's value: FlagValueCommand's)
            out.append(f"--{kaldi}={value}")
        else:
            out.append(f"--{kaldi}")
            if not param.is_flag:  # "--num_mel_bins 40": 40 is its value
                out += args[i:i + 1]
                i += 1
    ctx.meta[FIXED_GIVEN] = fixed
    return out


def check_fixed_given(kind: str) -> None:
    """Refuse a Kaldi option with no emkit equivalent given on the command line with a value
    other than the one that is emkit's behaviour (or for the other ``kind``)."""
    for name, value in click.get_current_context().meta.get(FIXED_GIVEN, ()):
        check_fixed(name, value, kind, "the command line")


def merge_sample_frequency(options: dict, explicit) -> None:
    """Put ``--sample-frequency`` (Kaldi's name) into ``options["sample_rate"]``; a usage error
    when both are given with different values.  ``explicit(name)``: given on the command line."""
    frequency = options.pop("sample_frequency")
    if frequency is None:
        return
    if explicit("sample_rate") and options["sample_rate"] != frequency:
        raise click.UsageError(f"--sample-rate {options['sample_rate']} and --sample-frequency "
                               f"{frequency} (Kaldi's name of the same option) differ: give one")
    options["sample_rate"] = frequency
