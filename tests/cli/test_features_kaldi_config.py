"""``emkit features --config FILE``: Kaldi options files (conf/mfcc.conf, conf/vad.conf...)."""

import os

import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.features import read_features  # noqa: E402
from audio_files import run_features  # noqa: E402
from cli_support import no_leftovers, one_line_error  # noqa: E402

# as the conf/ files of Kaldi's recipes (egs/voxceleb/v2, egs/sre16/v2, egs/wsj/s5)
MFCC_CONF = """\
--sample-frequency=16000
--frame-length=25 # the default is 25
--low-freq=20 # the default.
--high-freq=-400 # an offset from the Nyquist frequency
--num-mel-bins=30
--num-ceps=20
--snip-edges=false
--use_energy=FALSE   # underscores and capitals, as Kaldi accepts them
--allow-downsample=false
"""
MFCC_FLAGS = ["--sample-rate", "16000", "--frame-length", "25", "--low-freq", "20",
              "--high-freq", "-400", "--num-mel-bins", "30", "--num-ceps", "20",
              "--no-snip-edges", "--no-use-energy"]
FBANK_CONF = """\
# fbank for a speaker recipe
--num-mel-bins=40
--dither=0.0
--window-type=hamming
--energy-floor=1.0
--use-log-fbank=true
--use-power
"""
FBANK_FLAGS = ["--num-mel-bins", "40", "--dither", "0", "--window-type", "hamming",
               "--energy-floor", "1"]
VAD_CONF = """\
--vad-energy-threshold=5.5
--vad-energy-mean-scale=0.5
--vad-proportion-threshold=0.12
--vad-frames-context=2
"""
VAD_FLAGS = ["--vad-energy-threshold", "5.5", "--vad-proportion-threshold", "0.12",
             "--vad-frames-context", "2"]


run = run_features


def conf(tmp_path, text, name="my.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def compare(tmp_path, audio, config_args, flags):
    """The outputs of the same run with a config file and with the equivalent flags."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run(audio, *config_args, "-o", tmp_path / "a" / "feats.ark", "--no-progress")
    assert first.exit_code == 0, first.output
    second = run(audio, *flags, "-o", tmp_path / "b" / "feats.ark", "--no-progress")
    assert second.exit_code == 0, second.output
    assert first.stdout.replace(str(tmp_path / "a"), "") == \
        second.stdout.replace(str(tmp_path / "b"), "")
    return (tmp_path / "a" / "feats.ark").read_bytes(), (tmp_path / "b" / "feats.ark").read_bytes()


@pytest.mark.parametrize("kind,text,flags,dim", [
    ("mfcc", MFCC_CONF, MFCC_FLAGS, 60),
    ("fbank", FBANK_CONF, FBANK_FLAGS, 120),
])
def test_a_kaldi_conf_gives_the_features_of_the_same_flags(tmp_path, audio, kind, text, flags,
                                                          dim):
    with_file, with_flags = compare(tmp_path, audio, ["--type", kind, "--config",
                                                      conf(tmp_path, text)],
                                    ["--type", kind, *flags])
    assert with_file == with_flags
    default = run(audio, "--type", kind, "-o", tmp_path / "default.ark")
    assert (tmp_path / "default.ark").read_bytes() != with_file  # the file did change something
    assert read_features(tmp_path / "a" / "feats.scp")["utt0"].shape[1] == dim, default.output


def test_several_files_in_order_then_the_command_line(tmp_path, audio):
    mfcc = conf(tmp_path, MFCC_CONF, "mfcc.conf")
    vad = conf(tmp_path, VAD_CONF, "vad.conf")
    later = conf(tmp_path, "--num-ceps=13\n--num-ceps=15 # the last line wins\n", "later.conf")
    with_file, with_flags = compare(
        tmp_path, audio,
        [f"--config={mfcc}", "--config", vad, "--config", later, "--vad-frames-context", "1",
         "--snip-edges"],  # the command line overrides every file, wherever it is given
        [*MFCC_FLAGS, *VAD_FLAGS, "--num-ceps", "15", "--vad-frames-context", "1",
         "--snip-edges"])
    assert with_file == with_flags
    assert read_features(tmp_path / "a" / "feats.scp")["utt1"].shape[1] == 45


@pytest.mark.parametrize("text,line,fragments", [
    ("--num-mel-bins=30\n--htk-compat=true\n", 2, ["--htk-compat='true' is not supported",
                                                   "--htk-compat=false"]),
    ("\n# comment\n--frobnicate=3\n", 3, ["unknown option '--frobnicate'"]),
    ("--sample-rate=8000\n", 1, ["'--sample-rate'", "not of Kaldi's programs"]),
    ("--vad=false\n", 1, ["'--vad'", "not of Kaldi's programs"]),
    ("--dither-seed=3\n", 1, ["'--dither-seed'", "not of Kaldi's programs"]),
    ("--config=other.conf\n", 1, ["--config in an options file"]),
    ("--num-ceps=nan\n", 1, ["--num-ceps expects an integer; got 'nan'"]),
    ("--dither=inf\n", 1, ["--dither expects a decimal number; got 'inf'"]),
    ("--snip-edges=maybe\n", 1, ["--snip-edges expects true or false; got 'maybe'"]),
    ("--snip-edges=\n", 1, ["--snip-edges expects true or false; got ''"]),
    ("--window-type\n", 1, ["--window-type needs a value"]),
    ("--window-type=kaiser\n", 1, ["--window-type: 'kaiser' is not one of"]),
    ("--vad-proportion-threshold=1.5\n", 1, ["--vad-proportion-threshold: 1.5 is not in"]),
    ("--channel=-2\n", 1, ["--channel: must be -1 (Kaldi's default", "or a channel number from 0",
                           "got '-2'"]),
    ("--sample-frequency=16000.5\n", 1, ["whole number of Hz"]),
    ("--use-power=true\n", 1, ["--use-power is an option of compute-fbank-feats"]),
    ("sample-frequency=8000\n", 1, ["not a line of a Kaldi options file",
                                    "'sample-frequency=8000'"]),
    ("--=3\n", 1, ["'--' is not an option name"]),
    ("--num-ceps = 20\n", 1, ["'--num-ceps ' is not an option name"]),
    ("--\x1b[2Jx=1\n", 1, ["'--\\x1b[2jx' is not an option name"]),
    ("--frobnicate=" + "x" * 3000 + "\n", 1, ["unknown option '--frobnicate'"]),
    ("--vtln-warp=" + "9" * 3000 + "\n", 1, ["--vtln-warp='999999", "...'"]),
])
def test_a_bad_line_is_an_error_naming_file_line_and_option(tmp_path, audio, monkeypatch, text,
                                                           line, fragments):
    monkeypatch.chdir(tmp_path)
    result = run(audio, "--config", conf(tmp_path, text), "-o", "out")
    one_line_error(result, 2, f"--config '{tmp_path / 'my.conf'}' line {line}: ", *fragments)
    assert len(result.stderr) < 400  # no line of the file echoed whole
    assert "\x1b" not in result.stderr
    no_leftovers(tmp_path, "out")


def test_an_mfcc_option_in_a_file_read_for_fbank_is_an_error(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(audio, "--type", "fbank", "--config", conf(tmp_path, MFCC_CONF), "-o", "out")
    one_line_error(result, 2, "line 6: --num-ceps is an option of compute-mfcc-feats")


def test_options_that_conflict_name_the_file(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(audio, "--config", conf(tmp_path, "--num-ceps=40\n"), "-o", "out")
    one_line_error(result, 2, f"--num-ceps (from --config '{tmp_path / 'my.conf'}' line 1)",
                   "num_ceps must be between 1 and num_mel_bins (23); got 40")


@pytest.mark.parametrize("text,args,fragments", [
    ("--high-freq=9000\n", [], ["high_freq 9000.0", "(--high-freq from --config 'my.conf' line 1)"]),
    ("--sample-frequency=8000\n# Nyquist: 4 kHz\n--low-freq=20\n", ["--high-freq", "7600"],
     ["<= 4000 (Nyquist", "(--sample-frequency from --config 'my.conf' line 1; --low-freq from "
      "--config 'my.conf' line 3)"]),
    ("--num-mel-bins=300\n", [], ["num_mel_bins too large",
                                  "(--num-mel-bins from --config 'my.conf' line 1)"]),
    ("--sample-frequency=1e12\n", [], ["25000000000 samples; at most 131072",
                                      "(--sample-frequency from --config 'my.conf' line 1)"]),
    # before: neither named the file's line that made the (default) other option wrong
    ("--num-mel-bins=10\n", [], ["Invalid value for --num-ceps: num_ceps must be between 1 and "
                                 "num_mel_bins (10); got 13 (--num-mel-bins from --config "
                                 "'my.conf' line 1)"]),
    ("--sample-frequency=100\n", [], ["num_mel_bins too large", "sample_frequency 100 Hz",
                                     "(--sample-frequency from --config 'my.conf' line 1)"]),
])
def test_options_that_conflict_with_others_name_the_file_lines(tmp_path, audio, monkeypatch,
                                                                text, args, fragments):
    monkeypatch.chdir(tmp_path)
    conf(tmp_path, text)
    one_line_error(run(audio, "--config", "my.conf", *args, "-o", "out"), 2, *fragments)


def test_a_file_that_is_not_a_small_regular_text_file_is_refused(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    big = conf(tmp_path, "# padding\n" * 7000)
    one_line_error(run(audio, "--config", big, "-o", "out"), 2, "70000 bytes",
                   "at most 65536")
    (tmp_path / "bin.conf").write_bytes(b"--num-ceps=\xff\xfe\n")
    one_line_error(run(audio, "--config", tmp_path / "bin.conf", "-o", "out"), 2,
                   "line 1: not UTF-8 text")
    os.mkfifo(tmp_path / "pipe.conf")  # would block a reader that opens it
    one_line_error(run(audio, "--config", tmp_path / "pipe.conf", "-o", "out"), 2,
                   "not a regular file")
    no_leftovers(tmp_path, "out")


@pytest.mark.parametrize("kind,files,args,noted", [
    ("mfcc", ["mfcc.conf"], [], ["mfcc.conf"]),
    ("mfcc", ["mfcc.conf", "vad.conf", "other.conf"], [], ["mfcc.conf", "other.conf"]),
    ("mfcc", ["vad.conf"], [], []),  # compute-vad has no --dither
    ("mfcc", ["mfcc.conf", "dither.conf"], [], []),
    ("mfcc", ["mfcc.conf"], ["--dither", "0"], []),
    ("mfcc", ["mfcc.conf"], ["--dither=1"], []),
    ("fbank", ["fbank.conf"], [], []),  # it has --dither=0.0
    ("fbank", ["allow.conf"], [], ["allow.conf"]),  # an option emkit has no equivalent of
])
def test_a_kaldi_feature_file_without_dither_is_noted_once(tmp_path, audio, monkeypatch, kind,
                                                          files, args, noted):
    # before: a conf/mfcc.conf written for Kaldi (whose default is --dither=1) silently gave
    # undithered features
    monkeypatch.chdir(tmp_path)
    for name, text in (("mfcc.conf", MFCC_CONF), ("vad.conf", VAD_CONF),
                       ("fbank.conf", FBANK_CONF), ("dither.conf", "--dither=0.5\n"),
                       ("other.conf", "--num-ceps=15\n"), ("allow.conf", "--htk-compat=f\n")):
        conf(tmp_path, text, name)
    result = run(audio, "--type", kind, *[f"--config={name}" for name in files], *args,
                 "-o", "out.ark", "--no-progress")
    assert result.exit_code == 0, result.output
    if not noted:
        assert result.stderr == ""
    else:
        assert result.stderr == (
            f"emkit features: note: no --dither in --config "
            f"{' or '.join(repr(name) for name in noted)}: emkit uses 0 (no noise: the "
            f"features of the audio alone), Kaldi's compute-{kind}-feats 1 (give --dither 1 for "
            "Kaldi's)\n")


def test_the_dither_note_is_not_added_to_an_error(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conf(tmp_path, MFCC_CONF, "mfcc.conf")
    (audio / "utt1.wav").write_text("not audio")
    one_line_error(run(audio, "--config", "mfcc.conf", "-o", "out.ark"), 1, "utt1.wav")
