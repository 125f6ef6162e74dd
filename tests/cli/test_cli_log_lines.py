"""``emkit -v`` lines and ``--progress`` bars on one terminal: a line is printed on a cleared
line between the bars (each bar redrawn below it), never appended to a bar or overwritten."""

import io
import logging

from click.testing import CliRunner
from tqdm.auto import tqdm

from emkit.cli import cli
from emkit.cli._log_lines import LineHandler


def _terminal_lines(text: str) -> list:
    """What a terminal shows of ``text``: each line as its last carriage return left it."""
    return [line.split("\r")[-1] for line in text.split("\n")]


def _log_through(handler, message: str) -> None:
    logger = logging.getLogger("emkit.test_log_lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("%s", message)
    finally:
        logger.removeHandler(handler)


def test_a_log_line_clears_the_bar_shown_and_the_bar_is_redrawn_below_it():
    terminal = io.StringIO()
    with tqdm(total=10, desc="statistics", file=terminal, mininterval=0) as bar:
        bar.update(3)
        _log_through(LineHandler(terminal), "IVector E-step: 3 of 10 utterances")
        shown = _terminal_lines(terminal.getvalue())
        assert shown[0] == "emkit: IVector E-step: 3 of 10 utterances"  # not after the bar
        assert shown[1].startswith("statistics:  30%")  # the bar again, on its own line
    assert len(shown) == 2


def test_without_a_bar_a_log_line_is_the_line_alone():
    terminal = io.StringIO()
    with tqdm(total=10, file=terminal, disable=True):  # --no-progress: a disabled bar
        _log_through(LineHandler(terminal), "reading features")
    assert terminal.getvalue() == "emkit: reading features\n"


def test_emkit_v_prints_its_lines_and_warnings_between_the_bars_of_a_command(monkeypatch):
    import sys
    import warnings

    import click

    @click.command("bar-test")
    def bar_test():
        with tqdm(total=4, desc="scoring", file=sys.stderr, mininterval=0) as bar:
            bar.update(1)
            logging.getLogger("emkit").info("scoring: 1 of 4 probes")
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn("a short utterance", UserWarning)

    monkeypatch.setitem(cli.commands, "bar-test", bar_test)
    result = CliRunner().invoke(cli, ["-v", "bar-test"], catch_exceptions=False)
    assert result.exit_code == 0
    shown = _terminal_lines(result.stderr)
    assert shown[:2] == ["emkit: scoring: 1 of 4 probes", "emkit: warning: a short utterance"]
    assert shown[2].startswith("scoring:  25%")  # the bar redrawn below them
