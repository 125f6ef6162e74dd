"""Fuzzing the readers of text files: id lists (utt2spk, spk2utt; cohort lists are read as
these), trial lists, score files, calibration files (JSON), Kaldi options files, recipes (TOML) and Kaldi data
directories (wav.scp, segments, utt2spk).

Each reader gets 100-150 mutations of a valid file (:mod:`mutations`: lines repeated or
dropped, fields replaced by odd tokens (NaN, 1e999, ids of 5000 characters, a 4400-digit number,
control characters, paths outside, piped commands), bytes that are not UTF-8, bit flips,
truncations).  A read must succeed or raise the reader's documented error naming the file,
within the time limit, allocating about what the file holds, and without echoing it.

Campaigns run when this test was added: 5500 cases per reader (three seeds, each case in a child
process under RLIMIT_AS and a 2 s timer); findings:
delta_order = 2147483648 in a recipe hung, a 4400-digit integer leaked a bare ValueError, a
--sample-frequency=1e999 line an OverflowError, wav.scp paths too long for the file system an
OSError, and ids of wav.scp, utt2spk and cohort lists were quoted whole; found by hand after
them, a recipe's integer of 400 digits leaked an OverflowError (a float key) or was quoted whole
(all fixed).
"""

import json
import random

import click
import pytest

from emkit.io.errors import InvalidFileError
from mutations import CASES, guarded, mutate_bytes, mutate_text

N = CASES or 150


def _lines(text: str) -> bytes:
    return text.encode()


def _id_lists():
    from emkit.io.lists import read_id_lists, read_id_map

    utt2spk = _lines("".join(f"utt{i} spk{i % 3}\n" for i in range(8)))
    spk2utt = _lines("".join(f"spk{i} " + " ".join(f"u{i}_{j}" for j in range(3)) + "\n"
                             for i in range(4)))
    return [(read_id_map, utt2spk), (read_id_lists, spk2utt)]


def _trials_and_scores():
    from emkit.io.lists import read_scores, read_trials

    labels = {True: "target", False: "nontarget"}
    trials = "".join(f"m{i} p{j} {labels[i == j]}\n" for i in range(3) for j in range(3))
    scores = "".join(f"m{i} p{j} {0.125 * (i - j) - 1.5!r} {labels[i == j]}\n"
                     for i in range(3) for j in range(3))
    return [(read_trials, _lines("# key\n" + trials)), (read_scores, _lines(scores))]


def _calibration():
    from emkit.calibration_io import load_calibration

    doc = {"format": "emkit.LinearCalibration", "version": 2, "prior": 0.5, "coef": [0.75],
           "intercept": -1.25, "trained_on": {"targets": 3, "nontargets": 6}, "C": 1.0,
           "max_iter": 100, "feature_names": ["score"]}
    return [(load_calibration, json.dumps(doc, indent=1).encode())]


def _kaldi_config():
    from emkit.cli import cli
    from emkit.cli._kaldi_config import read_kaldi_configs

    def read(path):
        with click.Context(cli.commands["features"]) as ctx:
            return read_kaldi_configs([path], ctx, "mfcc")

    conf = ("# mfcc\n--use-energy=false   # no energy\n--sample-frequency=8000\n--num-ceps=13\n"
            "--low-freq=20\n--high-freq=-400\n--dither=0\n--snip-edges=true\n"
            "--htk-compat=false\n--frame-length=25.0\n--delta-order=2\n")
    return [(read, conf.encode())]


RECIPE = """\
work_dir = "work"
[features]
num_ceps = 13
delta_order = 1
cmvn = "utterance"
[data.train]
audio = "audio"
[data.test]
features = ["test.npz"]
[ubm]
data = "train"
gaussians = 4
iterations = 3
[systems.gmm]
kind = "gmm-map"
[conditions.eval]
data = "test"
enroll = "enroll"
trials = "trials"
[evaluation]
p_target = [0.1]
"""


def _recipe():
    from emkit.recipe import load_recipe

    return [(load_recipe, RECIPE.encode())]


#: (readers and seeds, the reader's error besides ValueError)
FAMILIES = {"id lists": (_id_lists, FileNotFoundError),
            "trials and scores": (_trials_and_scores, FileNotFoundError),
            "calibration": (_calibration, FileNotFoundError),
            "kaldi options": (_kaldi_config, click.UsageError),
            "recipe": (_recipe, FileNotFoundError)}


def _mutate(r, content):
    if content.startswith(b"{") and r.random() < 0.3:  # a JSON field set to an odd value
        doc = json.loads(content)
        doc[r.choice(sorted(doc) + ["extra"])] = r.choice(
            [None, True, 1e308, -1, 0, 2**64, "x", [], [1, 2], {}, 0.5, [0.1], ["a"]])
        return json.dumps(doc).encode()
    return mutate_text(r, content)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_mutated_text_files_are_read_or_refused_cleanly(family, tmp_path, monkeypatch):
    readers, other = FAMILIES[family]
    for name in ("test.npz", "enroll", "trials"):  # what the recipe names
        (tmp_path / name).write_text("x")
    (tmp_path / "audio").mkdir()
    monkeypatch.chdir(tmp_path)
    r = random.Random(f"20261207 {family}")
    path = tmp_path / "case.txt"
    outcomes = {"read": 0, "refused": 0}
    n = N if family != "recipe" else CASES or 100  # (a recipe takes 30 ms to check)
    with guarded() as read:
        for load, seed in readers():
            path.write_bytes(seed)
            assert read(load, path, seed, (), ratio=64) is not None  # the seed is valid
            for _ in range(n):
                content = _mutate(r, seed)
                path.write_bytes(content)
                result = read(load, path, content, (ValueError, other), ratio=64)
                outcomes["read" if result is not None else "refused"] += 1
    assert min(outcomes.values()) > n // 20, outcomes  # both kinds of outcome met


def test_mutated_kaldi_data_directories_are_read_or_refused_cleanly(tmp_path, monkeypatch):
    from emkit.audio import read_data_dir

    seeds = {"wav.scp": b"r0 r0.wav\nr1 r1.wav\n",
             "segments": b"u0 r0 0.0 0.1\nu1 r0 0.1 -1\nu2 r1 0 0.15\n",
             "utt2spk": b"u0 s0\nu1 s0\nu2 s1\n"}
    for name in ("r0.wav", "r1.wav"):  # (read_data_dir lists the audio, does not read it)
        (tmp_path / name).write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)
    r = random.Random("20261207 data dir")
    outcomes = {"read": 0, "refused": 0}
    with guarded() as read:
        for _ in range(N):
            damaged = r.choice(sorted(seeds))
            content = _mutate(r, seeds[damaged])
            for name, text in seeds.items():
                (tmp_path / name).write_bytes(content if name == damaged else text)
            result = read(read_data_dir, tmp_path, content, (ValueError, FileNotFoundError),
                          ratio=64, names=[damaged, "wav.scp"])
            if result is not None:
                assert all(u.start is None or 0 <= u.start for u in result)
            outcomes["read" if result is not None else "refused"] += 1
    assert min(outcomes.values()) > N // 20, outcomes
