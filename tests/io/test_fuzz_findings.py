"""Regressions found by fuzzing the readers of recipes, options files, lists and audio: each test
is the smallest input that showed the fault."""

import pytest

from emkit.recipe import RecipeError, load_recipe

RECIPE = """\
[features]
{line}

[data.train]
audio = "audio"

[ubm]
[systems]
[conditions]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "audio").mkdir()
    return tmp_path


@pytest.mark.parametrize("line, expected", [
    ("delta_order = 2147483648", r"features.delta_order: must be at most 500 with delta_window 2"),
    ("delta_window = 2147483648", r"features.delta_window: must be at most 1000 \(frames"),
    ("delta_order = 1001\ndelta_window = 1", r"delta_order: must be at most 1000 with delta_win"),
])
def test_a_huge_delta_order_or_window_in_a_recipe_is_refused_not_a_hang(project, no_hang, line,
                                                                       expected):
    # delta_order = 2147483648 convolved the regression window 2**31 times (hours, and memory
    # growing with the square of the order); a window of 2**31 allocated 32 GiB of taps
    (project / "recipe.toml").write_text(RECIPE.format(line=line))
    with pytest.raises(RecipeError, match=expected):
        load_recipe(project / "recipe.toml")


def test_a_number_of_thousands_of_digits_in_a_recipe_is_a_recipe_error(project):
    # tomllib's int() met Python's 4300-digit limit: a bare ValueError ("Exceeds the limit (4300
    # digits) for integer string conversion...") naming neither the recipe nor the problem
    (project / "recipe.toml").write_text(RECIPE.format(line="num_ceps = " + "1" * 4400))
    with pytest.raises(RecipeError, match=r"recipe.toml: not a usable TOML file \(a number too "
                                          r"long to read\)"):
        load_recipe(project / "recipe.toml")


LONG_ID = "r" * 5000


SHORT_ID = "'" + "r" * 77 + "...'"  # an id: its start


@pytest.mark.parametrize("wav_scp, utt2spk, shortened", [
    (f"{LONG_ID} a.wav\n{LONG_ID} a.wav\n", None, SHORT_ID),  # listed twice
    (f"{LONG_ID} sox a.wav -t wav - |\n", None, SHORT_ID),  # a piped command
    (f"r1 {LONG_ID}.wav\n", None, "'..." + "r" * 76 + ".wav'"),  # no such file: a path's end
    (f"r1 {LONG_ID}:12\n", None, "'..." + "r" * 77 + ":12'"),  # an archive offset
    (f"{LONG_ID} a.wav\n", "other s1\n", SHORT_ID),  # no speaker in utt2spk
])
def test_data_dir_errors_shorten_the_ids_and_paths_they_quote(tmp_path, wav_scp, utt2spk,
                                                              shortened):
    # the messages quoted a recording id, utterance id or path of wav.scp whole (repr): a line of
    # 64 kB gave a message of 64 kB
    from emkit.audio import read_data_dir

    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "wav.scp").write_text(wav_scp)
    if utt2spk:
        (tmp_path / "utt2spk").write_text(utt2spk)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        read_data_dir(tmp_path)
    message = str(info.value)
    assert "wav.scp" in message or "utt2spk" in message
    assert shortened in message and len(message) < 600


def test_a_cohort_error_shortens_the_ids_it_quotes(tmp_path):
    # 'emkit score --cohort': an utterance missing from the features was quoted whole
    from emkit.cli._norm import read_cohort
    from emkit.io.lists import FeatureError

    (tmp_path / "cohort").write_text(f"{LONG_ID} u1 {LONG_ID}\n")
    with pytest.raises(FeatureError, match=r"cohort: utterance 'r{77}\.\.\.' of cohort model "
                                           r"'r{77}\.\.\.' is not in the features") as info:
        read_cohort(tmp_path / "cohort", {"u1": None})
    assert len(str(info.value)) < 600


@pytest.mark.parametrize("value", [1e306, -1e20, 40000.0])
def test_a_float_wav_sample_beyond_any_scale_is_refused_not_read_as_inf(tmp_path, value):
    # a DOUBLE WAV with one sample of 1e306 passed the checks (1 of 1600 "clipped" is within
    # max_clipped) and was scaled by 32768 to inf, silently; one of -1e20 passed and made the
    # features fail later ("log_energy contains NaN or infinite values", naming no file)
    sf = pytest.importorskip("soundfile")
    import numpy as np

    from emkit.audio import AudioError, read_audio

    x = 0.2 * np.sin(np.arange(1600) * 0.05)
    x[100] = value
    sf.write(tmp_path / "hot.wav", x, 8000, subtype="DOUBLE")
    import re

    with pytest.raises(AudioError, match=re.escape(f"hot.wav': 1 of 1600 float samples are beyond "
                                                   f"32768 in magnitude (up to {abs(value):g}): "
                                                   "not audio")):
        read_audio(tmp_path / "hot.wav", sample_rate=8000)
    x[100] = 32768.0  # 16-bit values stored unscaled reach this: read (as one clipped sample)
    sf.write(tmp_path / "loud.wav", x, 8000, subtype="DOUBLE")
    assert read_audio(tmp_path / "loud.wav", sample_rate=8000)[100] == 32768.0**2


@pytest.mark.parametrize("value", ["1e999", "9" * 400])
def test_an_infinite_sample_frequency_in_a_kaldi_options_file_is_a_usage_error(tmp_path, value):
    # float('1e999') is inf, and int(inf) raised a bare OverflowError: emkit features said
    # "error: cannot convert float infinity to integer", naming neither the file nor the option
    import click

    from emkit.cli import cli
    from emkit.cli._kaldi_config import read_kaldi_configs

    (tmp_path / "mfcc.conf").write_text(f"--num-ceps=13\n--sample-frequency={value}\n")
    with click.Context(cli.commands["features"]) as ctx:
        with pytest.raises(click.UsageError, match=r"mfcc.conf' line 2: --sample-frequency: "
                                                   r"must be a finite number; got "
                                                   r"'(1e999|9{77}\.\.\.)'"):
            read_kaldi_configs([tmp_path / "mfcc.conf"], ctx, "mfcc")


FULL_RECIPE = """\
[features]
num_ceps = 13
[data.train]
audio = "audio"
[ubm]
data = "train"
gaussians = 4
[systems.gmm]
kind = "gmm-map"
[conditions.eval]
data = "train"
enroll = "enroll"
trials = "trials"
"""
BIG = "9" * 400


@pytest.mark.parametrize("old, new, expected", [
    ("num_ceps = 13", f"low_freq = {BIG}", r"features.low_freq: must be a number within "
                                           r"float64's range; got 9{20}\.\.\. \(an integer of 400"),
    ("gaussians = 4", f"threshold = {BIG}", r"ubm.threshold: must be a number within float64's"),
    ('kind = "gmm-map"', f'kind = "gmm-map"\nrelevance_factor = -{BIG}',
     r"systems.gmm.relevance_factor: must be a number within float64's range; got -9{19}\.\.\. "
     r"\(an integer of 400 digits\)"),
    ("gaussians = 4", f"gaussians = 4\ngselect = {BIG}",
     r"ubm.gselect: must be at most ubm.gaussians \(4\); got 9{20}\.\.\. \(an integer of 400 "),
])
def test_a_recipe_integer_of_hundreds_of_digits_is_refused_and_not_echoed(project, old, new,
                                                                          expected):
    # a float key given an integer beyond float64 leaked a bare OverflowError ("int too large to
    # convert to float"), and an integer key's message quoted its 400 (up to 4300) digits
    for name in ("enroll", "trials"):
        (project / name).write_text("x")
    (project / "recipe.toml").write_text(FULL_RECIPE.replace(old, new))
    with pytest.raises(RecipeError, match=expected) as info:
        load_recipe(project / "recipe.toml")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("line, shown", [
    ("u1 " + "d/" * 2000 + "a.ark:3", r"no such file '\.\.\./(d/){37}a\.ark'$"),  # no such file
    ("u1 " + "x" * 5000 + ".ark", r"'\.\.\.x{76}\.ark': cannot access it \(File name too long"),
    ("u1 a.ark:3\r" * 2000, r"'\.\.\..*\\ru1 a\.ark': cannot access it"),  # CR line ends
    ("u1 \x1b[2J" + "y" * 3000, r"'\.\.\.y{80}': cannot access it"),
    ("u1 a.ark:" + "9" * 3000, r"a\.ark: offset 9{20}\.\.\. \(3000 digits\) is beyond the end"),
])
def test_script_file_errors_shorten_the_paths_and_offsets_they_quote(tmp_path, monkeypatch, line,
                                                                     shown):
    # read_kaldi_scp quoted the file name of an scp line whole (repr, or as it is), and an offset
    # of up to 4000 digits: a line of 64 kB gave a message of 64 kB (4063 characters for a path
    # of 2000 folders, 24077 for CR-ended lines read as one)
    from emkit.io.kaldi import read_kaldi_scp
    from emkit.io.lists import FeatureError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.ark").write_bytes(b"")
    (tmp_path / "t.scp").write_text(line + "\n")
    expected = r"^t\.scp line 1 \(utterance 'u1'\): .*" + shown
    with pytest.raises(FeatureError, match=expected) as info:
        read_kaldi_scp("t.scp")
    assert len(str(info.value)) < 250


@pytest.mark.parametrize("value", ["1" * 100_000 + "x", "1" * 50_000 + "." + "1" * 50_000 + "x"])
def test_a_long_run_of_digits_in_a_kaldi_float_option_is_refused_at_once(no_hang, value):
    # _FLOAT ("[0-9]+\.?[0-9]*...") split a run of digits between its two parts in every way:
    # 100,000 digits then an 'x' backtracked about 5e9 steps (minutes, on the command line;
    # 0.2-0.8 s for a 4096-byte line of an options file)
    import click

    from emkit.cli._kaldi_config import check_fixed

    with pytest.raises(click.UsageError, match=r"^the command line: --blackman-coeff expects a "
                                               r"decimal number; got '1{77}\.\.\.'$"):
        check_fixed("blackman-coeff", value, "mfcc", "the command line")


def test_kaldi_float_options_accept_the_same_numbers_as_before():
    # a guard on the rewritten pattern: the language of the old one, on every string of up to 4
    # characters of "1.e+-x" and some longer ones
    import itertools
    import re

    from emkit.cli._kaldi_config import _FLOAT

    old = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
    texts = ["".join(t) for n in range(5) for t in itertools.product("1.e+-x", repeat=n)]
    texts += ["12.5e-3", "-.5", "+3.", "1e", "1.2.3", "007", "1E+10", " 1", "1 "]
    assert [bool(_FLOAT.match(t)) for t in texts] == [bool(old.match(t)) for t in texts]
