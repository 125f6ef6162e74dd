"""Every boolean flag of emkit's commands takes ``=true``/``=false`` in Kaldi's spellings
(``--vad=false`` is ``--no-vad``), as the Kaldi options of ``emkit features`` do; any other
value, and a value after a ``--no-`` flag, is a usage error naming the flag."""

import click
import pytest
from cli_support import one_line_error, run

from emkit.cli import cli

TRUE_SPELLINGS = ["true", "t", "1", "TRUE", "True", "T"]
FALSE_SPELLINGS = ["false", "f", "0", "FALSE", "False", "F"]


def boolean_flags():
    """(command, parameter) of every boolean flag of ``emkit`` and of its commands."""
    flags = [(cli, p) for p in cli.params if isinstance(p, click.Option) and p.expose_value
             and p.is_bool_flag]
    for command in cli.commands.values():
        flags += [(command, p) for p in command.params if isinstance(p, click.Option)
                  and p.is_bool_flag and p.expose_value]
    return flags


def parsed(command, args):
    """The value of each parameter of ``command`` parsed from ``args`` (no callback's checks on
    the other, missing, arguments)."""
    ctx = click.Context(command, info_name=command.name, resilient_parsing=True)
    command.parse_args(ctx, list(args))
    return ctx.params


def long_name(param):
    return next(opt for opt in param.opts if opt.startswith("--"))


def test_every_command_has_its_boolean_flags_checked():
    names = {(command.name, param.name) for command, param in boolean_flags()}
    assert {("emkit", "verbose"), ("emkit", "debug"), ("features", "vad"),
            ("features", "keep_going"), ("features", "write_utt2num_frames"),
            ("features", "snip_edges"), ("features", "print_args"),
            ("train-isv", "keep_statistics"), ("train-jfa", "keep_statistics"),
            ("train-ivector", "keep_statistics"), ("train-ivector", "plda"),
            ("evaluate", "by_model"), ("run", "force"), ("score", "progress")} <= names
    assert len(names) >= 28


@pytest.mark.parametrize("command,param", boolean_flags(),
                         ids=lambda x: x.name if isinstance(x, click.Command) else long_name(x))
def test_flag_equals_true_or_false_is_the_flag_or_its_opposite(command, param):
    flag = long_name(param)
    on = parsed(command, [flag])[param.name]
    off = parsed(command, param.secondary_opts[:1])[param.name]
    assert on != off
    for value in TRUE_SPELLINGS:
        assert parsed(command, [f"{flag}={value}"])[param.name] == on, value
    for value in FALSE_SPELLINGS:
        assert parsed(command, [f"{flag}={value}"])[param.name] == off, value
    # the last one counts, a flag without a --no- form included
    assert parsed(command, [flag, f"{flag}=false"])[param.name] == off
    assert parsed(command, [f"{flag}=false", flag])[param.name] == on
    assert parsed(command, [f"{flag}=0", f"{flag}=1", f"{flag}=f"])[param.name] == off
    with pytest.raises(click.BadParameter) as error:
        parsed(command, [f"{flag}=yes"])
    assert error.value.format_message() == (f"Invalid value for '{flag}': expects true or false "
                                            "(true, t, 1 or false, f, 0; any case); got 'yes'")
    for opposite in param.secondary_opts:
        with pytest.raises(click.BadOptionUsage) as error:
            parsed(command, [f"{opposite}=true"])
        assert error.value.format_message() == (
            f"Option '{opposite}' takes no value ('{opposite}=true' is ambiguous): write "
            f"{opposite}, or {flag}=true or {flag}=false")


def test_values_of_options_and_arguments_are_not_read_as_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "--by-model=true").write_text("a p 1.0 target\nb p -1.0 nontarget\n")
    args = parsed(cli.commands["evaluate"], ["--det", "--by-model=true", "--",
                                             "--by-model=true"])
    assert args["det"] == "--by-model=true" and args["scores"] == ("--by-model=true",)
    assert args["by_model"] is False
    # the group's flags end at the command's name: the rest is the command's
    ctx = click.Context(cli, info_name="emkit", resilient_parsing=True)
    rest = cli.parse_args(ctx, ["--verbose=t", "evaluate", "--debug=true", "x"])
    assert ctx.params["verbose"] is True and ctx.params["debug"] is False
    assert rest == ["--debug=true", "x"]  # (the command name taken off)


@pytest.mark.parametrize("args,fragments", [
    (["evaluate", "--by-model=yes", "x"],
     ["emkit evaluate: usage error: Invalid value for '--by-model': expects true or false (true, "
      "t, 1 or false, f, 0; any case); got 'yes'"]),
    (["train-isv", "--keep-statistics=", "x"], ["'--keep-statistics'", "got ''"]),
    (["train-isv", "--no-keep-statistics=false", "x"],
     ["emkit train-isv: usage error: Option '--no-keep-statistics' takes no value "
      "('--no-keep-statistics=false' is ambiguous): write --no-keep-statistics, or "
      "--keep-statistics=true or --keep-statistics=false"]),
    (["--debug=maybe", "evaluate", "x"],
     ["emkit: usage error: Invalid value for '--debug'", "got 'maybe'"]),
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(args, fragments):
    # before: "Option '--by-model' does not take a value", "--keep-statistics=" alike
    one_line_error(run(*args, ok=False), 2, *fragments)


def test_debug_equals_a_value_shows_the_traceback_or_not(tmp_path):
    bad = tmp_path / "scores.txt"
    bad.write_text("a b nope\n")
    one_line_error(run("--debug", "--debug=false", "evaluate", bad, ok=False), 1,
                   "emkit evaluate: error:", "got 'nope'")
    with pytest.raises(ValueError, match="got 'nope'"):  # the traceback --debug is for
        run("--debug=T", "evaluate", bad, ok=False)


@pytest.mark.parametrize("args", [["train-ubm", "x", "--iterations"], ["evaluate", "--det"],
                                  ["calibrate", "--save"], ["score", "--models"]])
def test_an_option_error_of_clicks_parser_names_the_command(args):
    # before: "emkit: usage error: Option '--iterations' requires an argument. (see 'emkit
    # --help')": neither the command nor its help
    result = run(*args, ok=False)
    one_line_error(result, 2, f"emkit {args[0]}: usage error: ", f"(see 'emkit {args[0]} --help')")


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_are_actions_that_take_no_value(option):
    # a guard of a decision (click's behaviour, unchanged): --version and --help print and exit
    # rather than set anything, so '=false' would mean nothing; '--version=true' is the usage
    # error of any option given a value it does not take, naming it
    assert run(option).output.strip()
    one_line_error(run(f"{option}=true", ok=False), 2,
                   f"emkit: usage error: Option '{option}' does not take a value.")
