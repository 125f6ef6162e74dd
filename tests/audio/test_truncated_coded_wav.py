"""A truncated WAV of a block codec (IMA/MS ADPCM, GSM 6.10, G.721, NMS ADPCM) warns as a
truncated PCM WAV does: its data chunk declares bytes of coded blocks, not samples."""

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from emkit.audio import read_audio  # noqa: E402

PCM_LIKE = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"]
CODED = [s for s in ("IMA_ADPCM", "MS_ADPCM", "GSM610", "G721_32", "NMS_ADPCM_16",
                     "NMS_ADPCM_24", "NMS_ADPCM_32") if s in sf.available_subtypes("WAV")]


def _whole_and_cut(tmp_path, subtype):
    x = 0.3 * np.sin(np.arange(16000) * 0.05) + 0.05 * np.random.default_rng(0).normal(size=16000)
    whole = tmp_path / f"{subtype}.wav"
    sf.write(whole, x, 8000, subtype=subtype)
    cut = tmp_path / f"{subtype}-cut.wav"
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    return whole, cut


@pytest.mark.parametrize("subtype", CODED)
def test_a_truncated_coded_wav_warns(tmp_path, subtype, recwarn):
    # the header check divided the data size by the block size: a count of blocks (32 for 16160
    # IMA ADPCM samples) never exceeded the samples left, so a cut file was read without a word
    whole, cut = _whole_and_cut(tmp_path, subtype)
    assert len(read_audio(whole, sample_rate=8000)) >= 16000
    assert not [w for w in recwarn if "truncated" in str(w.message)]  # no false alarm
    held = sf.info(cut).frames
    declared = whole.stat().st_size - len(whole.read_bytes().split(b"data", 1)[0]) - 8
    with pytest.warns(UserWarning, match=rf"{subtype}-cut.wav.: truncated WAV: its header declares "
                                         rf"{declared} bytes of coded audio, the file holds "
                                         rf"{cut.stat().st_size - whole.stat().st_size + declared}; "
                                         rf"the {held} samples they hold are used"):
        assert len(read_audio(cut, sample_rate=8000)) <= held


@pytest.mark.parametrize("subtype", PCM_LIKE)
def test_frame_coded_wavs_still_count_samples(tmp_path, subtype, recwarn):
    whole, cut = _whole_and_cut(tmp_path, subtype)
    assert len(read_audio(whole, sample_rate=8000)) == 16000
    assert not [w for w in recwarn if "truncated" in str(w.message)]
    held = sf.info(cut).frames
    with pytest.warns(UserWarning, match=rf"declares 16000 samples, the file holds {held}; "):
        assert len(read_audio(cut, sample_rate=8000)) == held


@pytest.mark.filterwarnings("default::UserWarning")
def test_the_command_warns_of_a_truncated_ima_adpcm_wav(tmp_path):
    from click.testing import CliRunner

    from emkit.cli import cli

    _, cut = _whole_and_cut(tmp_path, "IMA_ADPCM")
    result = CliRunner().invoke(cli, ["features", str(cut), "--sample-frequency", "8000",
                                      "-o", str(tmp_path / "o.ark"), "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emkit: warning: '") and \
        "IMA_ADPCM-cut.wav': truncated WAV: its header declares 8192 bytes of coded audio, " \
        "the file holds 4066; the 8080 samples they hold are used" in lines[0]
