"""Python warnings raised while a command runs: one line "emkit: warning: ..." on stderr."""

import logging
import warnings

import click
import pytest
from click.testing import CliRunner

from emkit.cli import cli


@pytest.fixture
def warn_command(monkeypatch):
    @click.command("warn-test")
    def warn_test():
        warnings.warn("first line\n  second line", UserWarning)
        warnings.warn("Sending large graph of size 99.55 MiB.\nThis may cause some slowdown.",
                      UserWarning)  # dask's, not shown
        logging.getLogger("emkit").info("an iteration")
        click.echo("done")

    monkeypatch.setitem(cli.commands, "warn-test", warn_test)
    before = warnings.showwarning
    yield
    assert warnings.showwarning is before  # restored after the command


# pytest turns warnings into errors (pyproject.toml): here, as in a shell, they are shown
pytestmark = pytest.mark.filterwarnings("default::UserWarning")


def test_a_warning_is_one_line_without_the_source(warn_command):
    result = CliRunner().invoke(cli, ["warn-test"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout == "done\n"
    assert result.stderr == "emkit: warning: first line second line\n"


def test_verbose_shows_information_and_each_warning_once(warn_command):
    result = CliRunner().invoke(cli, ["-v", "warn-test"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stderr == "emkit: warning: first line second line\nemkit: an iteration\n"
