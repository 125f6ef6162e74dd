"""Kaldi's generic options ``--verbose=N`` and ``--print-args``, which every Kaldi program takes
(and users paste), on the command line of ``emkit features`` and in its ``--config`` files."""

import logging
import re

import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from audio_files import run_features  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from cli_support import no_leftovers, one_line_error  # noqa: E402

from emkit.cli import cli  # noqa: E402

INFO = "emkit: computing the features"  # what the patched step logs (INFO level)
#: the summary the extraction logs at INFO level (its time varies)
SUMMARY = re.compile(r"emkit: features: 3 utterances in [0-9.]+ s: 3 computed, 0 failed, with 1 "
                     r"process\n")


def without_summary(stderr: str, logged: int) -> str:
    """``stderr`` less the extraction's summary, which it holds ``logged`` times."""
    assert len(SUMMARY.findall(stderr)) == logged, stderr
    return SUMMARY.sub("", stderr)


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
    stderr = without_summary(stderr, logged)
    assert stderr.splitlines().count(INFO) == logged, stderr
    assert stderr.replace(INFO + "\n", "") == ""
    assert ark == features(tmp_path, audio, "plain")[0]


def test_kaldi_verbose_in_a_config_file(tmp_path, audio, logged_step):
    (tmp_path / "verbose.conf").write_text("--verbose=2\n--print-args=false\n")
    (tmp_path / "vad.conf").write_text("--vad-energy-threshold=5.5\n--verbose=1\n")
    _, stderr = features(tmp_path, audio, "a", "--config", tmp_path / "verbose.conf")
    # and no note about --dither: no compute-mfcc-feats option
    assert without_summary(stderr, 1) == INFO + "\n"
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


MULTI_CHANNEL = "emkit: warning: 1 of 4 utterances come from multi-channel audio"


@pytest.fixture()
def with_stereo(audio):
    """``audio`` and a two-channel file in it: emkit warns that its first channel is used."""
    import numpy as np
    from audio_files import speech_like, write

    samples = speech_like(seed=5)
    write(audio / "stereo.wav", np.stack([samples, 0.5 * samples], axis=1))
    return audio


@pytest.mark.filterwarnings("default::UserWarning")  # printed by the command as it runs
@pytest.mark.parametrize("args,warned", [([], True), (["--verbose=-1"], True),
                                         (["--verbose=-2"], False), (["--verbose", "-7"], False)])
def test_kaldi_verbose_minus_two_hides_warnings(tmp_path, with_stereo, args, warned):
    # before: the multi-channel warning was printed at every level (Kaldi hides its warnings
    # from --verbose=-2 down)
    ark, stderr = features(tmp_path, with_stereo, "out", *args)
    assert stderr.startswith(MULTI_CHANNEL) is warned, stderr
    assert stderr == "" or warned, stderr
    assert ark == features(tmp_path, with_stereo, "plain")[0]


@pytest.mark.filterwarnings("default::UserWarning")
def test_kaldi_verbose_minus_two_still_prints_errors(tmp_path, with_stereo, monkeypatch):
    from audio_files import speech_like, write

    clipped = speech_like(seed=7)
    clipped[3000:9000] = 1.0
    write(tmp_path / "clipped.wav", clipped)
    monkeypatch.chdir(tmp_path)
    one_line_error(run_features(with_stereo, "clipped.wav", "-o", "out.ark", "--verbose=-2"), 1,
                   "emkit features: error: 'clipped.wav': the audio is clipped")
    no_leftovers(tmp_path, "out.ark")
    # left out with --keep-going: its warnings, and the multi-channel one, are not printed
    kept = run_features(with_stereo, "clipped.wav", "-o", "kept.ark", "--keep-going",
                        "--verbose=-2")
    assert kept.exit_code == 0 and kept.stderr == "", kept.output
    # (the summary says one was left out, whose warnings --verbose=-2 hid)
    assert kept.stdout.startswith("mfcc: 4 of 5 utterances (1 left out), ")


def test_kaldi_verbose_minus_two_hides_the_commands_own_warning_and_note(tmp_path, audio):
    (tmp_path / "mfcc.conf").write_text("--num-ceps=13\n")
    out = tmp_path / "npy"
    out.mkdir()
    (out / "other.npy").write_bytes((tmp_path / "mfcc.conf").read_bytes())  # of another run
    for verbose, shown in (("-1", True), ("-2", False)):
        result = run_features(audio, "-o", out, "--config", tmp_path / "mfcc.conf",
                              f"--verbose={verbose}", "--no-progress")
        assert result.exit_code == 0, result.output
        lines = result.stderr.splitlines()
        assert [line.split(":")[1] for line in lines] == ([" warning", " note"] if shown else []), \
            result.stderr
