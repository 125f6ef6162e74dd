"""Writers of Kaldi feature files (binary, text, compressed) for the reader tests; the peak
memory a reader allocates."""

import struct
import tracemalloc

import numpy as np


def kaldi_binary(M, token="FM") -> bytes:
    M = np.asarray(M)
    dtype = "<f4" if token in ("FM", "FV") else "<f8"
    if token in ("FV", "DV"):
        return f"{token} ".encode() + size(M.size) + M.astype(dtype).tobytes()
    rows, cols = M.shape
    return f"{token} ".encode() + size(rows) + size(cols) + np.ascontiguousarray(M, dtype).tobytes()


def size(n) -> bytes:
    """A Kaldi binary int32: its size in one byte (4), then the value, little-endian."""
    return b"\x04" + struct.pack("<i", n)


def write_ark(path, matrices: dict, token="FM") -> dict:
    """Write ``{key: matrix}`` as a binary archive; return ``{key: offset of its \\0B}``."""
    offsets = {}
    with open(path, "wb") as f:
        for key, M in matrices.items():
            f.write(key.encode() + b" ")
            offsets[key] = f.tell()
            f.write(b"\0B" + kaldi_binary(M, token))
    return offsets


def write_scp(path, ark_path, offsets: dict, suffix=None):
    with open(path, "w") as f:
        for key, offset in offsets.items():
            f.write(f"{key} {ark_path}:{offset}{(suffix or {}).get(key, '')}\n")


def write_text_ark(path, matrices: dict):
    with open(path, "w") as f:
        for key, M in matrices.items():
            rows = [" ".join(repr(float(v)) for v in row) for row in np.asarray(M)]
            f.write(f"{key}  [\n  " + "\n  ".join(rows) + " ]\n")


def compressed(token, min_value, value_range, rows, cols, payload: bytes) -> bytes:
    return f"{token} ".encode() + struct.pack("<ffii", min_value, value_range, rows, cols) + payload


def peak_bytes(call) -> int:
    """Peak bytes allocated (numpy arrays and Python objects) while ``call()`` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
