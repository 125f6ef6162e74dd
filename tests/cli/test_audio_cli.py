"""``emkit features`` through click's CliRunner: outputs, exit codes and one-line errors."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import FeatureConfig, KaldiOptions, extract_features  # noqa: E402
from emkit.cli import cli  # noqa: E402
from emkit.features import read_features  # noqa: E402
from audio_files import run_features, speech_like, write  # noqa: E402
from cli_support import no_leftovers, one_line_error


run = run_features


def test_npy_directory(tmp_path, audio):
    result = run(audio, "-o", tmp_path / "feats", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "mfcc: 3 utterances" in result.stdout and "x 39 features" in result.stdout
    for i in range(3):
        saved = np.load(tmp_path / "feats" / f"utt{i}.npy")
        assert np.array_equal(saved, extract_features(audio / f"utt{i}.wav"))


def test_ark_with_options(tmp_path, audio):
    result = run(audio / "utt1.wav", audio / "utt2.wav", "-o", tmp_path / "f.ark", "--type",
                 "fbank", "--num-mel-bins", "30", "--delta-order", "1", "--cmvn", "utterance",
                 "--norm-vars", "--no-vad", "-j", "2")
    assert result.exit_code == 0, result.output
    feats = read_features(tmp_path / "f.scp")
    assert list(feats) == ["utt1", "utt2"]
    config = FeatureConfig(kaldi=KaldiOptions(kind="fbank", num_mel_bins=30), delta_order=1,
                           cmvn="utterance", norm_vars=True, vad=False)
    expected = extract_features(audio / "utt2.wav", config)
    assert feats["utt2"].shape == expected.shape == (98, 60)
    assert np.array_equal(feats["utt2"], expected.astype(np.float64))


@pytest.mark.parametrize("args,fragment", [
    (["nothere.wav", "-o", "out"], "does not exist"),
    (["IN", "-o", "out", "--vad-proportion-threshold", "1.5"], "--vad-proportion-threshold"),
    (["IN", "-o", "out", "--cmvn", "global"], "--cmvn"),
    (["IN", "-o", "out", "--channel", "-2"], "--channel"),
    (["IN", "-o", "out", "--channel", str(10**30)],
     "--channel: channel must be -1 or None (Kaldi's default"),
    (["IN", "-o", "out", "--vad-frames-context", str(10**400)],
     "--vad-frames-context: vad_frames_context must be an integer from 0 to 2147483647"),
    (["IN", "-o", "out", "--cmn-window", str(2**31)],
     "--cmn-window: cmn_window must be an integer from 1 to 2147483647"),
    (["IN", "-o", "out", "--num-ceps", "30"], "num_ceps must be between 1 and num_mel_bins"),
    (["IN", "-o", "out", "--high-freq", "9000"], "high_freq"),
    (["IN", "-o", "out", "--jobs", "0"], "--jobs"),
    (["IN", "-o", "out", "--num-mel-bins", "300"], "num_mel_bins too large"),
    (["IN"], "Missing option '-o'"),
    (["IN", "-o", "out", "--frame-shift", "0.05"],
     "--frame-shift: frame_shift must be at least one sample"),
    (["IN", "-o", "out", "--frame-length", "0.01"], "--frame-length: frame_length must be"),
    (["IN", "-o", "out", "--frame-length", "16000"],
     "--frame-length: frame_length must be at most 1000 ms"),
])
def test_usage_errors_exit_2(tmp_path, audio, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = run(*[str(audio) if a == "IN" else a for a in args])
    one_line_error(result, 2, "usage error", fragment)
    no_leftovers(tmp_path, "out")


def test_bad_audio_exits_1_naming_the_file(tmp_path, audio):
    (audio / "utt1.wav").write_text("not audio")
    result = run(audio, "-o", tmp_path / "f.ark")
    one_line_error(result, 1, "emkit features: error:", "utt1.wav", "not a readable audio file")
    no_leftovers(tmp_path, "f.ark", "f.scp")
    # and it says what to do to get the others (before: only the first bad file was named, and
    # nothing told the user of --keep-going but --help)
    assert result.stderr.strip().endswith(
        "Nothing was written; --keep-going leaves out the utterances that cannot be used, each "
        "named in a warning, and writes the others")


def test_num_ceps_with_fbank_is_a_usage_error(tmp_path, audio):
    """(it was ignored without a word)"""
    one_line_error(run(audio, "-o", tmp_path / "f.ark", "--type", "fbank", "--num-ceps", "20"), 2,
                   "--num-ceps does not apply to --type fbank")


@pytest.mark.filterwarnings("default::UserWarning")  # printed by the command as it runs
def test_keep_going_writes_the_usable_utterances(tmp_path, audio):
    (audio / "utt1.wav").write_text("not audio")
    result = CliRunner().invoke(cli, ["features", str(audio), "-o", str(tmp_path / "f.ark"),
                                      "--keep-going", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "mfcc: 2 of 3 utterances (1 left out), " in result.stdout
    assert "utt1.wav': not a readable audio file" in result.stderr
    assert "1 of 3 utterances could not be used and were left out" in result.stderr
    for name in ("utt1.wav", "utt2.wav"):
        (audio / name).unlink()
    result = run(audio, "-o", tmp_path / "one.ark", "--no-progress")
    assert "mfcc: 1 utterance, " in result.stdout  # ('1 utterances')


@pytest.mark.filterwarnings("default::UserWarning")  # printed by the command as it runs
def test_keep_going_leaves_out_a_wav_scp_entry_whose_file_is_missing(tmp_path, audio):
    # before: --keep-going or not, the missing file stopped the run (exit 1, nothing written)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"a {audio / 'utt0.wav'}\ngone {tmp_path / 'gone.wav'}\n"
                                  f"c {audio / 'utt2.wav'}\n")
    result = CliRunner().invoke(cli, ["features", str(data), "-o", str(tmp_path / "f.ark"),
                                      "--keep-going", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "mfcc: 2 of 3 utterances (1 left out), " in result.stdout
    assert (f"wav.scp' line 2 (utterance 'gone'): no such audio file: '{tmp_path}/gone.wav'; "
            "left out") in result.stderr
    assert "1 of 3 utterances could not be used and were left out" in result.stderr
    written = read_features(str(tmp_path / "f.scp"))
    assert list(written) == ["a", "c"]
    np.testing.assert_array_equal(written["c"], extract_features(audio / "utt2.wav"))
    assert (tmp_path / "f.utt2num_frames").read_text().split()[::2] == ["a", "c"]
    # without it the run stops before any work, naming the line (as before)
    one_line_error(run(data, "-o", tmp_path / "g.ark"), 1, "emkit features: error:",
                   "wav.scp' line 2: no such audio file")
    no_leftovers(tmp_path, "g.ark", "g.scp")
    # none left: exit 1, nothing written
    (data / "wav.scp").write_text(f"gone {tmp_path / 'gone.wav'}\n")
    result = CliRunner().invoke(cli, ["features", str(data), "-o", str(tmp_path / "h.ark"),
                                      "--keep-going", "--no-progress"])
    assert result.exit_code == 1
    assert "none of the 1 utterances could be used" in result.stderr
    no_leftovers(tmp_path, "h.ark", "h.scp")


def test_wrong_rate_and_silence_exit_1(tmp_path, audio):
    write(audio / "utt1.wav", speech_like(rate=8000), rate=8000)
    one_line_error(run(audio, "-o", tmp_path / "out"), 1, "utt1.wav", "expected 16000 Hz")
    no_leftovers(tmp_path, "out")
    write(audio / "utt1.wav", np.zeros(16000))
    one_line_error(run(audio, "-o", tmp_path / "out"), 1, "utt1.wav", "digital silence")
    no_leftovers(tmp_path, "out")


def test_piped_wav_scp_exits_1(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 touch {tmp_path / 'pwned'} |\n")
    one_line_error(run(data, "-o", tmp_path / "out"), 1, "wav.scp' line 1", "piped command")
    assert not (tmp_path / "pwned").exists()
    no_leftovers(tmp_path, "out")


def test_output_over_an_input_is_refused(tmp_path, audio):
    # DATA/wav.ark writes DATA/wav.scp: the data directory's own list of recordings
    os.replace(write(tmp_path / "rec.wav", speech_like(seed=4)), audio / "rec.ark")  # audio
    (audio / "wav.scp").write_text("".join(f"u{i} utt{i}.wav\n" for i in range(3)) +
                                   "u3 rec.ark\n")
    before = {p.name: p.read_bytes() for p in audio.iterdir()}
    for output, fragment in [(audio / "wav.ark", "its .scp"), (audio / "wav.ARK", "its .scp"),
                             (audio / "rec.ark", "-o/--output '")]:
        result = run(audio, "-o", output)
        one_line_error(result, 2, "usage error", fragment, "refusing to overwrite an input")
    # a directory of <id>.npy over an audio input of that name
    (tmp_path / "npy").mkdir()
    os.replace(write(tmp_path / "a.wav", speech_like(seed=0)), tmp_path / "npy" / "a.npy")
    before_npy = (tmp_path / "npy" / "a.npy").read_bytes()
    result = run(tmp_path / "npy" / "a.npy", "-o", tmp_path / "npy")
    one_line_error(result, 2, "usage error", "(a.npy)", "refusing to overwrite an input")
    assert (tmp_path / "npy" / "a.npy").read_bytes() == before_npy
    assert {p.name: p.read_bytes() for p in audio.iterdir()} == before


@pytest.mark.parametrize("output", ["nodir/out", "nodir/out.ark"])
def test_missing_output_parent_exits_1_like_other_outputs(tmp_path, audio, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    one_line_error(run(audio, "-o", output), 1, "emkit features: error:", "cannot write",
                   "'nodir' does not exist")
    assert not (tmp_path / "nodir").exists()


def test_read_only_npy_output_is_refused_before_anything_is_written(tmp_path, audio):
    out = tmp_path / "feats"
    assert run(audio, "-o", out, "--no-progress").exit_code == 0
    (out / "utt1.npy").chmod(0o444)
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in out.iterdir()}
    result = run(audio, "-o", out, "--cmvn", "none")
    one_line_error(result, 1, "emkit features: error:", "utt1.npy", "read-only (mode 0444)")
    assert {p.name: (p.read_bytes(), p.stat().st_mode) for p in out.iterdir()} == before


def test_stale_npy_files_in_the_output_directory_are_reported(tmp_path, audio):
    out = tmp_path / "feats"
    assert run(audio, "-o", out, "--no-progress").exit_code == 0
    assert "warning" not in run(audio, "-o", out, "--no-progress").stderr  # same utterances
    (audio / "utt2.wav").unlink()
    result = run(audio, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "warning" in err and str(out) in err and "1 other .npy" in err
    assert "its utt2num_frames lists this run's utterances only" in err
    assert sorted(p.name for p in out.iterdir()) == ["utt0.npy", "utt1.npy", "utt2.npy",
                                                     "utt2num_frames"]
    assert (out / "utt2num_frames").read_text() == "utt0 62\nutt1 62\n"


def test_white_space_in_a_file_name_is_refused_before_computing(tmp_path, audio):
    (audio / "zz my take.wav").write_text("not audio: never decoded")
    for output in (tmp_path / "out", tmp_path / "out.ark"):
        one_line_error(run(audio, "-o", output), 1, "emkit features: error:", "zz my take.wav",
                       "Kaldi ids cannot contain")
    no_leftovers(tmp_path, "out", "out.ark", "out.scp")


def test_a_refused_file_name_is_shown_whole_under_a_long_folder(tmp_path):
    deep = tmp_path.joinpath(*["a_long_folder_name_" * 3] * 3)  # ~180 characters
    deep.mkdir(parents=True)
    (deep / "zz my take.wav").write_text("not audio: never decoded")
    one_line_error(run(deep, "-o", tmp_path / "out.ark"), 1, "'...", "zz my take.wav'",
                   "Kaldi ids cannot contain")


@pytest.mark.filterwarnings("default::UserWarning")
def test_a_truncated_wav_is_a_one_line_warning(tmp_path, audio):
    whole = (audio / "utt1.wav").read_bytes()
    (audio / "utt1.wav").write_bytes(whole[:len(whole) // 2])
    result = run(audio, "-o", tmp_path / "f.ark", "-j", "2", "--no-progress")
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emkit: warning: '") and \
        "utt1.wav': truncated WAV: its header declares 16000 samples, the file holds" in lines[0]


@pytest.mark.parametrize("name", ["feats.h5", "feats.NPZ", "f.hdf5", "x.npy", "x.scp"])
def test_an_output_named_like_another_feature_file_is_refused(tmp_path, audio, name):
    result = run(audio, "-o", tmp_path / name, "--no-progress")
    one_line_error(result, 2, "usage error", "-o/--output", f"not as a {name[name.index('.'):]}"
                   .lower(), "Kaldi archive (a PATH.ark", "directory of <utterance-id>.npy")
    no_leftovers(tmp_path, name)
    assert "feature-file suffix" in run("--help").output


def test_an_existing_directory_with_a_dot_is_still_an_npy_directory(tmp_path, audio):
    (tmp_path / "feats.h5").mkdir()
    assert run(audio, "-o", tmp_path / "feats.h5", "--no-progress").exit_code == 0
    assert sorted(os.listdir(tmp_path / "feats.h5")) == ["utt0.npy", "utt1.npy", "utt2.npy",
                                                         "utt2num_frames"]
    result = run(audio, "-o", tmp_path / "feats.v2", "--no-progress")
    assert result.exit_code == 0 and (tmp_path / "feats.v2" / "utt0.npy").is_file()


# every [features] key of a recipe is an option of emkit features, with Kaldi's name
NEW_VALUES = {  # option: (value given, field of FeatureConfig or of its KaldiOptions, expected)
    "--preemphasis-coefficient": ("0.5", "preemphasis_coefficient", 0.5),
    "--no-remove-dc-offset": (None, "remove_dc_offset", False),
    "--window-type": ("hamming", "window_type", "hamming"),
    "--no-round-to-power-of-two": (None, "round_to_power_of_two", False),
    "--no-raw-energy": (None, "raw_energy", False),
    "--energy-floor": ("1.0", "energy_floor", 1.0),
    "--cepstral-lifter": ("0", "cepstral_lifter", 0.0),
    "--max-utterance-bytes": ("4000000", "max_utterance_bytes", 4_000_000),
    "--dither-seed": ("7", "dither_seed", 7),
}


def captured_config(tmp_path, audio, monkeypatch, *args):
    import emkit.audio

    seen = []

    def compute(inputs, output, config, **kwargs):
        seen.append(config)
        return {"utt0": (10, 39)}

    monkeypatch.setattr(emkit.audio, "compute_features", compute)
    result = run(audio / "utt0.wav", "-o", tmp_path / "f.ark", *args)
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize("option", list(NEW_VALUES))
def test_each_kaldi_option_reaches_the_feature_config(tmp_path, audio, monkeypatch, option):
    value, name, expected = NEW_VALUES[option]
    config = captured_config(tmp_path, audio, monkeypatch, option, *([value] if value else []))
    default = captured_config(tmp_path, audio, monkeypatch)
    where, default_where = (config.kaldi, default.kaldi) if hasattr(config.kaldi, name) \
        else (config, default)
    assert getattr(where, name) == expected != getattr(default_where, name)
    # the command's defaults are the library's (those of a recipe without the key)
    assert default == FeatureConfig()


def test_every_recipe_features_key_is_an_option():
    import dataclasses

    from emkit.audio._kaldi_features import WINDOWS
    from emkit.cli._features import MAX_UTTERANCE_BYTES, WINDOWS as CLI_WINDOWS
    from emkit.io.untrusted import MAX_UTTERANCE_BYTES as LIBRARY_MAX

    keys = {f.name for f in dataclasses.fields(KaldiOptions)}
    keys |= {f.name for f in dataclasses.fields(FeatureConfig)} - {"kaldi"}
    command = cli.get_command(None, "features")
    flags = {p.name: p.opts for p in command.params}
    assert flags["kind"] == ["--type"] and flags["sample_rate"] == ["--sample-rate"]
    for key in keys - {"kind", "sample_frequency"}:  # Kaldi's names (as docs/recipes.md says)
        assert f"--{key.replace('_', '-')}" in flags.get(key, []), key
    assert CLI_WINDOWS == WINDOWS and MAX_UTTERANCE_BYTES == LIBRARY_MAX
    help_text = " ".join(run("--help").output.split())
    for option in ("--preemphasis-coefficient", "--window-type", "--max-utterance-bytes"):
        assert option in help_text
    assert "[default: povey]" in help_text and "[default: 0.97; 0<=x<=1]" in help_text


def test_kaldi_option_values_are_checked(tmp_path, audio, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(run(audio, "-o", "out", "--window-type", "kaiser"), 2, "--window-type")
    one_line_error(run(audio, "-o", "out", "--preemphasis-coefficient", "1.5"), 2,
                   "--preemphasis-coefficient")
    one_line_error(run(audio, "-o", "out", "--max-utterance-bytes", "4"), 2,
                   "--max-utterance-bytes")
    one_line_error(run(audio, "-o", "out", "--type", "fbank", "--cepstral-lifter", "10"), 2,
                   "--cepstral-lifter does not apply to --type fbank")
    no_leftovers(tmp_path, "out")


@pytest.mark.parametrize("option", ["--dither", "--preemphasis-coefficient", "--energy-floor",
                                    "--cepstral-lifter", "--vad-energy-threshold",
                                    "--vad-energy-mean-scale", "--max-clipped"])
def test_a_nan_option_is_a_usage_error_naming_it(tmp_path, audio, monkeypatch, option):
    # before: click's ranges let NaN through: "error: RuntimeError: mel energy is nan" (dither),
    # NaN features (lifter), no floor (energy floor), every utterance silent (VAD threshold)
    monkeypatch.chdir(tmp_path)
    one_line_error(run(audio, "-o", "out", option, "nan"), 2,
                   f"Invalid value for '{option}': must be a finite number; got nan")
    no_leftovers(tmp_path, "out")


def test_a_smaller_max_utterance_bytes_refuses_a_longer_file(tmp_path, audio):
    # each file is 16000 samples: 128000 bytes as float64
    result = run(audio / "utt0.wav", "-o", tmp_path / "f.ark", "--max-utterance-bytes", "100000")
    one_line_error(result, 1, "utt0.wav", "exceeds max_utterance_bytes=100000")
    assert run(audio / "utt0.wav", "-o", tmp_path / "f.ark", "--max-utterance-bytes",
               "128000").exit_code == 0


def test_little_audio_is_computed_in_this_process_whatever_jobs(tmp_path, audio, monkeypatch):
    # before: -j 2 (the default on 2 CPUs) started loky's workers for 3 s of audio: slower than
    # -j 1 (measured 2.1 s and 0.6 s for 30 one-second files)
    import joblib

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a process pool was started")

    monkeypatch.setattr(joblib, "Parallel", NoPool)
    assert run(audio, "-o", tmp_path / "two.ark", "-j", "2", "--no-progress").exit_code == 0
    monkeypatch.undo()
    # one process per 1 s of audio (each file holds 1 s): 2 processes, the same bytes as -j 1
    import emkit.audio

    monkeypatch.setattr(emkit.audio, "SECONDS_PER_PROCESS", 1.0)
    assert emkit.audio.processes_for(emkit.audio.find_utterances([audio]), 2, 1.0) == 2
    assert run(audio, "-o", tmp_path / "pool.ark", "-j", "2", "--no-progress").exit_code == 0
    assert run(audio, "-o", tmp_path / "one.ark", "-j", "1", "--no-progress").exit_code == 0
    assert (tmp_path / "pool.ark").read_bytes() == (tmp_path / "one.ark").read_bytes() \
        == (tmp_path / "two.ark").read_bytes()


def test_dither_gives_the_same_archive_every_run(tmp_path, audio):
    # before: kaldi-native-fbank seeded its dither at random, two runs gave other archives
    for name in ("a", "b"):
        result = run(audio, "--dither", "1", "-o", tmp_path / f"{name}.ark", "--no-progress")
        assert result.exit_code == 0, result.output
    dithered = (tmp_path / "a.ark").read_bytes()
    assert (tmp_path / "b.ark").read_bytes() == dithered
    assert run(audio, "-o", tmp_path / "plain.ark", "--no-progress").exit_code == 0
    assert (tmp_path / "plain.ark").read_bytes() != dithered


def test_dither_seed_gives_other_noise_the_same_every_run(tmp_path, audio):
    def archive(name, *args):
        result = run(audio, "--dither", "1", *args, "-o", tmp_path / f"{name}.ark",
                     "--no-progress", "-j", "1")
        assert result.exit_code == 0, result.output
        return (tmp_path / f"{name}.ark").read_bytes()

    default = archive("default")
    assert archive("zero", "--dither-seed", "0") == default  # 0: the noise of before the option
    seeded = archive("seven", "--dither-seed", "7")
    assert seeded != default and archive("seven-again", "--dither-seed", "7") == seeded
    assert archive("eight", "--dither-seed", "8") not in (default, seeded)


@pytest.mark.parametrize("value", ["-1", "18446744073709551616", "1.5", "x"])
def test_a_bad_dither_seed_is_a_usage_error_naming_it(tmp_path, audio, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    one_line_error(run(audio, "-o", "out", "--dither", "1", "--dither-seed", value), 2,
                   "Invalid value for '--dither-seed'", value)
    no_leftovers(tmp_path, "out")
