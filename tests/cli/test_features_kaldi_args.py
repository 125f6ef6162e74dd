"""``emkit features`` takes Kaldi's spellings of its options on the command line, as
``compute-mfcc-feats`` does (``--sample-frequency=8000``, ``--snip-edges=false``...)."""

import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from audio_files import run_features, speech_like, write  # noqa: E402
from cli_support import no_leftovers, one_line_error  # noqa: E402

run = run_features


def features(tmp_path, audio, name, *args):
    result = run(audio, *args, "-o", tmp_path / f"{name}.ark", "--no-progress")
    assert result.exit_code == 0, result.output
    return (tmp_path / f"{name}.ark").read_bytes()


def test_kaldi_spellings_give_the_features_of_emkits(tmp_path, audio):
    # before: "No such option '--sample-frequency'", "Option '--snip-edges' does not take a value"
    kaldi = features(tmp_path, audio, "kaldi", "--sample-frequency=16000.0", "--snip-edges=false",
                     "--use_energy=FALSE", "--Num_Mel_Bins", "30", "--num_ceps=20",
                     "--high-freq=-400", "--raw-energy=0", "--htk-compat=false", "--vtln-warp",
                     "1.0", "--channel=-1", "--center=t")
    emkit = features(tmp_path, audio, "emkit", "--sample-rate", "16000", "--no-snip-edges",
                     "--no-use-energy", "--num-mel-bins", "30", "--num-ceps", "20",
                     "--high-freq", "-400", "--no-raw-energy", "--center")
    assert kaldi == emkit
    assert features(tmp_path, audio, "default") != kaldi  # the options did change something


def test_sample_frequency_is_the_sample_rate(tmp_path, audio):
    one_line_error(run(audio, "--sample-frequency", "8000", "-o", tmp_path / "f.ark"), 1,
                   "utt0.wav", "expected 8000 Hz")
    (tmp_path / "narrow").mkdir()
    write(tmp_path / "narrow" / "a.wav", speech_like(rate=8000), rate=8000)
    at_8k = features(tmp_path, tmp_path / "narrow", "k", "--sample-frequency", "8000")
    assert features(tmp_path, tmp_path / "narrow", "e", "--sample-rate=8000") == at_8k
    # the command line overrides a --config file, under either name
    (tmp_path / "wide.conf").write_text("--sample-frequency=16000\n")
    assert features(tmp_path, tmp_path / "narrow", "c", "--config", tmp_path / "wide.conf",
                    "--sample-frequency=8000") == at_8k


@pytest.mark.parametrize("args", [["--sample-rate", "8000", "--sample-frequency", "16000"],
                                  ["--sample-frequency=16000", "--sample-rate=8000"]])
def test_both_names_with_different_rates_are_a_usage_error(tmp_path, audio, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    one_line_error(run(audio, *args, "-o", "out"), 2, "emkit features: usage error:",
                   "--sample-rate 8000 and --sample-frequency 16000", "differ")
    no_leftovers(tmp_path, "out")
    same = features(tmp_path, audio, "same", "--sample-rate", "16000", "--sample-frequency",
                    "16000.0")
    assert same == features(tmp_path, audio, "default")


def test_emkits_own_flags_take_a_value_as_kaldis_do(tmp_path, audio):
    # before: "Option '--vad' does not take a value", while --snip-edges=false worked
    valued = features(tmp_path, audio, "valued", "--vad=FALSE", "--norm-vars=t", "--keep-going=1",
                      "--write-utt2num-frames=f", "--progress=false")
    plain = features(tmp_path, audio, "plain", "--no-vad", "--norm-vars", "--keep-going",
                     "--no-write-utt2num-frames")
    assert valued == plain
    assert not (tmp_path / "valued.utt2num_frames").exists()
    default = features(tmp_path, audio, "default", "--vad=true", "--write-utt2num-frames=T")
    assert default != valued and (tmp_path / "default.utt2num_frames").exists()


@pytest.mark.parametrize("args,fragments", [
    (["--snip-edges=maybe"], ["'--snip-edges'", "expects true or false", "got 'maybe'"]),
    (["--snip_edges=yes"], ["'--snip-edges': expects true or false (true, t, 1 or false, f, 0; "
                            "any case); got 'yes'"]),
    (["--vad=maybe"], ["'--vad': expects true or false", "got 'maybe'"]),
    (["--no-vad=true"], ["Option '--no-vad' takes no value ('--no-vad=true' is ambiguous): "
                         "write --no-vad, or --vad=true or --vad=false"]),
    (["--sample-frequency=8000.5"], ["'--sample-frequency'", "whole number of Hz",
                                     "got 8000.5"]),
    (["--sample-frequency=nan"], ["'--sample-frequency'", "finite"]),
    (["--htk-compat=true"], ["the command line: --htk-compat='true' is not supported",
                             "--htk-compat=false"]),
    (["--use-power=true"], ["--use-power is an option of compute-fbank-feats"]),
    (["--channel", "-2"], ["'--channel'", "must be -1 (Kaldi's default", "got '-2'"]),
])
def test_bad_kaldi_spellings_are_usage_errors_naming_the_option(tmp_path, audio, monkeypatch,
                                                                args, fragments):
    monkeypatch.chdir(tmp_path)
    one_line_error(run(audio, *args, "-o", "out"), 2, "emkit features: usage error:",
                   *fragments)
    no_leftovers(tmp_path, "out")


def test_only_options_are_rewritten_not_their_values_or_arguments(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "--snip_edges=false").mkdir()  # directories named like Kaldi options
    audio.rename(tmp_path / "--use_energy=false")
    result = run("-o", "--snip_edges=false", "--no-progress", "--", "--use_energy=false")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "--snip_edges=false").iterdir()) == [
        "utt0.npy", "utt1.npy", "utt2.npy", "utt2num_frames"]
    for name, flags in (("plain", []), ("no-energy", ["--no-use-energy"])):
        assert run("-o", name, "--no-progress", *flags, "--", "--use_energy=false").exit_code == 0
    first = (tmp_path / "--snip_edges=false" / "utt0.npy").read_bytes()
    assert first == (tmp_path / "plain" / "utt0.npy").read_bytes()  # no option was read
    assert first != (tmp_path / "no-energy" / "utt0.npy").read_bytes()


@pytest.mark.filterwarnings("default::UserWarning")  # printed by the command as it runs
def test_channel_minus_one_on_the_command_line_overrides_a_files_channel(tmp_path):
    import numpy as np

    stereo = np.stack([speech_like(seed=1), speech_like(seed=2, f0=220)], axis=1)
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "call.wav", stereo)
    (tmp_path / "right.conf").write_text("--channel=1\n")
    right = features(tmp_path, tmp_path / "in", "right", "--config", tmp_path / "right.conf")
    first = features(tmp_path, tmp_path / "in", "first", "--channel", "0")
    assert right != first
    result = run(tmp_path / "in", "--config", tmp_path / "right.conf", "--channel=-1", "-o",
                 tmp_path / "kaldi.ark", "--no-progress")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kaldi.ark").read_bytes() == first
    assert "first channel" in result.stderr  # Kaldi's -1: mono expected, a warning


@pytest.mark.parametrize("option, fragments", [
    ("--num-ceps", ["Invalid value for --num-ceps: num_ceps must be between 1 and num_mel_bins "
                    "(23); got 99999999999999999999... (an integer of 400 digits)"]),
    ("--num_mel_bins", ["Invalid value for --num-mel-bins: num_mel_bins must be between 3 and "
                        "131072 (the FFT size of the longest frame accepted); got 9999"]),
    ("--delta-order", ["--delta-order: delta_order must be at most 500", "(an integer of 400 "
                                                                         "digits)"]),
    ("--dither-seed", ["Invalid value for '--dither-seed': 99999999999999999999... (an integer "
                       "of 400 digits) is not in the range 0<=x<=18446744073709551615."]),
    ("--sample-rate", ["Invalid value for '--sample-rate': must be a number within float64's "
                       "range; got 99999999999999999999... (an integer of 400 digits)"]),
])
def test_a_huge_integer_is_a_short_usage_error_naming_the_option(tmp_path, audio, option,
                                                                 fragments):
    # before: a message of 540 to 680 characters, mostly digits, cut at 300 in a recipe; for
    # --num-mel-bins kaldi-native-fbank's TypeError, for --sample-rate "int too large to convert
    # to float", neither naming the option
    result = run(audio, f"{option}={'9' * 400}", "-o", tmp_path / "f.ark")
    one_line_error(result, 2, "emkit features: usage error:", *fragments)
    assert len(result.output) < 300 and "9" * 21 not in result.output, result.output
    no_leftovers(tmp_path, "f.ark")


def test_the_largest_windows_are_the_whole_utterance(tmp_path, audio):
    # before: "emkit features: error: Python int too large to convert to C long"; 400 nines
    # are now refused (test_audio_cli), Kaldi's largest int32 is the whole utterance
    huge = features(tmp_path, audio, "huge", f"--vad-frames-context={2**31 - 1}",
                    f"--cmn-window={2**31 - 1}")
    assert huge == features(tmp_path, audio, "whole", "--vad-frames-context=100000",
                            "--cmn-window=100000")
