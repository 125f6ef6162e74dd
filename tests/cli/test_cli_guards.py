"""The ``emkit`` commands refuse what would destroy data or silently do something else:
outputs that are inputs, read-only outputs, options that do not apply, repeated trials,
unreadable model files; their messages name the file and read as English."""

import os
import signal
import stat
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from _parity import DATA
from cli_support import PROBES, no_leftovers, one_line_error, run


@pytest.fixture(scope="module")
def machines(data):  # noqa: F811
    """An ISV machine, an i-vector system and GMM-MAP models next to the shared UBM."""
    d = data
    train = (d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk", "--no-progress")
    run("train-isv", *train, "--rank-u", 2, "--iterations", 2, "-o", d / "g_isv.h5")
    run("train-ivector", *train, "--dim", 3, "--iterations", 2, "-o", d / "g_iv.h5")
    run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", d / "spk2utt", "-o", d / "g_map.h5")
    return d


# ---------------------------------------------------------------------------------------------
# item 10: an output that is an input


def test_output_that_is_an_input_is_refused(machines, tmp_path, monkeypatch):
    d = machines
    feats = tmp_path / "feats.npz"
    np.savez(feats, u1=np.random.default_rng(0).normal(size=(50, 12)))
    before = feats.read_bytes()
    result = run("train-ubm", feats, "-n", 2, "-o", feats, ok=False)
    one_line_error(result, 2, "usage error", "-o/--output", "feats.npz", "FEATURES",
                   "refusing to overwrite an input")
    assert feats.read_bytes() == before

    ubm = d / "ubm.h5"
    before = ubm.read_bytes()
    result = run("enroll", d / "train.scp", "-m", ubm, "-e", d / "spk2utt", "-o", ubm, ok=False)
    one_line_error(result, 2, "usage error", "ubm.h5", "-m/--machine")
    assert ubm.read_bytes() == before

    trials = d / "trials"
    before = trials.read_bytes()
    result = run("score", *(d / p for p in PROBES), "--models", d / "g_map.h5", "-t", trials,
                 "-o", trials, ok=False)
    one_line_error(result, 2, "usage error", "-t/--trials", "trials")
    # through a symbolic link and a relative path with '..'
    link = tmp_path / "link.txt"
    link.symlink_to(trials)
    result = run("score", *(d / p for p in PROBES), "--models", d / "g_map.h5", "-t", trials,
                 "-o", link, ok=False)
    one_line_error(result, 2, "usage error", "link.txt", "-t/--trials", str(trials))
    monkeypatch.chdir(d)
    result = run("score", *PROBES, "--models", "g_map.h5", "-t", "trials",
                 "-o", f"../{d.name}/trials", ok=False)
    one_line_error(result, 2, "usage error", "-t/--trials")
    assert trials.read_bytes() == before
    # an archive that a .scp file names is an input too
    before = (d / "train.ark").read_bytes()
    result = run("train-ubm", d / "train.scp", "-n", 2, "-o", d / "train.ark", ok=False)
    one_line_error(result, 2, "usage error", "train.ark", "FEATURES (in", "train.scp")
    assert (d / "train.ark").read_bytes() == before
    # ... whatever the script file's name, given with scp: (only .scp names were looked into)
    (tmp_path / "feats.list").write_text((d / "train.scp").read_text().replace("train.ark", str(d / "train.ark")))
    result = run("train-ubm", f"scp:{tmp_path / 'feats.list'}", "-n", 2, "-o", d / "train.ark", ok=False)
    one_line_error(result, 2, "usage error", "train.ark", "FEATURES (in", "feats.list")
    assert (d / "train.ark").read_bytes() == before
    # the DET plot of evaluate over its score file
    run("score", *PROBES, "--models", "g_map.h5", "-t", "trials", "-o", "g_map.txt")
    before = (d / "g_map.txt").read_bytes()
    result = run("evaluate", "g_map.txt", "--det", "./g_map.txt", ok=False)
    one_line_error(result, 2, "usage error", "--det", "SCORES")
    assert (d / "g_map.txt").read_bytes() == before


# ---------------------------------------------------------------------------------------------
# item 11: a read-only output


def test_read_only_output_is_refused_and_left_as_it_is(machines, tmp_path):
    d = machines
    out = tmp_path / "scores.txt"
    out.write_text("kept\n")
    out.chmod(0o444)
    result = run("score", *(d / p for p in PROBES), "--models", d / "g_map.h5",
                 "-t", d / "trials", "-o", out, ok=False)
    one_line_error(result, 1, "scores.txt", "read-only", "0444")
    # the mode bits, not an EACCES: the tests may run as root, who could write anyway
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o444
    assert out.read_text() == "kept\n"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".emkit-")]
    out.chmod(0o644)  # a writable one is replaced, as before
    run("score", *(d / p for p in PROBES), "--models", d / "g_map.h5", "-t", d / "trials",
        "-o", out)
    assert out.read_text() != "kept\n"


# ---------------------------------------------------------------------------------------------
# item 12: options that do not apply


def test_options_that_do_not_apply_are_usage_errors(machines):
    d = machines
    enroll = ("enroll", d / "train.scp", "-e", d / "spk2utt", "-o", d / "g_nope.h5")
    result = run(*enroll, "-m", d / "ubm.h5", "--backend", "plda", ok=False)
    one_line_error(result, 2, "usage error", "--backend does not apply", "ubm.h5 holds a UBM")
    result = run(*enroll, "-m", d / "g_isv.h5", "--relevance-factor", 16, ok=False)
    one_line_error(result, 2, "--relevance-factor does not apply", "g_isv.h5 holds an ISVMachine",
                   "train-isv --relevance-factor")
    result = run(*enroll, "-m", d / "g_iv.h5", "--relevance-factor", 2, ok=False)
    one_line_error(result, 2, "--relevance-factor does not apply", "an i-vector system")
    result = run("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--plda", "--dim", 2,
                 "-o", d / "g_nope.h5", ok=False)
    one_line_error(result, 2, "--plda does not apply without --labels")
    no_leftovers(d, "g_nope.h5")
    # --key with score files that all have labels would not be read
    run("score", *(d / p for p in PROBES), "--models", d / "g_map.h5", "-t", d / "trials",
        "-o", d / "g_keyed.txt")
    result = run("evaluate", d / "g_keyed.txt", "--key", d / "trials", ok=False)
    one_line_error(result, 2, "--key does not apply", "every score file has its own label")
    # the defaults of those options are no error, and an applicable option is used
    run(*enroll[:-1], d / "g_rf.h5", "-m", d / "ubm.h5", "--relevance-factor", 16)
    run(*enroll[:-1], d / "g_pl.h5", "-m", d / "g_iv.h5", "--backend", "plda")


# ---------------------------------------------------------------------------------------------
# item 13: repeated trials


def test_repeated_trial_is_an_error_naming_both_lines(machines, tmp_path):
    d = machines
    trials = tmp_path / "dup_trials"
    trials.write_text("spk1 spk1_s1_001 target\nspk2 spk1_s1_001 nontarget\n"
                      "# a comment\nspk1 spk1_s1_001 target\n")
    result = run("score", *(d / p for p in PROBES), "--models", d / "g_map.h5", "-t", trials,
                 "-o", tmp_path / "s.txt", ok=False)
    one_line_error(result, 1, "dup_trials line 4", "'spk1 spk1_s1_001'", "repeats line 1")
    no_leftovers(tmp_path, "s.txt")
    scores = tmp_path / "dup_scores.txt"
    scores.write_text("a x 1.0 target\nb x 0.5 nontarget\na x 2.0 target\n")
    one_line_error(run("evaluate", scores, ok=False), 1, "dup_scores.txt line 3", "repeats line 1")


# ---------------------------------------------------------------------------------------------
# items 9 and 14: model files that cannot be used; messages


def test_corrupt_or_wrong_model_files_are_named(machines, tmp_path):
    d = machines
    text = tmp_path / "text.h5"
    text.write_text("this is not HDF5\n")
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes((d / "g_map.h5").read_bytes()[:600])
    enroll = ("enroll", d / "train.scp", "-e", d / "spk2utt", "-o", tmp_path / "m.h5")
    score = ("score", *(d / p for p in PROBES), "-t", d / "trials", "-o", tmp_path / "s.txt")
    for bad in (text, truncated):
        one_line_error(run(*enroll, "-m", bad, ok=False), 1, "emkit enroll: error:", str(bad))
        one_line_error(run(*score, "--models", bad, ok=False), 1, "emkit score: error:", str(bad))
    result = run(*score, "--models", d / "ubm.h5", ok=False)
    one_line_error(result, 1, f"{d / 'ubm.h5'} holds an emkit GMMMachine, not enrolled models",
                   "emkit enroll")
    result = run(*score, "--models", d / "g_isv.h5", ok=False)
    one_line_error(result, 1, "g_isv.h5 holds an emkit ISVMachine, not enrolled models")
    result = run(*enroll, "-m", d / "g_map.h5", ok=False)
    one_line_error(result, 1, "g_map.h5 holds enrolled models, not a machine")
    result = run("train-isv", d / "train.scp", "--ubm", d / "g_isv.h5", "--labels", d / "utt2spk",
                 "-o", tmp_path / "i.h5", ok=False)
    one_line_error(result, 1, "g_isv.h5 holds an ISVMachine, not a UBM")
    # the reference's MAP file holds no UBM: advice a command-line user can follow
    ref_map = DATA / "gmm" / "ref_gmm_map.h5"
    for result in (run(*enroll, "-m", ref_map, ok=False),
                   run("train-isv", d / "train.scp", "--ubm", ref_map, "--labels", d / "utt2spk",
                       "-o", tmp_path / "i.h5", ok=False)):
        one_line_error(result, 1, f"{ref_map} holds a MAP-adapted GMM (a speaker model) without its "
                       "UBM, not a UBM: give the UBM file it was adapted from")
        assert "ubm=" not in result.stderr
    no_leftovers(tmp_path, "m.h5", "s.txt", "i.h5")


def test_messages_read_as_english(machines, tmp_path):
    d = machines
    (tmp_path / "one").write_text("spk1 spk1_s0_001\n")
    out = run("enroll", d / "train.scp", "-m", d / "ubm.h5", "-e", tmp_path / "one",
              "-o", tmp_path / "one.h5")
    assert "1 gmm-map model from 1 utterance ->" in out.stdout
    (tmp_path / "t1").write_text("spk1 spk1_s1_001\n")
    out = run("score", *(d / p for p in PROBES), "--models", tmp_path / "one.h5",
              "-t", tmp_path / "t1", "-o", tmp_path / "s1.txt")
    assert "1 trial (1 model x 1 probe) ->" in out.stdout
    # an option that does not apply to the machine given is a usage error naming the file
    run("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--dim", 2, "--iterations", 1,
        "-o", tmp_path / "iv.h5")
    result = run("enroll", d / "train.scp", "-m", tmp_path / "iv.h5", "-e", d / "spk2utt",
                 "--backend", "plda", "-o", tmp_path / "m.h5", ok=False)
    one_line_error(result, 2, "emkit enroll: usage error: --backend plda does not apply:", "iv.h5",
                   "an i-vector system without PLDA")
    assert "SystemUnavailable" not in result.stderr


def test_missing_file_in_feature_list_is_a_usage_error_as_an_argument_is(machines, tmp_path):
    d = machines
    gone = tmp_path / "gone.npy"
    as_argument = run("train-ubm", gone, "-n", 2, "-o", tmp_path / "u.h5", ok=False)
    one_line_error(as_argument, 2, "usage error", "gone.npy", "does not exist")
    (tmp_path / "list").write_text(f"{d / 'train.scp'}\n{gone}\n")
    in_list = run("train-ubm", "--feature-list", tmp_path / "list", "-n", 2,
                  "-o", tmp_path / "u.h5", ok=False)
    one_line_error(in_list, 2, "usage error", "--feature-list", "line 2", "gone.npy",
                   "does not exist")
    no_leftovers(tmp_path, "u.h5")


def test_a_feature_list_that_is_a_pipe_or_not_text_is_refused_naming_it(tmp_path):
    os.mkfifo(tmp_path / "list.fifo")
    (tmp_path / "list.bin").write_bytes(b"\xff\xfe" + str(tmp_path / "a.npy").encode() + b"\n")
    (tmp_path / "list.long").write_text("x" * 100_000 + "\n")

    def alarm(signum, frame):
        raise TimeoutError("blocked on the named pipe")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(10)
    try:
        for name, fragments in [("list.fifo", ["is a named pipe, not a regular file"]),
                                ("list.bin", ["list.bin line 1: not UTF-8 text"]),
                                ("list.long", ["list.long line 1: file 'xxx", "does not exist"])]:
            result = run("train-ubm", "--feature-list", tmp_path / name, "-n", 2,
                         "-o", tmp_path / "u.h5", ok=False)
            one_line_error(result, 1 if name != "list.long" else 2, name, *fragments)
            assert len(result.stderr) < 500, result.stderr
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    no_leftovers(tmp_path, "u.h5")


# ---------------------------------------------------------------------------------------------
# item 15: the summary says when EM stopped at its cap


def test_train_ubm_summary_says_when_em_stopped_at_the_cap(data, tmp_path):  # noqa: F811
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        capped = run("train-ubm", data / "train.scp", "-n", 4, "--iterations", 2, "--threshold",
                     0, "--kmeans-iterations", 2, "-o", tmp_path / "a.h5")
    # the summary says it: no ConvergenceWarning, neither Python's nor as a line of its own
    assert not [w for w in caught if w.category is ConvergenceWarning] and not capped.stderr
    assert "k-means stopped at its cap" in capped.stdout
    assert "2 EM iterations (stopped at the cap, --iterations 2, without converging" \
        in capped.stdout
    converged = run("train-ubm", data / "train.scp", "-n", 4, "--iterations", 50,
                    "--threshold", 0.5, "-o", tmp_path / "b.h5")
    assert "stopped at the cap" not in converged.stdout
    assert "2 EM iterations" in converged.stdout   # the first change tested is the second
    out = run("train-isv", data / "train.scp", "--ubm", tmp_path / "b.h5", "--labels",
              data / "utt2spk", "--rank-u", 1, "--iterations", 2, "-o", tmp_path / "i.h5")
    assert "2 EM iterations (a fixed number: no convergence test)" in out.stdout


# ---------------------------------------------------------------------------------------------
# a UBM of too many Gaussians for its frames


def test_the_help_text_states_the_library_minimum():
    from emkit.cli import _commands
    from emkit.experiment import MIN_FRAMES_PER_GAUSSIAN

    assert _commands.MIN_FRAMES_PER_GAUSSIAN == MIN_FRAMES_PER_GAUSSIAN


def test_train_ubm_needs_ten_frames_per_gaussian_and_warns_of_collapsed_ones(tmp_path):
    rng = np.random.default_rng(0)
    feats = tmp_path / "feats.npy"
    np.save(feats, rng.normal(size=(129, 4)))
    one_line_error(run("train-ubm", feats, "-n", 13, "-o", tmp_path / "u.h5", ok=False), 1,
                   "129 frames cannot train 13 Gaussians: a UBM needs at least 10 frames per "
                   "Gaussian; use -n 12 or fewer, or more data")
    one_line_error(run("train-ubm", feats, "-n", 129, "-o", tmp_path / "u.h5", ok=False), 1,
                   "cannot train 129 Gaussians")
    no_leftovers(tmp_path, "u.h5")
    ok = run("train-ubm", feats, "-n", 12, "--no-progress", "-o", tmp_path / "u.h5")
    assert "collapsed" not in ok.stderr
    repeated = tmp_path / "repeated.npy"  # 4 distinct frames, 10 times each
    np.save(repeated, np.repeat(rng.normal(size=(4, 4)) * 10, 10, axis=0))
    out = run("train-ubm", repeated, "-n", 4, "--no-progress", "-o", tmp_path / "r.h5")
    [line] = [x for x in out.stderr.splitlines() if "collapsed" in x]
    assert line.startswith("emkit: warning: GMM: 4 of 4 Gaussians collapsed onto single points") \
        and "fewer Gaussians" in line


# ---------------------------------------------------------------------------------------------
# NaN and infinity in float options


def _float_options(kind=None):
    import click

    from emkit.cli import cli

    kind = click.types.FloatParamType if kind is None else kind

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            for param in command.params:
                if (isinstance(param, click.Option)
                        and isinstance(param.type, kind)):
                    yield [*path, param.opts[-1]]

    return list(walk(cli, []))


def test_every_float_option_is_found():
    found = {" ".join(o) for o in _float_options()}
    assert {"train-isv --relevance-factor", "enroll --relevance-factor", "train-ubm --threshold",
            "features --high-freq", "features --vad-energy-threshold", "evaluate --c-fa",
            "calibrate --prior", "score --min-posterior"} <= found and len(found) >= 20, found


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize("command", _float_options(), ids=" ".join)
def test_float_options_refuse_nan_and_infinity_naming_the_option(command, value):
    # before: click's FLOAT and FloatRange took 'nan' (and 'inf' without an upper bound):
    # --relevance-factor nan trained NaN models, --high-freq nan reached the feature code
    *path, option = command
    result = run(*path, option, value, ok=False)
    one_line_error(result, 2, f"Invalid value for '{option}'")
    assert "must be a finite number" in result.stderr or "is not in the range" in result.stderr


@pytest.mark.parametrize("value", ["1_0", "\u0661"])
@pytest.mark.parametrize("command", _float_options(), ids=" ".join)
def test_float_options_refuse_numbers_not_written_in_ascii(command, value):
    # before: float() read '1_0' as 10 and the Arabic-Indic one as 1
    *path, option = command
    result = run(*path, option, value, ok=False)
    one_line_error(result, 2, f"Invalid value for '{option}'")
    assert "must be a number written in ASCII digits" in result.stderr


def _int_options():
    import click

    return _float_options(click.types.IntParamType)


def test_every_integer_option_is_found():
    found = {" ".join(o) for o in _int_options()}
    assert {"train-ubm --gaussians", "features --jobs", "demo --seed", "train-ivector --dim",
            "features --num-ceps"} <= found and len(found) >= 20, found


@pytest.mark.parametrize("value", ["1_0", "\u0661"])
@pytest.mark.parametrize("command", _int_options(), ids=" ".join)
def test_integer_options_refuse_numbers_not_written_in_ascii(command, value):
    # before: int() read '1_0' as 10 (-n 1_6: 16 Gaussians) and the Arabic-Indic one as 1
    *path, option = command
    result = run(*path, option, value, ok=False)
    one_line_error(result, 2, "Invalid value for ")
    assert f"'{option}': must be a number written in ASCII digits (e.g. 8 or 1024)" \
        in result.stderr


def test_a_feature_list_line_starting_with_hash_and_a_character_is_refused(machines, tmp_path):
    # before: skipped as a comment: the features of '#old.npy' were silently left out
    d = machines
    (tmp_path / "list").write_text(f"# the training features\n{d / 'train.scp'}\n#old.npy\n")
    refused = run("train-ubm", "--feature-list", tmp_path / "list", "-n", 2, "-o",
                  tmp_path / "u.h5", ok=False)
    one_line_error(refused, 1, f"{tmp_path / 'list'} line 3: the line starts with '#old.npy': "
                   "emkit refuses a file name starting with '#' rather than lose it as a comment")
    no_leftovers(tmp_path, "u.h5")
