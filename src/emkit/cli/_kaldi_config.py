"""Kaldi options files (``--config=FILE`` of Kaldi's programs) for ``emkit features``.

A Kaldi recipe keeps the options of ``compute-mfcc-feats`` (``conf/mfcc.conf``),
``compute-fbank-feats`` (``conf/fbank.conf``) and ``compute-vad`` (``conf/vad.conf``) in files
of ``--name=value`` lines.  They are read as Kaldi's ``ParseOptions::ReadConfigFile`` reads them:
everything after a ``#`` is a comment, blank lines are skipped, ``_`` in a name is ``-`` and case
does not matter, a boolean is ``true``/``false`` (``t``/``f``, ``1``/``0``; ``--name`` alone is
true); several files are read in order, each line overriding the ones before, and the command
line overrides them all.  As in Kaldi, an unknown option is an error.

Unlike Kaldi, a value must be a plain decimal number (no ``nan``, ``inf`` or hex), a line
``--config=...`` is refused (no file includes another), and a Kaldi option with no equivalent in
emkit (``--htk-compat``, ``--vtln-warp``...) is accepted only with the value that does what emkit
does (its Kaldi default), so that a file never silently asks for something emkit does not do.

The file is untrusted: a regular file of at most :data:`MAX_CONFIG_BYTES`, lines of at most
:data:`MAX_LINE_BYTES`, and messages quote at most a shortened, escaped option or value.
"""

from __future__ import annotations

import math
import re

import click

from ._bool_flags import FALSE, TRUE

MAX_CONFIG_BYTES = 64 * 1024
MAX_LINE_BYTES = 4096

#: options of ``emkit features`` that Kaldi's programs do not have: refused in a Kaldi file
EMKIT_ONLY = ("kind", "sample_rate", "vad", "cmvn", "max_clipped", "max_utterance_bytes", "jobs",
              "keep_going", "progress", "output", "config_files", "write_utt2num_frames",
              "dither_seed")
#: Kaldi's name of an option that emkit names otherwise
RENAMED = {"sample-frequency": "sample_rate"}
#: options of add-deltas and apply-cmvn-sliding (the VAD's start with "vad-"): a file of only
#: these and the VAD's is not one of compute-mfcc-feats/compute-fbank-feats options
NOT_FEATURE_OPTIONS = ("delta-order", "delta-window", "cmn-window", "min-cmn-window", "center",
                       "norm-vars")
#: Kaldi's generic options (every program has them): they do not make a file one of
#: compute-mfcc-feats/compute-fbank-feats options
GENERIC_OPTIONS = ("verbose", "print-args")
#: MFCC-only options (compute-fbank-feats does not have them)
MFCC_ONLY = ("num-ceps", "cepstral-lifter")
#: Kaldi options with no emkit equivalent: accepted only with the value that is emkit's behaviour
#: (Kaldi's default); name -> (type, value, the kind of features that has the option or None)
FIXED = {
    "allow-downsample": (bool, False, None),
    "allow-upsample": (bool, False, None),
    "blackman-coeff": (float, 0.42, None),
    "debug-mel": (bool, False, None),
    "htk-compat": (bool, False, None),
    "max-feature-vectors": (int, -1, None),
    "min-duration": (float, 0.0, None),
    "output-format": (str, "kaldi", None),
    "subtract-mean": (bool, False, None),
    "vtln-warp": (float, 1.0, None),
    "vtln-low": (float, 100.0, None),
    "vtln-high": (float, -500.0, None),
    "use-log-fbank": (bool, True, "fbank"),
    "use-power": (bool, True, "fbank"),
}
_INT = re.compile(r"[+-]?[0-9]+\Z")
# (one way to match each number: "[0-9]+\.?[0-9]*" splits a run of digits between its two
# parts in every way, and a long run followed by a bad character took quadratic time)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_BLANKS = " \t\r\n\v\f"


def kaldi_options(command: click.Command) -> dict:
    """``{Kaldi option name: click parameter}`` of the options of ``command`` that Kaldi has."""
    options = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in EMKIT_ONLY:
            options.update({opt[2:]: param for opt in param.opts if opt.startswith("--")})
    for kaldi, name in RENAMED.items():
        options[kaldi] = next(p for p in command.params if p.name == name)
    return options


def read_kaldi_configs(paths, ctx: click.Context, kind: str, names_by_file=None) -> dict:
    """``{parameter name: (value, "FILE line N")}`` of the Kaldi options files ``paths``, read in
    order (a later line overrides an earlier one), for features of ``kind`` ("mfcc"/"fbank").
    ``names_by_file``: a dict that gets ``{path: set of the Kaldi option names it sets}``.

    Raises ``click.UsageError`` naming the file, the line and the option for anything that is
    not an option of ``kind``'s Kaldi program with an emkit equivalent, or a bad value.
    """
    from ..io.untrusted import show_path

    options = kaldi_options(ctx.command)
    found = {}
    for path in paths:
        for number, line in _lines(path):
            where = f"--config {show_path(path)} line {number}"
            name, value = _split(line, where)
            converted = _option(name, value, options, kind, ctx, where)
            if names_by_file is not None:
                names_by_file.setdefault(path, set()).add(name)
            if converted is not None:
                found[converted[0]] = (converted[1], where)
    return found


def dither_note(names_by_file: dict, kind: str) -> str | None:
    """The note for files of ``compute-{kind}-feats`` options that set no ``--dither`` (Kaldi's
    default 1, emkit's 0), or None: when one of the files sets it, or none is such a file (only
    ``compute-vad``, ``add-deltas`` or ``apply-cmvn-sliding`` options)."""
    from ..io.untrusted import show_path

    if any("dither" in names for names in names_by_file.values()):
        return None
    files = [show_path(path) for path, names in names_by_file.items()
             if any(not n.startswith("vad-") and n not in NOT_FEATURE_OPTIONS + GENERIC_OPTIONS
                    for n in names)]
    if not files:
        return None
    return (f"no --dither in --config {' or '.join(files)}: emkit uses 0 (no noise: the "
            f"features of the audio alone), Kaldi's compute-{kind}-feats 1 (give --dither 1 for "
            "Kaldi's)")


def _lines(path):
    """(line number, text without comment and blanks) of the non-empty lines of ``path``."""
    from ..io.errors import InvalidFileError
    from ..io.untrusted import check_regular, show_path, text_lines

    try:
        size = check_regular(path).st_size
        if size > MAX_CONFIG_BYTES:
            raise click.UsageError(f"--config {show_path(path)}: {size} bytes; a Kaldi options "
                                   f"file has at most {MAX_CONFIG_BYTES} (a few lines of "
                                   "--name=value)")
        total = 0
        for number, line in text_lines(path, MAX_LINE_BYTES, "Kaldi options file"):
            total += len(line)
            if total > MAX_CONFIG_BYTES:  # grew since its size was read
                raise click.UsageError(f"--config {show_path(path)}: more than "
                                       f"{MAX_CONFIG_BYTES} bytes")
            text = line.split("#", 1)[0].strip(_BLANKS)
            if text:
                yield number, text
    except (InvalidFileError, OSError) as exc:
        raise click.UsageError(f"--config: {exc}") from None


def _split(line: str, where: str):
    """(normalised name, value or None when there is no '=') of a ``--name=value`` line."""
    if not line.startswith("--"):
        raise click.UsageError(f"{where}: not a line of a Kaldi options file (--name=value); got "
                               f"{_show(line)} (a file sourced by shell scripts lacks the '--')")
    name, equals, value = line[2:].partition("=")
    name = name.replace("_", "-").lower()  # (as Kaldi: no blank before "=")
    if not _NAME.match(name):
        raise click.UsageError(f"{where}: {_show('--' + name)} is not an option name")
    return name, value.strip(_BLANKS) if equals else None


def _option(name, value, options, kind, ctx, where):
    """(parameter name, value) of one line; None for an accepted fixed option."""
    shown = f"--{name}"
    if name == "config":
        raise click.UsageError(f"{where}: --config in an options file: emkit does not follow one "
                               "file from another; give each file with its own --config")
    if name in FIXED:
        check_fixed(name, value, kind, where)
        return None
    param = options.get(name)
    if param is None:
        emkit_only = {f"--{n.replace('_', '-')}" for n in EMKIT_ONLY}
        hint = (" (an option of emkit features, not of Kaldi's programs: give it on the command "
                "line)" if shown in emkit_only else "")
        raise click.UsageError(f"{where}: unknown option {_show(shown)}{hint}")
    if kind == "fbank" and name in MFCC_ONLY:
        raise click.UsageError(f"{where}: {shown} is an option of compute-mfcc-feats, not of "
                               "--type fbank")
    if param.is_bool_flag:
        return param.name, _convert(bool, value, shown, where)
    if isinstance(param.type, click.Choice):
        converted = _convert(str, value, shown, where)
    elif isinstance(param.type, click.types.IntParamType) and param.name != "sample_rate":
        converted = _convert(int, value, shown, where)
    else:  # Kaldi's sample frequency is a float: 16000.0 is 16000 Hz
        converted = _convert(float, value, shown, where)
    if param.name == "sample_rate":
        if not math.isfinite(converted):  # 1e999 (the other options' types refuse inf)
            raise click.UsageError(f"{where}: {shown}: must be a finite number; got "
                                   f"{_show(value)}")
        if converted != int(converted):
            raise click.UsageError(f"{where}: {shown}={_show(value)}: emkit needs a whole "
                                   "number of Hz")
        converted = int(converted)
    try:
        converted = param.type.convert(converted, param, ctx)
    except click.BadParameter as exc:
        raise click.UsageError(f"{where}: {shown}: {exc.message}") from None
    return param.name, converted


def check_fixed(name: str, value, kind: str, where: str) -> None:
    """Refuse Kaldi option ``name`` of :data:`FIXED` (no emkit equivalent) with a ``value`` (None:
    no '=') other than what emkit does, or for the other ``kind`` of features."""
    kind_of_value, expected, only = FIXED[name]
    shown = f"--{name}"
    if only is not None and only != kind:
        raise click.UsageError(f"{where}: {shown} is an option of compute-{only}-feats, not "
                               f"of --type {kind}")
    got = _convert(kind_of_value, value, shown, where)
    if got != expected:
        line = "the line" if where.startswith("--config") else "it"
        raise click.UsageError(f"{where}: {shown}={_show(value)} is not supported: emkit "
                               f"has no such option and does what {shown}={_text(expected)} "
                               f"does (remove {line} or give that value)")


def _convert(kind_of_value, value, shown, where):
    """``value`` (None: no '=') as ``kind_of_value``, the way Kaldi reads it (decimal only)."""
    if kind_of_value is bool:
        if value is None or value.lower() in TRUE:  # "--name" alone: true
            return True
        if value.lower() in FALSE:
            return False
        expected = "true or false"
    elif value is None:
        raise click.UsageError(f"{where}: {shown} needs a value ({shown}=VALUE)")
    elif kind_of_value is str:
        return value
    elif kind_of_value is int and _INT.match(value):
        return int(value)
    elif kind_of_value is float and _FLOAT.match(value):
        return float(value)
    else:
        expected = "an integer" if kind_of_value is int else "a decimal number"
    raise click.UsageError(f"{where}: {shown} expects {expected}; got {_show(value)}")


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" \
        if isinstance(value, float) else str(value)


def _show(text) -> str:
    """An option or value from the file for a message: shortened and escaped."""
    from ..io.untrusted import show_key

    return show_key(text)
