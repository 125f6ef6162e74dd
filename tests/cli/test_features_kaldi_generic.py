"""Kaldi's generic options ``--verbose=N`` and ``--print-args``, which every Kaldi program takes
(and users paste), on the command line of ``emkit features`` and in its ``--config`` files."""

import logging

import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from audio_files import run_features  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from cli_support import no_leftovers, one_line_error  # noqa: E402

from emkit.cli import cli  # noqa: E402

INFO = "emkit: computing the features"  # what the patched step logs (INFO level)


@pytest.fixture()
def logged_step(monkeypatch):
    """``emkit.audio.compute_features`` logs one INFO line first."""
    import emkit.audio

    compute = emkit.audio.compute_features

    def logging_compute(*args, **kwargs):
        logging.getLogger("emkit.audio").info("computing the features")
        return compute(*args, **kwargs)

    monkeypatch.setattr(emkit.audio, "compute_features", logging_compute)


def features(tmp_path, audio, name, *args, before=()):
    """(the archive's bytes, stderr) of ``emkit BEFORE features AUDIO ARGS -o NAME.ark``."""
    result = CliRunner().invoke(cli, [*before, "features", str(audio), *map(str, args), "-o",
                                      str(tmp_path / f"{name}.ark"), "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return (tmp_path / f"{name}.ark").read_bytes(), result.stderr


@pytest.mark.parametrize("args,before,logged", [
    ([], [], 0),
    (["--verbose=1"], [], 1),
    (["--verbose", "3"], [], 1),
    (["--verbose=0"], [], 0),
    (["--verbose=-1"], [], 0),  # Kaldi's quieter levels: emkit's default
    ([], ["-v"], 1),
    (["--verbose=2"], ["--verbose"], 1),  # both: each line once
])
def test_kaldi_verbose_logs_as_emkit_v_does(tmp_path, audio, logged_step, args, before, logged):
    # before: "No such option '--verbose'"
    ark, stderr = features(tmp_path, audio, "out", *args, before=before)
    assert stderr.splitlines().count(INFO) == logged, stderr
    assert stderr.replace(INFO + "\n", "") == ""
    assert ark == features(tmp_path, audio, "plain")[0]


def test_kaldi_verbose_in_a_config_file(tmp_path, audio, logged_step):
    (tmp_path / "verbose.conf").write_text("--verbose=2\n--print-args=false\n")
    (tmp_path / "vad.conf").write_text("--vad-energy-threshold=5.5\n--verbose=1\n")
    _, stderr = features(tmp_path, audio, "a", "--config", tmp_path / "verbose.conf")
    assert stderr == INFO + "\n"  # and no note about --dither: no compute-mfcc-feats option
    _, stderr = features(tmp_path, audio, "b", "--config", tmp_path / "vad.conf",
                         "--verbose=0")  # the command line overrides the file
    assert stderr == ""


def test_print_args_prints_the_command_line_as_kaldi_does(tmp_path, audio, monkeypatch):
    # before: "No such option '--print-args'"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "print.conf").write_text("--print-args\n")
    audio = audio.rename(tmp_path / "my audio")
    result = run_features("--print_args", "--snip-edges=false", "my audio", "-o", "out.ark")
    assert result.exit_code == 0, result.output
    assert result.stderr == ("emkit features --print_args --snip-edges=false 'my audio' -o "
                             "out.ark\n")
    plain = run_features(audio, "--snip-edges=false", "-o", "plain.ark")
    assert plain.exit_code == 0 and plain.stderr == ""
    assert (tmp_path / "out.ark").read_bytes() == (tmp_path / "plain.ark").read_bytes()
    for extra, printed in ((["--print-args=false"], False), (["--config=print.conf"], True),
                           (["--config=print.conf", "--print-args=f"], False),
                           (["--config=print.conf", "--no-print-args"], False)):
        result = run_features(audio, *extra, "-o", "out.ark")
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith("emkit features ") is printed, (extra, result.stderr)


@pytest.mark.parametrize("args,fragments", [
    (["--verbose=loud"], ["Invalid value for '--verbose': 'loud' is not a valid integer",
                          "emkit's own -v/--verbose goes before the command"]),
    (["--print-args=maybe"], ["'--print-args': expects true or false", "got 'maybe'"]),
])
def test_bad_generic_option_values_are_usage_errors(tmp_path, audio, monkeypatch, args,
                                                            fragments):
    monkeypatch.chdir(tmp_path)
    one_line_error(run_features(audio, *args, "-o", "out"), 2, "emkit features: usage error:",
                   *fragments)
    no_leftovers(tmp_path, "out")


def test_verbose_without_its_number_says_where_emkits_own_goes(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(run_features(audio, "-o", "out", "--verbose"), 2,
                   "emkit features: usage error: Option '--verbose' requires an argument. (Kaldi's --verbose=N; emkit's own "
                   "-v/--verbose goes before the command: 'emkit -v features ...') (see 'emkit "
                   "features --help')")
    no_leftovers(tmp_path, "out")
