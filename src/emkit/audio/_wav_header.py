"""What emkit reads of a RIFF/WAVE header itself: the data chunk's declared size (to warn of a
truncated file, which libsndfile reads without a word) and the format (to name it when
libsndfile cannot read the file).

Only the header is read: at most 1000 chunks before the data chunk, 40 bytes of the ``fmt ``
chunk; nothing of the file is quoted back (a format is named from a table, or by its number).
"""

from __future__ import annotations

import os
import struct

from .._caller_warnings import warn_at_caller
from ..io.untrusted import show_path

__all__ = ["read_header", "warn_truncated", "wav_format"]

#: WAVE format tags whose data is a whole number of bytes per sample frame: PCM, IEEE float,
#: A-law, mu-law; the others (IMA/MS ADPCM, GSM 6.10, G.721...) are coded in blocks
_FRAME_CODED = (1, 3, 6, 7)
_EXTENSIBLE = 0xFFFE
#: the last 12 bytes of WAVE_FORMAT_EXTENSIBLE's subformat GUIDs whose first 4 bytes are a
#: format tag: Microsoft's (KSDATAFORMAT_SUBTYPE_PCM...) and the ambisonic B-format ones
_GUID_TAILS = (bytes.fromhex("000010008000" "00aa00389b71"),
               bytes.fromhex("2107d311" "8644c8c1ca000000"))
_NAMES = {1: "PCM", 2: "MS ADPCM", 3: "IEEE float", 6: "A-law", 7: "mu-law", 0x11: "IMA ADPCM",
          0x31: "GSM 6.10", 0x40: "G.721 ADPCM", _EXTENSIBLE: "extensible"}


def _format_tag(fmt: bytes) -> int | None:
    """The format tag of a ``fmt `` chunk (its first bytes): its own or, for
    WAVE_FORMAT_EXTENSIBLE, the one of its subformat GUID (None: a GUID of no format tag)."""
    tag = struct.unpack("<H", fmt[:2])[0]
    if tag != _EXTENSIBLE:
        return tag
    if len(fmt) < 40 or fmt[28:40] not in _GUID_TAILS:
        return None
    return struct.unpack("<I", fmt[24:28])[0]


def read_header(f) -> tuple | None:
    """``(fmt, data_size, held)`` of a RIFF/WAVE file: the first 40 bytes of its ``fmt `` chunk
    (b"" before none), the size its data chunk declares (None before it) and the bytes of the
    file after the data chunk's start.  None: not a RIFF/WAVE header, one that cannot be read,
    or a RIFF size a streaming writer left unknown (0 or 0xFFFFFFFF).  ``f``: the file, open to
    read bytes at its start (the descriptor a reader checked: the path is not opened again)."""
    try:
        return _header(f)
    except (OSError, struct.error):
        return None


def _header(f) -> tuple | None:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE" or \
            struct.unpack("<I", head[4:8])[0] in (0, 0xFFFFFFFF):
        return None
    fmt = b""
    for _ in range(1000):  # chunks before the data chunk
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name == b"data":
            return fmt, size, os.fstat(f.fileno()).st_size - f.tell()
        body = f.read(min(size, 40)) if name == b"fmt " else b""
        fmt = body if name == b"fmt " else fmt
        f.seek(size + (size & 1) - len(body), os.SEEK_CUR)
    return fmt, None, 0


def _data_sizes(header: tuple | None) -> tuple | None:
    """``(declared, held, frame_bytes)`` of the data chunk of a RIFF/WAVE file: the bytes its
    header declares, the bytes of the file after its start, and the bytes of a sample frame
    (None for a codec that codes blocks of frames).  None: not such a header, one not
    understood, or a size a streaming writer left unknown (a data size of 0xFFFFFFFF, a RIFF
    size of 0 or 0xFFFFFFFF, by convention)."""
    if header is None or header[1] is None or len(header[0]) < 16 or header[1] == 0xFFFFFFFF:
        return None
    fmt, declared, held = header
    channels, align, bits = struct.unpack("<2xH8xHH", fmt[:16])
    # (12-bit samples take 2 bytes, whatever block align says)
    block_align = max(align, channels * ((bits + 7) // 8))
    if not block_align:
        return None
    return declared, held, block_align if _format_tag(fmt) in _FRAME_CODED else None


def warn_truncated(path: str, frames: int, header: tuple | None) -> None:
    """Warn (as Kaldi does) when a WAV holds fewer samples than its header declares: libsndfile
    reads what is there without a word.  A coded WAV (ADPCM, GSM 6.10, also in an extensible
    header) declares bytes of blocks rather than samples: its data chunk is compared with what
    the file holds.  ``header``: :func:`read_header`'s."""
    try:
        sizes = _data_sizes(header)
    except struct.error:
        return
    if sizes is None:
        return
    declared, held, frame_bytes = sizes
    if frame_bytes is not None and declared // frame_bytes > frames:
        warn_at_caller(f"{show_path(path)}: truncated WAV: its header declares "
                       f"{declared // frame_bytes} samples, the file holds {frames}; the "
                       f"{frames} are used", UserWarning)
    elif frame_bytes is None and declared > held:
        warn_at_caller(f"{show_path(path)}: truncated WAV: its header declares {declared} bytes "
                       f"of coded audio, the file holds {held}; the {frames} samples they hold "
                       "are used", UserWarning)


def wav_format(header: tuple | None) -> str | None:
    """The format of a RIFF/WAVE file, in words (``"a WAV of format IMA ADPCM (0x0011) in a
    WAVE_FORMAT_EXTENSIBLE header"``), for a message; None: not a WAV, or no format read.
    ``header``: :func:`read_header`'s."""
    if header is None or len(header[0]) < 2:
        return None
    fmt = header[0]
    tag = _format_tag(fmt)
    own = struct.unpack("<H", fmt[:2])[0]
    if tag is None:
        return "a WAV in a WAVE_FORMAT_EXTENSIBLE header whose subformat names no WAVE format"
    name = f"{_NAMES[tag]} (0x{tag:04X})" if tag in _NAMES else f"0x{tag:04X}"
    if own == _EXTENSIBLE and len(fmt) >= 40:
        return f"a WAV of format {name} in a WAVE_FORMAT_EXTENSIBLE header"
    return f"a WAV of format {name}"
