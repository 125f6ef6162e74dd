"""Fuzzing the WAV reader (``read_audio``): mutated WAVs of every codec libsndfile writes in WAV.

Seeds: PCM (8 to 32 bits), float, double, mu-law, A-law, IMA and MS ADPCM, GSM 6.10, G.721, a
WAVE_FORMAT_EXTENSIBLE file, files with LIST, fact and odd-sized chunks, mono and stereo.  The
mutations (:mod:`mutations`) flip bits, insert, delete and truncate, set size and format fields to
0, 2**31-1, 2**32-1 (-1 as int32)... and repeat chunks.  A read must give finite float64 samples
of the 16-bit scale, or an :class:`~emkit.audio.AudioError` naming the file; within the time
limit, allocating at most what the samples of the file can decode to (a GSM 6.10 block of 65
bytes decodes to 320 samples, 2560 bytes as float64) and without quoting the file.

Campaigns run when this test was added (three seeds, each case in a child process under
RLIMIT_AS and a 2 s timer): 5500 mutated WAVs read whole, 5500 read as a segment, 5500 read as
a channel of a stereo file, and this test with ``EMKIT_FUZZ_CASES=3000``.  Finding: a float sample
of 1e306 was read as inf, one of 1e20 broke the features later (now refused).
"""

import random
import struct

import numpy as np
import pytest

sf = pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import AudioError, read_audio  # noqa: E402
from mutations import CASES, guarded, mutate_bytes, riff_chunks  # noqa: E402

RATE = 8000
CODECS = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM",
          "MS_ADPCM", "GSM610", "G721_32"]
#: bytes of samples a byte of the file may decode to: GSM 6.10, 65 bytes for 320 samples
DECODED_PER_BYTE = 8 * 320 / 65


def _with_chunk(wav: bytes, chunk: bytes) -> bytes:
    """``wav`` with ``chunk`` inserted before its data chunk (RIFF size updated)."""
    at = next(p for name, p, _ in riff_chunks(wav) if name == b"data")
    out = wav[:at] + chunk + wav[at:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    x = 0.2 * np.sin(np.arange(800) * 0.05) + 0.02 * np.random.default_rng(0).normal(size=800)
    out = []

    def write(data, subtype, fmt="WAV"):
        sf.write(folder / "seed.wav", data, RATE, subtype=subtype, format=fmt)
        return (folder / "seed.wav").read_bytes()

    for subtype in CODECS:
        out.append(write(x, subtype))
    out.append(write(np.stack([x, -x], axis=1), "PCM_16"))
    out.append(write(np.stack([x, -x], axis=1), "IMA_ADPCM"))
    out.append(write(x, "PCM_16", "WAVEX"))
    pcm = out[1]
    out.append(_with_chunk(pcm, b"LIST" + struct.pack("<I", 17) + b"INFOISFT\x05\0\0\0abcde\0"))
    out.append(_with_chunk(pcm, b"fact" + struct.pack("<I", 4) + struct.pack("<I", 800)))
    out.append(_with_chunk(pcm, b"junk" + struct.pack("<I", 3) + b"abc\0"))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # truncated WAV, multi-channel: expected
def test_mutated_wavs_are_read_or_refused_cleanly(seeds, tmp_path):
    r = random.Random(20261207)
    path = tmp_path / "case.wav"
    outcomes = {"read": 0, "refused": 0}
    with guarded() as read:
        for _ in range(CASES or 300):
            content = mutate_bytes(r, r.choice(seeds), riff=True)
            path.write_bytes(content)
            segment = r.choice([{}, {}, {"start": 0.01, "end": 0.05}, {"channel": 1}])
            samples = read(lambda p: read_audio(p, sample_rate=RATE, **segment), path, content,
                           AudioError, ratio=DECODED_PER_BYTE)
            if samples is None:
                outcomes["refused"] += 1
                continue
            outcomes["read"] += 1
            assert samples.dtype == np.float64 and samples.ndim == 1 and samples.size > 0
            assert np.isfinite(samples).all() and np.abs(samples).max() <= 32768.0**2
    assert min(outcomes.values()) > (CASES or 300) // 10, outcomes  # both kinds of outcome met
