"""``--flag=true|false``: a value for emkit's boolean flags, as Kaldi's options take one.

Every boolean flag of emkit's commands (``--vad/--no-vad``, ``--keep-statistics``,
``--keep-going``, ``emkit --verbose``...) may be written ``--flag=VALUE``, VALUE one of Kaldi's
spellings of a boolean (:data:`TRUE`, :data:`FALSE`, any case), as the Kaldi options of
``emkit features`` (``--snip-edges=false``) are:

* ``--vad=true`` is ``--vad``, ``--vad=false`` is ``--no-vad``;
* a flag with no ``--no-`` form (``--keep-going``): ``=true`` is the flag, ``=false`` cancels
  that flag given before it (the last one counts, as with the pairs: it stays off);
* any other value (``--vad=maybe``, ``--vad=``) is a usage error naming the flag and the values;
* ``--no-vad=VALUE`` is a usage error: ``--no-vad=false`` reads both as "no VAD" and as "not
  no VAD"; ``--vad=false`` or ``--no-vad`` say it once.

Only the command's options are rewritten: never the value of an option that takes one
(``-o --vad=false`` names a file), what follows ``--``, nor (for the ``emkit`` group) what
follows the command's name.  Short flags (``-v``) take no value.
"""

from __future__ import annotations

import click

__all__ = ["TRUE", "FALSE", "FlagValueCommand", "flag_value_args", "flag_given"]

#: Kaldi's spellings of a boolean (``ParseOptions``), compared in lower case
TRUE, FALSE = ("true", "t", "1"), ("false", "f", "0")
EXPECTED = "true or false (true, t, 1 or false, f, 0; any case)"


def flag_given(args, option: str) -> bool:
    """Whether ``args`` turn flag ``option`` on (``--debug``, ``--debug=t``; the last one
    counts), read before click parses them (a bad value is click's error, later)."""
    on = False
    for arg in args:
        name, equals, value = str(arg).partition("=")
        if name == option:
            on = not equals or value.lower() in TRUE
    return on


def bool_value(value: str, option: str, ctx: click.Context | None) -> bool:
    """``value`` of ``--option=value`` as a bool; a usage error naming ``option`` otherwise."""
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise click.BadParameter(f"expects {EXPECTED}; got {value[:24]!r}", ctx=ctx,
                             param_hint=f"'{option}'")


def flag_value_args(command: click.Command, ctx: click.Context, args: list,
                    *, options_end_at_argument: bool = False) -> list:
    """``args`` with ``--flag=VALUE`` of ``command``'s boolean flags written as click takes them
    (see the module).  ``options_end_at_argument``: the first argument that is not an option
    ends them (a group's command name)."""
    flags, values = {}, {}  # option string -> (parameter, on); -> number of values it takes
    for param in command.params:
        if not isinstance(param, click.Option) or not param.expose_value:  # --help, --version
            continue
        if param.is_flag and param.is_bool_flag:
            flags.update({opt: (param, True) for opt in param.opts})
            flags.update({opt: (param, False) for opt in param.secondary_opts})
        elif not param.is_flag and not param.count:
            values.update({opt: param.nargs for opt in param.opts + param.secondary_opts})
    out, single_flags = [], {}  # single_flags: parameter name -> indices of its tokens in out
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out += args[i - 1:]
            break
        if arg in values:  # its values are the next arguments, whatever they look like
            out += args[i - 1:i + values[arg]]
            i += values[arg]
            continue
        name, equals, value = arg.partition("=")
        if name not in flags or not name.startswith("--") or (arg in flags and not equals):
            if arg in flags and not flags[arg][0].secondary_opts:
                single_flags.setdefault(flags[arg][0].name, []).append(len(out))
            out.append(arg)
            if options_end_at_argument and not arg.startswith("-"):
                out += args[i:]
                break
            continue
        param, on = flags[name]
        if not on:
            flag = param.opts[-1]
            raise click.BadOptionUsage(name, f"Option '{name}' takes no value ({arg[:48]!r} is "
                                       f"ambiguous): write {name}, or {flag}=true or "
                                       f"{flag}=false", ctx=ctx)
        if bool_value(value, name, ctx):
            token = name
        elif param.secondary_opts:
            token = param.secondary_opts[0]
        else:  # off: the flag given before is taken back
            for index in single_flags.pop(param.name, ()):
                out[index] = None
            continue
        if not param.secondary_opts:
            single_flags.setdefault(param.name, []).append(len(out))
        out.append(token)
    return [arg for arg in out if arg is not None]


class FlagValueCommand(click.Command):
    """A command whose boolean flags take ``=true``/``=false`` (see the module), and whose
    errors of click's parser name it."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, flag_value_args(self, ctx, list(args)))
        except click.UsageError as exc:
            if exc.ctx is None:  # "requires an argument": else "emkit: usage error", emkit's help
                exc.ctx = ctx
            raise
