"""A WAV whose format is in a WAVE_FORMAT_EXTENSIBLE header (tag 0xFFFE, the format in its
subformat GUID) is read and checked as the same audio in a plain header: an ADPCM one declares
bytes of coded blocks, not samples, and one libsndfile cannot read is refused naming its format.
The files are built by hand from the plain ones libsndfile writes."""

import struct

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from emkit.audio import AudioError, read_audio  # noqa: E402
from emkit.audio._pipeline import _audio_seconds  # noqa: E402
from emkit.audio._sources import Utterance  # noqa: E402

#: the last 12 bytes of Microsoft's subformat GUIDs (the first 4: the format tag)
GUID_TAIL = bytes.fromhex("000010008000" "00aa00389b71")


def _chunks(data: bytes) -> list:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    chunks, at = [], 12
    while at + 8 <= len(data):
        name, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        chunks.append((name, data[at + 8:at + 8 + size]))
        at += 8 + size + (size & 1)
    return chunks


def _riff(chunks) -> bytes:
    body = b"WAVE" + b"".join(name + struct.pack("<I", len(d)) + d + b"\0" * (len(d) & 1)
                              for name, d in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _extensible(plain: bytes, guid: bytes | None = None) -> bytes:
    """``plain`` with its fmt chunk rewritten as WAVE_FORMAT_EXTENSIBLE: the same fields, then
    samples per block (ADPCM; else the bits) in the union, no channel mask, the format tag in
    the subformat GUID, and the codec's own extra bytes (MS ADPCM's coefficients) after it."""
    def rewrite(fmt):
        tag, channels, rate, per_second, align, bits = struct.unpack("<HHIIHH", fmt[:16])
        extra = fmt[18:]
        union = struct.unpack("<H", extra[:2])[0] if tag in (2, 0x11) else bits
        tail = (guid or struct.pack("<I", tag) + GUID_TAIL) + (extra[2:] if tag == 2 else b"")
        return (struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, per_second, align, bits,
                            6 + len(tail), union, 0) + tail)
    return _riff([(n, rewrite(d) if n == b"fmt " else d) for n, d in _chunks(plain)])


def _pair(tmp_path, subtype, rate=8000):
    """(plain, extensible) WAVs of the same two seconds of audio coded as ``subtype``."""
    x = 0.3 * np.sin(np.arange(2 * rate) * 0.05) + 0.05 * np.random.default_rng(0).normal(
        size=2 * rate)
    plain = tmp_path / f"{subtype}.wav"
    sf.write(plain, x, rate, subtype=subtype)
    extensible = tmp_path / f"{subtype}-x.wav"
    extensible.write_bytes(_extensible(plain.read_bytes()))
    return plain, extensible


def _cut(path):
    """``path`` with its header and the first half of its data (the same bytes of a plain and
    an extensible file of the same audio)."""
    cut = path.with_name(path.stem + "-cut.wav")
    data = path.read_bytes()
    start = data.index(b"data") + 8
    cut.write_bytes(data[:start + (len(data) - start) // 2])
    return cut


@pytest.mark.parametrize("subtype", ["MS_ADPCM", "PCM_16", "FLOAT"])
def test_an_extensible_wav_reads_as_the_plain_one(tmp_path, subtype, recwarn):
    plain, extensible = _pair(tmp_path, subtype)
    assert sf.info(extensible).format == "WAVEX" and sf.info(extensible).subtype == subtype
    np.testing.assert_array_equal(read_audio(extensible, sample_rate=8000),
                                  read_audio(plain, sample_rate=8000))
    assert not [w for w in recwarn if "truncated" in str(w.message)]  # no false alarm
    seconds = [_audio_seconds([Utterance(p.stem, str(p))], 1e9) for p in (plain, extensible)]
    assert seconds[0] == seconds[1] >= 2.0


def test_a_truncated_extensible_ms_adpcm_wav_warns_as_the_plain_one(tmp_path):
    # before: the data size was divided by the block size (512 bytes: 16 "samples" declared for
    # 16192), as if the extensible tag were PCM, so a cut file was read without a word
    plain, extensible = (_cut(p) for p in _pair(tmp_path, "MS_ADPCM"))
    with pytest.warns(UserWarning, match=r"MS_ADPCM-cut.wav.: truncated WAV") as plain_warning:
        want = read_audio(plain, sample_rate=8000)
    with pytest.warns(UserWarning, match=r"MS_ADPCM-x-cut.wav.: truncated WAV: its header "
                                         r"declares \d+ bytes of coded audio") as warning:
        got = read_audio(extensible, sample_rate=8000)
    np.testing.assert_array_equal(got, want)
    held = str(plain_warning[0].message).split(": truncated WAV: ")[1]
    assert str(warning[0].message).split(": truncated WAV: ")[1] == held


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_a_truncated_extensible_pcm_wav_still_counts_samples(tmp_path, subtype):
    _, extensible = (_cut(p) for p in _pair(tmp_path, subtype))
    held = sf.info(extensible).frames
    with pytest.warns(UserWarning, match=rf"declares 16000 samples, the file holds {held}; "):
        assert len(read_audio(extensible, sample_rate=8000)) == held


def test_an_extensible_wav_libsndfile_cannot_read_is_refused_naming_its_format(tmp_path):
    # before: "not a readable audio file (expected WAV or FLAC; libsndfile says: File contains
    # data in an unimplemented format.)", of a file whose plain form reads: no word of what it is
    plain, extensible = _pair(tmp_path, "IMA_ADPCM")
    assert len(read_audio(plain, sample_rate=8000)) >= 16000
    with pytest.raises(AudioError) as info:
        read_audio(extensible, sample_rate=8000)
    assert str(info.value) == (f"{str(extensible)!r}: not a readable audio file (a WAV of "
                               "format IMA ADPCM (0x0011) in a WAVE_FORMAT_EXTENSIBLE header; "
                               "libsndfile says: File contains data in an unimplemented "
                               "format.)")
    unknown = tmp_path / "unknown.wav"
    unknown.write_bytes(_extensible(plain.read_bytes(), guid=bytes(range(16))))
    with pytest.raises(AudioError, match=r"unknown.wav.: not a readable audio file \(a WAV in a "
                                         r"WAVE_FORMAT_EXTENSIBLE header whose subformat names "
                                         r"no WAVE format; libsndfile says: "):
        read_audio(unknown, sample_rate=8000)
    with pytest.raises(AudioError, match=r"plain-gsm.wav.: not a readable audio file \(a WAV of "
                                         r"format 0x1234; libsndfile says"):
        data = bytearray(plain.read_bytes())
        data[20:22] = struct.pack("<H", 0x1234)  # the plain header's format tag
        (tmp_path / "plain-gsm.wav").write_bytes(bytes(data))
        read_audio(tmp_path / "plain-gsm.wav", sample_rate=8000)


def test_an_extensible_ima_adpcm_wav_is_measured_in_coded_bytes_as_the_plain_one(tmp_path):
    # (a guard) libsndfile 1.2.2 cannot read IMA ADPCM in an extensible header; emkit's own
    # header check must still take its data chunk for bytes of coded blocks (256-byte blocks
    # of 505 samples), not sample frames of its block align, whole or cut
    from emkit.audio._wav_header import _data_sizes, read_header

    def sizes(path):
        with open(path, "rb") as f:
            return _data_sizes(read_header(f))
    plain, extensible = _pair(tmp_path, "IMA_ADPCM")
    assert sizes(extensible) == sizes(plain) == (8192, 8192, None)
    assert sizes(_cut(extensible)) == sizes(_cut(plain)) == (8192, 4096, None)
    # and a features run names the file and the format, as read_audio does
    from emkit.audio import extract_features
    with pytest.raises(AudioError, match=r"IMA_ADPCM-x.wav.: not a readable audio file \(a WAV "
                                         r"of format IMA ADPCM \(0x0011\) in a "
                                         r"WAVE_FORMAT_EXTENSIBLE header; "):
        extract_features(extensible)
