"""The data set every command-line test works on (built once per test module), and the audio
the ``emkit features`` tests work on."""

import h5py
import pytest
from cli_support import SPEAKERS, run
from feature_files import write_ark, write_scp, write_text_ark

from emkit.datasets import load_japanese_vowels


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    jv = load_japanese_vowels()
    train = {jv.utterance_ids[i]: jv.utterances[i]
             for s in SPEAKERS for i in jv.indices(session=0, speaker=s)}
    probes = {jv.utterance_ids[i]: jv.utterances[i]
              for s in SPEAKERS for i in jv.indices(session=1, speaker=s)[:8]}
    offsets = write_ark(d / "train.ark", train, "FM")
    write_scp(d / "train.scp", "train.ark", offsets)
    keys = list(probes)
    with h5py.File(d / "probes.h5", "w") as f:
        for k in keys[::2]:
            f[k] = probes[k]
    write_text_ark(d / "probes.ark", {k: probes[k] for k in keys[1::2]})
    (d / "utt2spk").write_text("".join(f"{u} spk{u[3]}\n" for u in train))
    by_speaker = {s: [u for u in train if u.startswith(f"spk{s}_")] for s in SPEAKERS}
    (d / "spk2utt").write_text("".join(f"spk{s} {' '.join(us)}\n" for s, us in by_speaker.items()))
    lines = [f"spk{s} {p} {'target' if p.startswith(f'spk{s}_') else 'nontarget'}"
             for s in SPEAKERS for p in keys]
    (d / "trials").write_text("\n".join(lines) + "\n")
    (d / "trials_nolabels").write_text("".join(" ".join(line.split()[:2]) + "\n" for line in lines))
    run("train-ubm", d / "train.scp", "-n", 8, "--iterations", 10, "--seed", 1, "-o", d / "ubm.h5",
        "--no-progress")
    return d


@pytest.fixture()
def audio(tmp_path):
    """Three WAV files of speech-like sound (the audio extra's tests only: imported there)."""
    from audio_files import three_utterances

    return three_utterances(tmp_path / "in")
