"""``emkit features`` writes Kaldi's utt2num_frames beside the features."""

import os

import numpy as np
import pytest

pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not installed")
pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.features import read_features  # noqa: E402
from audio_files import run_features, speech_like, write  # noqa: E402
from cli_support import one_line_error  # noqa: E402


run = run_features


def lines(path):
    return [line.split() for line in path.read_text().splitlines()]


@pytest.mark.parametrize("output,expected", [
    ("data/feats.ark", "data/utt2num_frames"),
    ("data/raw_mfcc.ark", "data/raw_mfcc.utt2num_frames"),
    ("data/npy", "data/npy/utt2num_frames"),
])
def test_utt2num_frames_lists_the_frames_written(tmp_path, audio, output, expected):
    (tmp_path / "data").mkdir()
    write(audio / "long.wav", speech_like(seconds=2.0, seed=9))
    result = run(audio / "utt2.wav", audio / "long.wav", audio / "utt0.wav", "-o",
                 tmp_path / output, "--no-progress")
    assert result.exit_code == 0, result.output
    written = tmp_path / output
    if output.endswith(".ark"):
        feats = read_features(written.with_suffix(".scp"))
    else:
        feats = {key: np.load(written / f"{key}.npy") for key in ("utt2", "long", "utt0")}
    assert lines(tmp_path / expected) == [[key, str(feats[key].shape[0])]
                                          for key in ("utt2", "long", "utt0")]
    assert feats["long"].shape[0] > feats["utt0"].shape[0] > 0
    assert not [n for n in os.listdir(tmp_path / "data") if n.startswith(".emkit-")]


def test_utt2num_frames_can_be_left_out(tmp_path, audio):
    result = run(audio, "-o", tmp_path / "feats.ark", "--no-write-utt2num-frames")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["feats.ark", "feats.scp", "in"]


def test_no_utt2num_frames_when_the_features_fail(tmp_path, audio):
    (tmp_path / "utt2num_frames").write_text("old 1\n")
    (audio / "utt1.wav").write_text("not audio")
    result = run(audio, "-o", tmp_path / "feats.ark")
    assert result.exit_code == 1
    assert (tmp_path / "utt2num_frames").read_text() == "old 1\n"
    assert not (tmp_path / "feats.ark").exists()
    result = run(audio, "-o", tmp_path / "npy")
    assert result.exit_code == 1 and not (tmp_path / "npy").exists()


def test_a_read_only_utt2num_frames_is_refused_before_computing(tmp_path, audio):
    target = tmp_path / "utt2num_frames"
    target.write_text("old 1\n")
    target.chmod(0o444)
    result = run(audio, "-o", tmp_path / "feats.ark")
    one_line_error(result, 1, f"cannot write {str(target)!r}", "read-only")
    assert not (tmp_path / "feats.ark").exists()


def test_features_are_not_written_when_utt2num_frames_cannot_be(tmp_path, audio):
    from emkit.audio import compute_features

    with pytest.raises(FileNotFoundError, match="does not exist"):
        compute_features([audio], tmp_path / "feats.ark",
                         utt2num_frames=tmp_path / "missing" / "utt2num_frames")
    assert sorted(os.listdir(tmp_path)) == ["in"]  # no archive, no scp, no temporary file
    shapes = compute_features([audio], tmp_path / "npy", utt2num_frames=tmp_path / "u2nf")
    assert (tmp_path / "u2nf").read_text() == "".join(f"{k} {s[0]}\n" for k, s in shapes.items())
