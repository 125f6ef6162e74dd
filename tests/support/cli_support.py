"""Helpers of the command-line tests: run a command in-process, check one-line errors and that
nothing was left behind."""

import os

from click.testing import CliRunner

from emkit.cli import cli

SPEAKERS = (1, 2, 3, 4)
PROBES = ("probes.h5", "probes.ark")

def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def one_line_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert err and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in result.output


def no_leftovers(directory, *names):
    for name in names:
        assert not (directory / name).exists(), name
    assert not [n for n in os.listdir(directory) if n.startswith(".emkit-")]
